"""DRF permissions: membership for every tenant API, capabilities declared per view, token scopes."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenancy.exceptions import (
    MISSING_CAPABILITY,
    READ_ONLY_TOKEN,
    MissingCapability,
    MissingScope,
    NotAMember,
)
from tenancy.roles import READ_ONLY_SCOPES
from tenancy.selectors import acting_token, current_tenant, membership_of, require_scope


class IsTenantMember(BasePermission):
    """Allow authenticated members of the host's tenant; views declare `required_capabilities`.

    `required_capabilities` maps an HTTP method (or "*") to the capability it needs, like Sentry's scope_map.
    A request made with an API token also needs a token scope covering that capability, and a token holding
    only read scopes changes nothing (some writes declare `view` and check finer rights in their service),
    except through views that say `read_only_tokens_may_write` (managing one's own tokens).
    """

    def has_permission(self, request, view) -> bool:
        """Return True for a member holding the capability this method needs; raise otherwise."""
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        tenant = current_tenant()
        membership = membership_of(request.user, tenant)
        if membership is None:
            raise NotAMember()
        request.membership = membership
        capability = capability_for(view, request.method)
        if capability and not membership.can(capability):
            raise MissingCapability(MISSING_CAPABILITY.format(capability=capability))
        if capability:
            require_scope(request.user, capability)
        token = acting_token(request.user)
        if (
            token is not None
            and request.method not in SAFE_METHODS
            and set(token.scopes) <= READ_ONLY_SCOPES
            and not getattr(view, "read_only_tokens_may_write", False)
        ):
            raise MissingScope(READ_ONLY_TOKEN.format(scopes=", ".join(token.scopes) or "none"))
        return True


def capability_for(view, method: str) -> str | None:
    """Return the capability `view` declares for `method`."""
    required = getattr(view, "required_capabilities", {}) or {}
    return required.get(method, required.get("*"))
