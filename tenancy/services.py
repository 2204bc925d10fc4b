"""Writes of tenants and memberships; each writes its audit record in the tenant's log."""

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django_tenants.utils import schema_context

from audit.services import record
from governance.registry import run_role_checks
from governance.selectors import active_admin_count
from governance.services import BOOTSTRAP_ADMINS, governed_change
from tenancy.actions import TenancyAction
from tenancy.exceptions import (
    MEMBER_NOT_FOUND,
    TENANT_EXISTS,
    UNKNOWN_ROLE,
    InvalidGroupName,
    InvalidTenantSlug,
    LastAdmin,
    MemberNotFound,
    TenantExists,
    UnknownRole,
)
from tenancy.models import Domain, Membership, Tenant
from tenancy.roles import Capability, Role
from tenancy.selectors import current_tenant, require_capability

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
CHANGE_MEMBERSHIP_PERMISSION = "tenancy.change_membership"
MEMBERSHIP_ROLES_KIND = "membership.roles"
MEMBERSHIP_GROUPS_KIND = "membership.groups"
GROUP_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
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


def membership_set(*, actor, tenant: Tenant, user, roles: list[str]):
    """Give `user` exactly `roles` in `tenant` (creating or reactivating the membership).

    Return the membership when the change applied, or the pending GovernanceChangeRequest when it loosens
    control (adds a role, or takes the admin role from one of the last two admins) and another admin must
    approve it. The same holds for every actor: a tenant admin, a platform operator on the public host's
    admin, or the system (management commands).
    """
    require_membership_manager(actor, tenant)
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise UnknownRole(UNKNOWN_ROLE.format(role=unknown[0], roles=", ".join(Role.values)))
    roles = sorted(set(roles))
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
        before = sorted(membership.roles) if membership and membership.is_active else []
        if before == roles and (membership is not None and membership.is_active == bool(roles)):
            return membership
        if Role.ADMIN in before and Role.ADMIN not in roles:
            _refuse_losing_last_admin(tenant, user)
        run_role_checks(tenant, user, roles)
        change = governed_change(
            actor=actor,
            kind=MEMBERSHIP_ROLES_KIND,
            target={"user": user.get_username()},
            before={"roles": before},
            proposed={"roles": roles},
            loosening=_roles_loosen(tenant, before, roles),
            summary=f"roles of {user.get_username()}: {before} -> {roles}",
            beneficiary=user if set(roles) - set(before) else None,
            tenant=tenant,
        )
        if change is not None:
            return change
        membership = _apply_roles(tenant, user, roles, actor=actor)
    return membership


def _roles_loosen(tenant: Tenant, before: list[str], after: list[str]) -> bool:
    """Return whether a role change weakens control: it adds a role, or it removes the admin role from one
    of the last two admins (which would let a lone admin act alone again)."""
    if set(after) - set(before):
        return True
    losing_admin = Role.ADMIN in before and Role.ADMIN not in after
    return losing_admin and active_admin_count(tenant) - 1 < BOOTSTRAP_ADMINS


def _apply_roles(tenant: Tenant, user, roles: list[str], *, actor, approved_by=None) -> Membership:
    """Give `user` exactly `roles` (no roles: the membership ends) and audit it."""
    membership = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
    before = sorted(membership.roles) if membership and membership.is_active else []
    if membership is None:
        membership = Membership(user=user, tenant=tenant)
    if Role.ADMIN in before and Role.ADMIN not in roles:
        _refuse_losing_last_admin(tenant, user)
    membership.roles = roles
    membership.is_active = bool(roles)
    membership.save()
    _record_membership_change(actor, membership, before, roles, approved_by=approved_by)
    return membership


def membership_roles_state(target: dict) -> dict:
    """Return the target member's active roles in the current tenant (the governance kind's state)."""
    membership = (
        Membership.objects.select_for_update()
        .filter(user__username=target["user"], tenant=current_tenant())
        .first()
    )
    return {"roles": sorted(membership.roles) if membership and membership.is_active else []}


def membership_roles_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply approved roles to the target member of the current tenant."""
    user = get_user_model().objects.get(username=target["user"])
    run_role_checks(current_tenant(), user, proposed["roles"])
    _apply_roles(current_tenant(), user, proposed["roles"], actor=actor, approved_by=approved_by)


def membership_deactivate(*, actor, tenant: Tenant, user):
    """End `user`'s membership in `tenant` (kept, inactive: users are never deleted across schemas)."""
    return membership_set(actor=actor, tenant=tenant, user=user, roles=[])


def membership_groups_set(*, actor, tenant: Tenant, user, groups: list[str]):
    """Give member `user` exactly `groups` (tenant-configured; approval rules may require them).

    Adding a group is a loosening (the member may then stand for it in an approval rule): it returns the
    pending GovernanceChangeRequest unless the tenant is bootstrapping; removing applies at once.
    """
    require_membership_manager(actor, tenant)
    groups = sorted({str(group).strip() for group in groups})
    if any(not GROUP_NAME.match(group) for group in groups):
        raise InvalidGroupName()
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(user=user, tenant=tenant, is_active=True).first()
        )
        if membership is None:
            raise MemberNotFound(MEMBER_NOT_FOUND.format(username=user.get_username()))
        before = sorted(membership.groups)
        if before == groups:
            return membership
        change = governed_change(
            actor=actor,
            kind=MEMBERSHIP_GROUPS_KIND,
            target={"user": user.get_username()},
            before={"groups": before},
            proposed={"groups": groups},
            loosening=bool(set(groups) - set(before)),
            summary=f"groups of {user.get_username()}: {before} -> {groups}",
            beneficiary=user if set(groups) - set(before) else None,
            tenant=tenant,
        )
        if change is not None:
            return change
        _apply_groups(membership, groups, actor=actor)
    return membership


def _apply_groups(membership: Membership, groups: list[str], *, actor, approved_by=None) -> None:
    """Give locked `membership` exactly `groups` and audit it."""
    before = sorted(membership.groups)
    membership.groups = groups
    membership.save(update_fields=["groups", "updated_at"])
    data = {"user": membership.user.get_username(), "groups_before": before, "groups_after": groups}
    if approved_by is not None:
        data["approved_by"] = approved_by
    with schema_context(membership.tenant.schema_name):
        record(
            actor=actor,
            action=TenancyAction.MEMBERSHIP_GROUPS_CHANGED,
            target=("tenancy.membership", data["user"]),
            data=data,
        )


def membership_groups_state(target: dict) -> dict:
    """Return the target member's groups in the current tenant."""
    membership = (
        Membership.objects.select_for_update()
        .filter(user__username=target["user"], tenant=current_tenant(), is_active=True)
        .first()
    )
    return {"groups": sorted(membership.groups) if membership else None}


def membership_groups_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply approved groups to the target member."""
    membership = Membership.objects.select_for_update().get(
        user__username=target["user"], tenant=current_tenant(), is_active=True
    )
    _apply_groups(membership, proposed["groups"], actor=actor, approved_by=approved_by)


def _refuse_losing_last_admin(tenant: Tenant, user) -> None:
    """Raise LastAdmin when `user` is the tenant's only active admin."""
    other_admins = (
        Membership.objects.filter(tenant=tenant, is_active=True, roles__contains=[Role.ADMIN])
        .exclude(user=user)
        .exists()
    )
    if not other_admins:
        raise LastAdmin()


def _record_membership_change(
    actor, membership: Membership, before: list[str], after: list[str], approved_by=None
) -> None:
    """Write membership.changed into the tenant's own log."""
    data = {"user": membership.user.get_username(), "roles_before": before, "roles_after": after}
    if approved_by is not None:
        data["approved_by"] = approved_by
    with schema_context(membership.tenant.schema_name):
        record(
            actor=actor,
            action=TenancyAction.MEMBERSHIP_CHANGED,
            target=("tenancy.membership", membership.user.get_username()),
            data=data,
        )


def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False):
    """Create a global user (no tenant access until a membership is set)."""
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=is_staff, is_superuser=is_staff)
    user.set_password(password)
    user.save()
    return user
