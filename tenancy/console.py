"""The guards of console pages: a signed-in member who may view; decisive actions need a recent sign-in.

Domain errors become status pages.
"""

import functools

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.debug import sensitive_post_parameters

from core.errors import DomainError
from tenancy.exceptions import SignInLocked
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, require_capability
from tenancy.signin import authenticate_or_lock, authenticated_recently, mark_authenticated
from tenancy.sso.selectors import sso_config_of

FORBIDDEN_TEMPLATE = "403.html"
REAUTHENTICATE_TEMPLATE = "tenancy/reauthenticate.html"
REAUTH_PASSWORD_FIELD = "reauth_password"
WRONG_PASSWORD = "That is not your password."
REAUTHENTICATE_STATUS = 401
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEPT_OUT_FIELDS = frozenset({"csrfmiddlewaretoken", REAUTH_PASSWORD_FIELD})


def console_page(error_template: str):
    """Return a decorator guarding a console view; refusals render `error_template` (403s the 403 page)."""

    def decorate(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                require_capability(request.user, Capability.VIEW)
                return view(request, *args, **kwargs)
            except DomainError as error:
                return error_page(request, error, error_template)

        return wrapper

    return decorate


def error_page(request, error: DomainError, error_template: str):
    """Render a refusal or a not-found error with its HTTP status."""
    template = FORBIDDEN_TEMPLATE if error.status == 403 else error_template
    return render(request, template, {"reason": error.message, "error": error}, status=error.status)


def fresh_authentication_required(view):
    """Run a decisive console action (POST) only for a session that signed in within
    FRESH_AUTHENTICATION_MINUTES; otherwise ask for the password again.

    The password page posts the original form back to the same action with the password added, so a typed
    comment or justification is not lost; a right password refreshes the session's sign-in time and the
    action runs. Wrong passwords count towards the sign-in lockout.
    """

    @sensitive_post_parameters(REAUTH_PASSWORD_FIELD)
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method in SAFE_METHODS or authenticated_recently(request.session):
            return view(request, *args, **kwargs)
        if request.method != "POST" or REAUTH_PASSWORD_FIELD not in request.POST:
            return reauthentication_page(request)
        try:
            user = authenticate_or_lock(
                request, username=request.user.get_username(), password=request.POST[REAUTH_PASSWORD_FIELD]
            )
        except SignInLocked as error:
            response = reauthentication_page(request, error=error.message, status=error.status)
            response["Retry-After"] = str(error.retry_after)
            return response
        if user is None or user.pk != request.user.pk:
            return reauthentication_page(request, error=WRONG_PASSWORD)
        mark_authenticated(request.session)
        return view(request, *args, **kwargs)

    return wrapper


def reauthentication_page(request, *, error: str = "", status: int = REAUTHENTICATE_STATUS):
    """Render the password prompt that re-posts the original form (without its password) to this action."""
    fields = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in KEPT_OUT_FIELDS
        for value in values
    ]
    config = sso_config_of(current_tenant())
    context = {
        "sso": config if config is not None and config.enabled else None,
        "action": request.path,
        "fields": fields,
        "error": error,
        "password_field": REAUTH_PASSWORD_FIELD,
    }
    return render(request, REAUTHENTICATE_TEMPLATE, context, status=status)
