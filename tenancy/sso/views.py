"""The sign-in flow on a tenant host: /sso/login/ sends the browser to the provider, /sso/callback/ returns.

The session keeps the one sign-in in progress (state, nonce, PKCE verifier, where to go next, when it
started); the callback consumes it whatever the outcome, so a response can be used once. A successful
sign-in starts a new session (new key) bound to this host, like a password sign-in. Every failure is a
console page with what went wrong (and an audit record), never a stack trace.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from django.contrib.auth import login
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tenants.utils import schema_context

from audit.services import record
from core.errors import DomainError
from tenancy.actions import TenancyAction
from tenancy.conf import SSO_MAX_CLOCK_SKEW_SECONDS, tenancy_setting
from tenancy.middleware import bind_session_to_tenant
from tenancy.selectors import current_tenant
from tenancy.signin import client_address, mark_authenticated
from tenancy.sso.exceptions import (
    SSO_CLAIM_MISSING,
    SSO_PROVIDER_ERROR,
    SsoError,
    SsoFlowExpired,
    SsoProviderError,
    SsoStateInvalid,
    SsoTokenInvalid,
)
from tenancy.sso.provider import exchange_code, key_resolver, provider_metadata, userinfo
from tenancy.sso.selectors import client_secret_of, enabled_sso_config
from tenancy.sso.services import sso_sign_in
from tenancy.sso.tokens import pkce_challenge, random_token, same_secret, validate_id_token

logger = logging.getLogger(__name__)

FLOW_SESSION_KEY = "contractor_sso_flow"
SIGNED_IN_WITH_SSO_KEY = "contractor_sso"
ERROR_TEMPLATE = "tenancy/sso_error.html"
UNEXPECTED = (
    "Single sign-on failed unexpectedly; nothing was changed. Try again, or tell your administrators."
)
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def callback_url(request) -> str:
    """Return this host's callback URL (registered at the provider as a redirect URI)."""
    return request.build_absolute_uri(reverse("sso-callback"))


def safe_next(request, target: str | None) -> str:
    """Return `target` if it is a path on this host, else the dashboard."""
    allowed = target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else reverse("dashboard")


def sso_failure_page(request, error: DomainError):
    """Record the refused attempt in the tenant's log and render the error page."""
    tenant = current_tenant()
    # Refusals decided by sso_sign_in (no account, no role) were recorded there; "not configured" is not an
    # attempt.
    if tenant is not None and isinstance(error, SsoError):
        data = {"reason": error.code, "message": error.message, "address": client_address(request)}
        with transaction.atomic(), schema_context(tenant.schema_name):
            record(
                actor=None,
                action=TenancyAction.SSO_REFUSED,
                target=("auth.sso", tenant.schema_name),
                data=data,
            )
    context = {"reason": error.message, "error": error}
    return render(request, ERROR_TEMPLATE, context, status=error.status)


def guarded(view):
    """Render domain errors as the SSO error page, and anything unexpected as a generic one (logged)."""

    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except DomainError as error:
            return sso_failure_page(request, error)
        except Exception:  # the boundary of the flow: a page, never a stack trace
            logger.exception("single sign-on failed")
            error = SsoError(UNEXPECTED, code="sso_unexpected")
            error.status = 500
            return render(request, ERROR_TEMPLATE, {"reason": UNEXPECTED, "error": error}, status=500)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@never_cache
@require_GET
@guarded
def sso_start(request):
    """Send the browser to the tenant's provider with a fresh state, nonce and PKCE challenge."""
    config = enabled_sso_config(current_tenant())
    metadata = provider_metadata(config.issuer)
    flow = {
        "state": random_token(),
        "nonce": random_token(),
        "verifier": random_token(),
        "issuer": config.issuer,
        "next": safe_next(request, request.GET.get("next")),
        "started": time.time(),
    }
    request.session[FLOW_SESSION_KEY] = flow
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": callback_url(request),
        "scope": " ".join(config.scopes),
        "state": flow["state"],
        "nonce": flow["nonce"],
        "code_challenge": pkce_challenge(flow["verifier"]),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in metadata.authorization_endpoint else "?"
    return redirect(metadata.authorization_endpoint + separator + urlencode(params))


@never_cache
@require_GET
@guarded
def sso_callback(request):
    """Check the provider's answer, exchange the code, verify the ID token, sign the member in."""
    flow = request.session.pop(FLOW_SESSION_KEY, None)
    if not isinstance(flow, dict) or not same_secret(flow.get("state", ""), request.GET.get("state")):
        raise SsoStateInvalid()
    if time.time() - flow["started"] > tenancy_setting("SSO_FLOW_SECONDS"):
        raise SsoFlowExpired()
    tenant = current_tenant()
    config = enabled_sso_config(tenant)
    if config.issuer != flow["issuer"]:
        raise SsoStateInvalid()
    returned_issuer = request.GET.get("iss")
    if returned_issuer is not None and returned_issuer != config.issuer:  # RFC 9207: mix-up defence
        raise SsoProviderError(SSO_PROVIDER_ERROR.format(error="the answer came from another issuer"))
    if "error" in request.GET:
        raise SsoProviderError(SSO_PROVIDER_ERROR.format(error=request.GET["error"][:100]))
    code = request.GET.get("code")
    if not code:
        raise SsoProviderError(SSO_PROVIDER_ERROR.format(error="no authorization code"))
    metadata = provider_metadata(config.issuer)
    tokens = exchange_code(
        metadata,
        code=code,
        redirect_uri=callback_url(request),
        verifier=flow["verifier"],
        client_id=config.client_id,
        client_secret=client_secret_of(config),
    )
    claims = validate_id_token(
        tokens["id_token"],
        issuer=config.issuer,
        client_id=config.client_id,
        nonce=flow["nonce"],
        key_for=key_resolver(metadata),
        clock_skew=min(int(tenancy_setting("SSO_CLOCK_SKEW_SECONDS")), SSO_MAX_CLOCK_SKEW_SECONDS),
        max_age=int(tenancy_setting("SSO_ID_TOKEN_MAX_AGE_SECONDS")),
    )
    extra = userinfo(metadata, tokens.get("access_token") or "")
    if extra and extra.get("sub") != claims["sub"]:
        raise SsoTokenInvalid(SSO_CLAIM_MISSING.format(claim="sub (userinfo names another subject)"))
    outcome = sso_sign_in(tenant=tenant, config=config, claims={**extra, **claims})
    login(request, outcome.user, backend=AUTH_BACKEND)  # a new session key: no fixation
    bind_session_to_tenant(request)
    mark_authenticated(request.session)
    request.session[SIGNED_IN_WITH_SSO_KEY] = True
    return redirect(flow["next"])
