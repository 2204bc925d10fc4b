"""Writes of single sign-on: a tenant's configuration, and what a verified sign-in does to the membership.

`sso_config_change` is how platform operators change a configuration (admin, `manage.py sso_config`): a
change that loosens control (a new provider or client, a mapping that grants more, sso_only off, provisioning
or SSO on) becomes a governance change request of that tenant, which one of its admins must approve, as any
other change of who holds which roles; tightening applies at once. `sso_config_apply` writes a configuration
(the approved change, and the system's own set-up). `sso_sign_in` links the provider's subject to a global
user and recomputes the member's roles and groups from the claims, every time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.services import record
from core.egress import url_refusal
from tenancy.actions import TenancyAction
from tenancy.conf import tenancy_setting
from tenancy.models import Membership, SsoConfig, SsoIdentity, Tenant
from tenancy.roles import Role
from tenancy.sso.exceptions import (
    SSO_NO_ROLE,
    InvalidSsoConfig,
    NotPlatformOperator,
    SsoNoAccount,
    SsoNoRole,
)

CHANGE_SSO_PERMISSION = "tenancy.change_ssoconfig"
BOOLEAN_FIELDS = ("enabled", "sso_only", "auto_provision")
CLAIM_FIELDS = ("username_claim", "email_claim", "groups_claim")
FIELDS = ("issuer", "client_id", "client_secret_env", "scopes", *CLAIM_FIELDS)
FIELDS += ("role_mapping", "group_mapping", *BOOLEAN_FIELDS)
DEFAULT_SCOPES = ["openid", "email", "profile"]
SCOPE_PATTERN = re.compile(r"\A[A-Za-z0-9_:.\-/]{1,64}\Z")
GROUP_PATTERN = re.compile(r"\A[A-Za-z0-9_.:@\-]{1,64}\Z")
CLAIM_PATTERN = re.compile(r"\A[A-Za-z0-9_:.\-/]{1,100}\Z")
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
MAX_CLAIM_VALUES = 200


def config_error(field: str, message: str) -> dict[str, str]:
    """Return one detail of an invalid configuration."""
    return {"field": field, "code": "invalid", "message": message}


def require_platform_operator(actor) -> None:
    """Raise unless `actor` is the system (None) or platform staff allowed to change SSO configurations."""
    if actor is None:
        return
    if actor.is_active and actor.is_staff and actor.has_perm(CHANGE_SSO_PERMISSION):
        return
    raise NotPlatformOperator()


def secret_variable_allowed(variable: str, tenant: Tenant) -> bool:
    """Return whether an SSO configuration of `tenant` may read its client secret from `variable`."""
    pattern = str(tenancy_setting("SSO_CLIENT_SECRET_ENV_PATTERN"))
    pattern = pattern.replace("{tenant}", re.escape(tenant.schema_name.upper()))
    return re.match(pattern, variable or "") is not None


def validated_changes(tenant: Tenant, changes: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Return `changes` normalized; raise InvalidSsoConfig listing every field that is not valid."""
    errors = []
    if "client_secret" in changes:
        errors.append(
            config_error(
                "client_secret",
                "the secret itself is never stored: set client_secret_env to the name of the environment "
                "variable that holds it",
            )
        )
    errors += [
        config_error(name, "unknown field") for name in changes if name not in (*FIELDS, "client_secret")
    ]
    clean: dict[str, Any] = {}
    for name in FIELDS:
        if name not in changes:
            continue
        try:
            clean[name] = normalized_value(tenant, name, changes[name])
        except ValueError as error:
            errors.append(config_error(name, str(error)))
    if creating:
        errors += [
            config_error(name, "required") for name in ("issuer", "client_id") if not changes.get(name)
        ]
    if errors:
        raise InvalidSsoConfig(details=errors)
    return clean


def normalized_value(tenant: Tenant, name: str, value: Any) -> Any:
    """Return field `name`'s `value` normalized; raise ValueError saying what is wrong."""
    if name in BOOLEAN_FIELDS:
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return value
    if name == "issuer":
        return valid_issuer(value)
    if name == "client_id":
        if not isinstance(value, str) or not 0 < len(value.strip()) <= 200:
            raise ValueError("1 to 200 characters")
        return value.strip()
    if name == "client_secret_env":
        if not isinstance(value, str) or (value and not secret_variable_allowed(value, tenant)):
            raise ValueError(
                "the name of an environment variable allowed by CONTRACTOR['SSO_CLIENT_SECRET_ENV_PATTERN'] "
                "(e.g. ALPHA_SSO_CLIENT_SECRET), or empty for a public client"
            )
        return value
    if name == "scopes":
        if not isinstance(value, list) or not all(
            isinstance(s, str) and SCOPE_PATTERN.match(s) for s in value
        ):
            raise ValueError("a list of scope names")
        if "openid" not in value:
            raise ValueError("must include openid")
        return list(dict.fromkeys(value))
    if name in CLAIM_FIELDS:
        if not isinstance(value, str) or not CLAIM_PATTERN.match(value):
            raise ValueError("a claim name")
        return value
    if name == "role_mapping":
        return valid_mapping(value, lambda role: role in Role.values, f"roles are: {', '.join(Role.values)}")
    return valid_mapping(
        value, lambda group: bool(GROUP_PATTERN.match(group)), "group names: 1-64 of A-Za-z0-9_.:@-"
    )


def valid_issuer(value: Any) -> str:
    """Return the issuer URL if it may be used; raise ValueError saying why not."""
    if not isinstance(value, str) or not value or len(value) > 300:
        raise ValueError("an https URL of at most 300 characters")
    schemes = ("https://",) if tenancy_setting("SSO_REQUIRE_HTTPS") else ("https://", "http://")
    if not value.startswith(schemes) or "?" in value or "#" in value:
        raise ValueError("an https URL without query or fragment")
    refusal = url_refusal(value)
    if refusal:
        raise ValueError(refusal)
    return value


def valid_mapping(value: Any, allowed, rule: str) -> dict[str, list[str]]:
    """Return a {claim value: [names]} mapping whose names all pass `allowed`; raise ValueError."""
    if not isinstance(value, dict):
        raise ValueError('an object {"claim value": ["name", ...]}')
    clean = {}
    for claim_value, names in value.items():
        if not isinstance(claim_value, str) or not 0 < len(claim_value) <= 200:
            raise ValueError("claim values are strings of 1 to 200 characters")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) and allowed(n) for n in names):
            raise ValueError(f"{claim_value!r}: {rule}")
        clean[claim_value] = sorted(set(names))
    return clean


def config_snapshot(config: SsoConfig | None) -> dict[str, Any]:
    """Return the audited view of a configuration (the secret's variable name, never a secret)."""
    if config is None:
        return {}
    return {name: getattr(config, name) for name in FIELDS}


SSO_CONFIG_KIND = "sso.config"


@transaction.atomic
def sso_config_change(*, actor, tenant: Tenant, changes: dict[str, Any]):
    """Change `tenant`'s SSO configuration as a platform operator (or the system); return what happened.

    Returns the SsoConfig when the change applied (tightening, or a tenant still bootstrapping with one
    admin), or the pending GovernanceChangeRequest a tenant admin must approve when it loosens control.
    """
    from governance.services import governed_change  # governance imports tenancy at module level

    require_platform_operator(actor)
    config = SsoConfig.objects.select_for_update().filter(tenant=tenant).first()
    clean = validated_changes(tenant, changes, creating=config is None)
    loosened = sso_config_loosens(config, clean)
    fields = ", ".join(sorted(clean))
    change = governed_change(
        actor=actor,
        kind=SSO_CONFIG_KIND,
        target={"tenant": tenant.schema_name},
        before=config_snapshot(config),
        proposed=clean,
        loosening=bool(loosened),
        summary=f"single sign-on of {tenant.schema_name}: {fields} (loosens {', '.join(loosened)})",
        tenant=tenant,
    )
    if change is not None:
        return change
    return write_config(actor, tenant, clean)


def sso_config_state(target: dict) -> dict[str, Any]:
    """Return the tenant's configuration as a change request's before-state (the governance kind's state)."""
    config = SsoConfig.objects.select_for_update().filter(tenant__schema_name=target["tenant"]).first()
    return config_snapshot(config)


def sso_config_approved_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply an approved SSO change request (`actor`: the tenant admin whose approval completed it)."""
    tenant = Tenant.objects.get(schema_name=target["tenant"])
    creating = not SsoConfig.objects.filter(tenant=tenant).exists()
    write_config(
        actor, tenant, validated_changes(tenant, proposed, creating=creating), approved_by=approved_by
    )


@transaction.atomic
def sso_config_apply(*, actor, tenant: Tenant, changes: dict[str, Any]) -> SsoConfig:
    """Apply `changes` (field → new value) to `tenant`'s SSO configuration at once, creating it if needed.

    Only the system's own set-up may (`actor` None: deployment scripts, tests); every person's edit, platform
    operators' included, goes through `sso_config_change`.
    """
    if actor is not None:
        raise NotPlatformOperator()
    config = SsoConfig.objects.select_for_update().filter(tenant=tenant).first()
    return write_config(actor, tenant, validated_changes(tenant, changes, creating=config is None))


def write_config(actor, tenant: Tenant, clean: dict[str, Any], *, approved_by=None) -> SsoConfig:
    """Write validated changes to `tenant`'s configuration and audit them (in the caller's transaction)."""
    config = SsoConfig.objects.select_for_update().filter(tenant=tenant).first()
    before = config_snapshot(config)
    if config is None:
        config = SsoConfig(tenant=tenant, scopes=list(DEFAULT_SCOPES))
    for name, value in clean.items():
        setattr(config, name, value)
    config.save()
    after = config_snapshot(config)
    changed = sorted(name for name in FIELDS if before.get(name) != after[name])
    with schema_context(tenant.schema_name):
        record(
            actor=actor,
            action=TenancyAction.SSO_CONFIG_CHANGED,
            target=("tenancy.ssoconfig", tenant.schema_name),
            data={"changed": changed, "before": before, "after": after, "approved_by": approved_by or []},
        )
    return config


def sso_config_validate(*, tenant: Tenant, changes: dict[str, Any]) -> dict[str, Any]:
    """Return `changes` normalized, as `sso_config_apply` would apply them; raise InvalidSsoConfig."""
    creating = not SsoConfig.objects.filter(tenant=tenant).exists()
    return validated_changes(tenant, changes, creating=creating)


def sso_config_loosens(config: SsoConfig | None, changes: dict[str, Any]) -> list[str]:
    """Return the fields of `changes` that loosen control (need another admin's approval under governance).

    Loosening: a new provider or client (who may sign in), a mapping granting a role or group to a claim value
    that did not have it, sso_only turned off, auto_provision or enabled turned on.
    """
    before = config_snapshot(config)
    return [name for name, value in changes.items() if loosens(name, before.get(name), value)]


def loosens(name: str, old: Any, new: Any) -> bool:
    """Return whether changing field `name` from `old` to `new` loosens control."""
    if name in ("issuer", "client_id", "client_secret_env", *CLAIM_FIELDS):
        return new != old
    if name in ("role_mapping", "group_mapping"):
        old = old or {}
        return any(set(names) - set(old.get(claim, [])) for claim, names in (new or {}).items())
    if name == "sso_only":
        return old is True and new is False
    if name in ("auto_provision", "enabled"):
        return new is True and old is not True
    return False


@dataclass(frozen=True)
class SsoSignIn:
    """A verified sign-in's outcome: the user and the roles and groups the claims gave them."""

    user: Any
    membership: Membership
    roles: list[str]
    groups: list[str]


def claim_values(value: Any) -> list[str]:
    """Return a claim's values as strings (a string is one value; lists keep their string items)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)][:MAX_CLAIM_VALUES]
    return []


def mapped(config: SsoConfig, claimed: list[str]) -> tuple[list[str], list[str]]:
    """Return the roles and groups that the claimed values map to."""
    roles = {role for value in claimed for role in config.role_mapping.get(value, [])}
    groups = {group for value in claimed for group in config.group_mapping.get(value, [])}
    return sorted(roles & set(Role.values)), sorted(groups)


def sso_sign_in(*, tenant: Tenant, config: SsoConfig, claims: dict[str, Any]) -> SsoSignIn:
    """Return the user that verified `claims` sign in as, with roles and groups recomputed from them; audited.

    A subject seen for the first time gets a new user (when the tenant provisions users); its claims never
    select an existing user by name, so a provider cannot take over an account it did not create. Claims that
    map to no role end the membership and refuse the sign-in (SsoNoRole), as does an unknown subject where
    provisioning is off (SsoNoAccount): both are audited.
    """
    claimed = claim_values(claims.get(config.groups_claim))
    roles, groups = mapped(config, claimed)
    seen = {"subject": claims["sub"], "issuer": config.issuer, "idp_groups": claimed}
    refusal = None
    with transaction.atomic(), schema_context(tenant.schema_name):
        identity = (
            SsoIdentity.objects.select_for_update()
            .select_related("user")
            .filter(tenant=tenant, issuer=config.issuer, subject=claims["sub"])
            .first()
        )
        if identity is None and not config.auto_provision:
            refusal = SsoNoAccount()
        elif identity is None and not roles:
            refusal = SsoNoRole(SSO_NO_ROLE.format(groups=", ".join(claimed) or "none"))
        if refusal is not None:
            record(
                actor=None,
                action=TenancyAction.SSO_REFUSED,
                target=("auth.user", claims["sub"]),
                data={**seen, "reason": refusal.code},
            )
        else:
            if identity is None:
                identity = SsoIdentity.objects.create(
                    tenant=tenant,
                    issuer=config.issuer,
                    subject=claims["sub"],
                    user=provisioned_user(tenant, config, claims),
                )
            user = identity.user
            identity.last_sign_in_at = timezone.now()
            identity.save(update_fields=["last_sign_in_at"])
            if not user.is_active:  # deactivated by the platform: the provider cannot bring it back
                refusal = SsoNoAccount()
            else:
                update_email(user, claims.get(config.email_claim))
                membership = membership_sync(tenant, user, roles, groups)
                if not roles:
                    refusal = SsoNoRole(SSO_NO_ROLE.format(groups=", ".join(claimed) or "none"))
            action = TenancyAction.SSO_SIGNED_IN if refusal is None else TenancyAction.SSO_REFUSED
            data = {**seen, "user": user.get_username(), "roles": roles, "groups": groups}
            if refusal is not None:
                data["reason"] = refusal.code
            record(actor=user, action=action, target=("auth.user", user.get_username()), data=data)
    if refusal is not None:
        raise refusal
    return SsoSignIn(user=user, membership=membership, roles=roles, groups=groups)


def provisioned_user(tenant: Tenant, config: SsoConfig, claims: dict[str, Any]):
    """Create the global user of a new subject: `<username claim>@<tenant slug>`, made unique, no password."""
    slug = tenant.schema_name.replace("_", "-")
    wanted = claims.get(config.username_claim)
    base = USERNAME_UNSAFE.sub("-", wanted if isinstance(wanted, str) and wanted else claims["sub"])[:100]
    user_model = get_user_model()
    username, counter = f"{base}@{slug}", 1
    while user_model.objects.filter(username=username).exists():
        counter += 1
        username = f"{base}-{counter}@{slug}"
    user = user_model(username=username)
    user.set_unusable_password()
    user.save()
    return user


def update_email(user, email: Any) -> None:
    """Keep the user's email as the provider says (when it sends one)."""
    if isinstance(email, str) and len(email) <= 254 and email != user.email:
        user.email = email
        user.save(update_fields=["email"])


def membership_sync(tenant: Tenant, user, roles: list[str], groups: list[str]) -> Membership:
    """Give `user` exactly `roles` and `groups` in `tenant` (no role: inactive); record a change as
    membership.changed with source "sso".

    The provider is authoritative here: unlike `membership_set`, this may remove the tenant's last admin
    (platform staff restore one; see README "Single sign-on").
    """
    membership = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
    before_roles = sorted(membership.roles) if membership and membership.is_active else []
    before_groups = sorted(membership.groups) if membership and membership.is_active else []
    if membership is None:
        membership = Membership(user=user, tenant=tenant)
    if before_roles == roles and before_groups == groups and membership.pk:
        return membership
    membership.roles = roles
    membership.groups = groups
    membership.is_active = bool(roles)
    membership.save()
    record(
        actor=None,
        action=TenancyAction.MEMBERSHIP_CHANGED,
        target=("tenancy.membership", user.get_username()),
        data={
            "user": user.get_username(),
            "roles_before": before_roles,
            "roles_after": roles,
            "groups_before": before_groups,
            "groups_after": groups,
            "source": "sso",
        },
    )
    return membership


def break_glass_record(*, tenant: Tenant, user, address: str) -> None:
    """Write auth.break_glass_sign_in: platform staff signed in with a password on an "SSO only" tenant."""
    with transaction.atomic(), schema_context(tenant.schema_name):
        record(
            actor=user,
            action=TenancyAction.BREAK_GLASS_SIGN_IN,
            target=("auth.user", user.get_username()),
            data={"user": user.get_username(), "address": address},
        )
