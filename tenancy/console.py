"""The one guard of console pages: a signed-in member who may view; domain errors become status pages."""

import functools

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from core.errors import DomainError
from tenancy.roles import Capability
from tenancy.selectors import require_capability

FORBIDDEN_TEMPLATE = "403.html"


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
