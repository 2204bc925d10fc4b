"""Writes of tenants and memberships; each writes its audit record in the tenant's log."""

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import schema_context

from audit.services import record
from tenancy.actions import TenancyAction
from tenancy.exceptions import (
    TENANT_EXISTS,
    UNKNOWN_ROLE,
    InvalidTenantSlug,
    LastAdmin,
    TenantExists,
    UnknownRole,
)
from tenancy.models import Domain, Membership, Tenant
from tenancy.roles import Capability, Role
from tenancy.selectors import require_capability

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
CHANGE_MEMBERSHIP_PERMISSION = "tenancy.change_membership"
RESERVED_SLUGS = frozenset({"public", "www", "admin", "api", "static", "localhost", "information-schema"})


def tenant_host(slug: str) -> str:
    """Return the host name that routes to tenant `slug`."""
    return f"{slug}.{settings.CONTRACTOR['BASE_DOMAIN']}"


def schema_name_for(slug: str) -> str:
    """Return the PostgreSQL schema name for tenant `slug`."""
    return slug.replace("-", "_")


def ensure_public_tenant() -> Tenant:
    """Return the public tenant (schema public, host localhost), creating it on first use."""
    tenant, _ = Tenant.objects.get_or_create(schema_name="public", defaults={"name": "Platform"})
    Domain.objects.get_or_create(
        domain=settings.CONTRACTOR["BASE_DOMAIN"], defaults={"tenant": tenant, "is_primary": True}
    )
    return tenant


def tenant_create(*, actor, slug: str, name: str = "", admin_user=None, domain: str | None = None) -> Tenant:
    """Create a tenant with its schema and host, and make `admin_user` its first admin."""
    if not SLUG_PATTERN.match(slug) or slug in RESERVED_SLUGS:
        raise InvalidTenantSlug()
    schema_name = schema_name_for(slug)
    if Tenant.objects.filter(schema_name=schema_name).exists():
        raise TenantExists(TENANT_EXISTS.format(slug=slug))
    # Creating the schema runs its migrations; that happens outside the transaction below.
    tenant = Tenant.objects.create(schema_name=schema_name, name=name or slug)
    host = (domain or tenant_host(slug)).lower()  # hosts are routed in lower case
    with transaction.atomic():
        Domain.objects.create(domain=host, tenant=tenant, is_primary=True)
        tenant_created_record(actor=actor, tenant=tenant, domain=host)
        if admin_user is not None:
            membership_set(actor=actor, tenant=tenant, user=admin_user, roles=[Role.ADMIN])
    return tenant


def tenant_created_record(*, actor, tenant: Tenant, domain: str = "") -> None:
    """Write tenant.created as the first record of the tenant's own audit log."""
    with transaction.atomic(), schema_context(tenant.schema_name):
        record(
            actor=actor,
            action=TenancyAction.TENANT_CREATED,
            target=("tenancy.tenant", tenant.schema_name),
            data={"slug": tenant.schema_name.replace("_", "-"), "name": tenant.name, "domain": domain},
        )


def require_membership_manager(actor, tenant: Tenant) -> None:
    """Raise unless `actor` may change memberships of `tenant`.

    The system (None, e.g. commands and seeding), platform staff allowed to change memberships (the admin on
    the public host), and admins of that tenant may; nobody else, whatever view called.
    """
    if actor is None:
        return
    if actor.is_active and actor.is_staff and actor.has_perm(CHANGE_MEMBERSHIP_PERMISSION):
        return
    require_capability(actor, Capability.MANAGE_MEMBERSHIPS, tenant)


def membership_set(*, actor, tenant: Tenant, user, roles: list[str]) -> Membership:
    """Give `user` exactly `roles` in `tenant` (creating or reactivating the membership)."""
    require_membership_manager(actor, tenant)
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise UnknownRole(UNKNOWN_ROLE.format(role=unknown[0], roles=", ".join(Role.values)))
    roles = sorted(set(roles))
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
        before = sorted(membership.roles) if membership and membership.is_active else []
        if membership is None:
            membership = Membership(user=user, tenant=tenant)
        if Role.ADMIN in before and Role.ADMIN not in roles:
            _refuse_losing_last_admin(tenant, user)
        membership.roles = roles
        membership.is_active = bool(roles)
        membership.save()
        _record_membership_change(actor, membership, before, roles)
    return membership


def membership_deactivate(*, actor, tenant: Tenant, user) -> Membership:
    """End `user`'s membership in `tenant` (kept, inactive: users are never deleted across schemas)."""
    require_membership_manager(actor, tenant)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(user=user, tenant=tenant)
        before = sorted(membership.roles) if membership.is_active else []
        if Role.ADMIN in before:
            _refuse_losing_last_admin(tenant, user)
        membership.is_active = False
        membership.save(update_fields=["is_active", "updated_at"])
        _record_membership_change(actor, membership, before, [])
    return membership


def _refuse_losing_last_admin(tenant: Tenant, user) -> None:
    """Raise LastAdmin when `user` is the tenant's only active admin."""
    other_admins = (
        Membership.objects.filter(tenant=tenant, is_active=True, roles__contains=[Role.ADMIN])
        .exclude(user=user)
        .exists()
    )
    if not other_admins:
        raise LastAdmin()


def _record_membership_change(actor, membership: Membership, before: list[str], after: list[str]) -> None:
    """Write membership.changed into the tenant's own log."""
    with schema_context(membership.tenant.schema_name):
        record(
            actor=actor,
            action=TenancyAction.MEMBERSHIP_CHANGED,
            target=("tenancy.membership", membership.user.get_username()),
            data={"user": membership.user.get_username(), "roles_before": before, "roles_after": after},
        )


def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False):
    """Create a global user (no tenant access until a membership is set)."""
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=is_staff, is_superuser=is_staff)
    user.set_password(password)
    user.save()
    return user
