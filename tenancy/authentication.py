"""DRF authentication by personal API token: `Authorization: Token <token>` (or `Bearer <token>`)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from tenancy.exceptions import INVALID_TOKEN
from tenancy.selectors import TOKEN_ATTRIBUTE, current_tenant
from tenancy.tokens import check_token, token_used

SCHEMES = ("token", "bearer")


def presented_token(request) -> str | None:
    """Return the credentials of a Token or Bearer Authorization header, "" when empty, None without one."""
    header = get_authorization_header(request).decode("latin-1")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() not in SCHEMES:
        return None
    return credentials.strip()


def checked_by_middleware(request, presented: str):
    """Return the TokenMembershipMiddleware's check of this same token, or None."""
    cached = getattr(getattr(request, "_request", request), "contractor_token_check", None)
    return cached[1] if cached is not None and cached[0] == presented else None


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticate a member's personal token of the host's tenant; unknown, expired or revoked: 401."""

    def authenticate(self, request):
        """Return (user, token) for a usable token, None without a token header; raise for a bad one."""
        presented = presented_token(request)
        if presented is None:
            return None
        if not presented:
            raise AuthenticationFailed(INVALID_TOKEN)
        check = checked_by_middleware(request, presented) or check_token(presented, current_tenant())
        if check.token is None:
            raise AuthenticationFailed(check.problem)
        token_used(check.token)
        user = check.token.user
        user.__dict__[TOKEN_ATTRIBUTE] = check.token
        return user, check.token

    def authenticate_header(self, request) -> str:
        """Answer 401 (not 403) to unauthenticated API requests."""
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ApiTokenAuthentication (named as DRF's token scheme was)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        """Return the scheme: an Authorization header `Token ct_<prefix>_<secret>` (or `Bearer ...`)."""
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Personal API token: `Token ct_<prefix>_<secret>` (or `Bearer ct_...`).",
        }
