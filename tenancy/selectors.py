"""Reads of tenants and memberships."""

from django.db import connection

from tenancy.exceptions import MISSING_CAPABILITY, MissingCapability, NotAMember
from tenancy.models import Membership, Tenant


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
    """Return the user's membership if its roles include `capability`, else raise."""
    membership = require_membership(user, tenant)
    if not membership.can(capability):
        raise MissingCapability(MISSING_CAPABILITY.format(capability=capability))
    return membership


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
