"""Reads of tenants and memberships."""

from django.db import connection

from tenancy.exceptions import MISSING_CAPABILITY, MISSING_SCOPE, MissingCapability, MissingScope, NotAMember
from tenancy.models import ApiToken, Membership, Tenant
from tenancy.roles import scope_capabilities

# Where an authenticated request's API token rides on its user object (set by ApiTokenAuthentication), so
# that every capability check, in views and services alike, also checks the token's scopes.
TOKEN_ATTRIBUTE = "_contractor_api_token"


def current_tenant() -> Tenant | None:
    """Return the tenant of the current database connection, or None on the public schema."""
    tenant = getattr(connection, "tenant", None)
    if tenant is None or tenant.schema_name == "public":
        return None
    if not isinstance(tenant, Tenant):
        # schema_context() sets a stand-in object; resolve it to the real tenant once per switch.
        tenant = Tenant.objects.filter(schema_name=tenant.schema_name).first()
        if tenant is not None:
            connection.tenant = tenant
    return tenant


def membership_of(user, tenant: Tenant | None) -> Membership | None:
    """Return the user's active membership in `tenant`, or None."""
    if tenant is None or user is None or not user.is_authenticated or not user.is_active:
        return None
    cache = user.__dict__.setdefault("_contractor_memberships", {})
    if tenant.pk not in cache:
        cache[tenant.pk] = (
            Membership.objects.filter(user=user, tenant=tenant, is_active=True, tenant__is_active=True)
            .select_related("tenant")
            .first()
        )
    return cache[tenant.pk]


def require_membership(user, tenant: Tenant | None = None) -> Membership:
    """Return the user's membership in the (current) tenant or raise NotAMember."""
    membership = membership_of(user, tenant or current_tenant())
    if membership is None:
        raise NotAMember()
    return membership


def require_capability(user, capability: str, tenant: Tenant | None = None) -> Membership:
    """Return the user's membership if its roles (and the scopes of the API token in use) include
    `capability`, else raise."""
    membership = require_membership(user, tenant)
    if not membership.can(capability):
        raise MissingCapability(MISSING_CAPABILITY.format(capability=capability))
    require_scope(user, capability)
    return membership


def acting_token(user) -> ApiToken | None:
    """Return the API token the user authenticated this request with, or None (a console session)."""
    return getattr(user, "__dict__", {}).get(TOKEN_ATTRIBUTE)


def require_scope(user, capability: str) -> None:
    """Raise MissingScope when the user acts through an API token whose scopes do not cover `capability`."""
    token = acting_token(user)
    if token is not None and capability not in scope_capabilities(token.scopes):
        scopes = ", ".join(token.scopes) or "none"
        raise MissingScope(MISSING_SCOPE.format(capability=capability, scopes=scopes))


def holds_object_permission(user, codename: str, obj) -> bool:
    """Return whether `user` was granted `codename` on `obj` (django-guardian), directly or through a group.

    Unlike `user.has_perm(perm, obj)` this grants nothing implicitly to a superuser: platform staff are
    superusers for the admin, but inside a tenant they approve or push only where they hold the grant, like
    everyone else (and like environment_approvers and push_grantees list them).
    """
    from guardian.shortcuts import get_group_perms, get_user_perms  # guardian is a tenant app

    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return (
        get_user_perms(user, obj).filter(codename=codename).exists()
        or get_group_perms(user, obj).filter(codename=codename).exists()
    )


def members_of(tenant: Tenant):
    """Return the tenant's memberships with their users, newest first."""
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
