"""DRF permissions: membership for every tenant API, capabilities declared per view."""

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission

from tenancy.exceptions import MISSING_CAPABILITY, MissingCapability, NotAMember
from tenancy.selectors import current_tenant, membership_of


class IsTenantMember(BasePermission):
    """Allow authenticated members of the host's tenant; views declare `required_capabilities`.

    `required_capabilities` maps an HTTP method (or "*") to the capability it needs, like Sentry's scope_map.
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
        return True


def capability_for(view, method: str) -> str | None:
    """Return the capability `view` declares for `method`."""
    required = getattr(view, "required_capabilities", {}) or {}
    return required.get(method, required.get("*"))
