"""Template context: the tenant, the member and what their roles allow (for navigation)."""

from tenancy.selectors import current_tenant, membership_of


def membership(request) -> dict:
    """Return tenant, membership and capabilities for the console's navigation."""
    tenant = current_tenant()
    member = membership_of(getattr(request, "user", None), tenant)
    return {
        "tenant": tenant,
        "membership": member,
        "capabilities": member.capabilities if member else frozenset(),
    }
