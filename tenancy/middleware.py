"""Tenant-host access: a session is valid only on the tenant it logged in to, and only for members.

A request carrying a session or an API token of a user who is not a member of the host's tenant is refused
here, before any view, on every route but the probes and sign-in.
"""

from django.contrib.auth.models import AnonymousUser
from django.http import JsonResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware
from django_tenants.utils import remove_www

from core.api import API_PREFIX, error_body
from tenancy.authentication import presented_token
from tenancy.exceptions import NOT_A_MEMBER
from tenancy.selectors import current_tenant, membership_of
from tenancy.tokens import check_token

SESSION_TENANT_KEY = "contractor_tenant"
OPEN_PATHS = ("/healthz", "/readyz", "/static/", "/login/", "/logout/", "/sso/", "/api/v1/auth/token/")


def bind_session_to_tenant(request) -> None:
    """Mark the session as belonging to the tenant of this host."""
    tenant = current_tenant()
    request.session[SESSION_TENANT_KEY] = tenant.schema_name if tenant else "public"


def token_user(request):
    """Return the user of a usable API token of this tenant, or None (DRF still authenticates and refuses).

    The check is kept on the request, so that DRF's authentication reuses it (and the same user object,
    whose membership is then looked up once).
    """
    presented = presented_token(request)
    if not presented:
        return None
    check = check_token(presented, current_tenant())
    request.contractor_token_check = (presented, check)
    return check.token.user if check.token is not None else None


class TenantHostMiddleware(TenantMainMiddleware):
    """django-tenants' routing by host, with host names compared case-insensitively (ACME.localhost)."""

    @staticmethod
    def hostname_from_request(request) -> str:
        """Return the request's host name in lower case, without port, trailing dot or www."""
        return remove_www(request.get_host().split(":")[0].rstrip(".").lower())


class TenantMembershipMiddleware:
    """Refuse (403) any authenticated non-member on a tenant host; ignore sessions from other hosts."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = current_tenant()
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bound_to = request.session.get(SESSION_TENANT_KEY)
            if bound_to != (tenant.schema_name if tenant else "public"):
                request.user = AnonymousUser()
                user = request.user
        if tenant is None or request.path.startswith(OPEN_PATHS):
            return self.get_response(request)
        if user is None or not user.is_authenticated:
            user = token_user(request)
        if user is not None and user.is_authenticated:
            request.membership = membership_of(user, tenant)
            if request.membership is None:
                return self.refuse(request)
        return self.get_response(request)

    @staticmethod
    def refuse(request):
        """Return the 403 answer for a non-member, JSON under /api/."""
        if request.path.startswith(API_PREFIX):
            return JsonResponse(error_body("not_a_member", NOT_A_MEMBER), status=403)
        return render(request, "403.html", {"reason": NOT_A_MEMBER}, status=403)
