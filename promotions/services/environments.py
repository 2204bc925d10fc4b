"""Environments and their promotion rules: defaults, rule changes, approvers."""

import re

from django.contrib.auth import get_user_model
from django.db import transaction
from guardian.shortcuts import assign_perm, get_user_perms, remove_perm

from audit.services import record
from governance.services import governed_change, in_tenant_schema
from promotions.actions import PromotionAction
from promotions.defaults import DEFAULT_ENVIRONMENTS
from promotions.exceptions import (
    REQUIREMENT_CYCLE,
    REQUIRES_ITSELF,
    SEPARATION_OF_DUTIES,
    UNKNOWN_GROUP_NAME,
    USER_NOT_FOUND,
    InvalidEnvironmentRule,
    SeparationOfDuties,
    UserNotFound,
)
from promotions.models import Environment
from promotions.selectors import access_environment
from promotions.services.preconditions import locked_environment, require
from tenancy.roles import Capability, Role
from tenancy.selectors import current_tenant, membership_of

UNCHANGED = ...
ENVIRONMENT_RULES_KIND = "environment.rules"
APPROVER_GRANT_KIND = "environment.approver"
RULE_ORDER = (
    "requires_gates",
    "required_approvals",
    "description",
    "requires_live_in",
    "forbid_author_approval",
    "required_groups",
)
GROUP_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def environments_ensure_defaults(*, actor=None) -> list[Environment]:
    """Create the default environments that are missing (staging, current); return every default one."""
    ensured = []
    with transaction.atomic():
        for spec in DEFAULT_ENVIRONMENTS:
            environment = Environment.objects.filter(name=spec["name"]).first()
            if environment is None:
                required = Environment.objects.filter(name=spec["requires_live_in"]).first()
                environment = Environment(
                    name=spec["name"],
                    position=spec["position"],
                    description=spec["description"],
                    requires_gates=spec["requires_gates"],
                    required_approvals=spec["required_approvals"],
                    requires_live_in=required,
                    forbid_author_approval=spec["forbid_author_approval"],
                )
                environment._history_user = actor
                environment.save()
                record(
                    actor=actor,
                    action=PromotionAction.ENVIRONMENT_CREATED,
                    target=environment,
                    data={"environment": environment.name, **environment_rules(environment)},
                )
            ensured.append(environment)
    return ensured


def environment_rules(environment: Environment) -> dict:
    """Return the promotion rules of `environment`."""
    return {
        "description": environment.description,
        "requires_gates": environment.requires_gates,
        "required_approvals": environment.required_approvals,
        "requires_live_in": environment.requires_live_in.name if environment.requires_live_in else None,
        "forbid_author_approval": environment.forbid_author_approval,
        "required_groups": sorted(environment.required_groups),
    }


def rules_loosen(before: dict, after: dict) -> bool:
    """Return whether going from rules `before` to `after` weakens any control (the description does not)."""
    return (
        after["required_approvals"] < before["required_approvals"]
        or (before["requires_gates"] and not after["requires_gates"])
        or (
            before["requires_live_in"] is not None and after["requires_live_in"] != before["requires_live_in"]
        )
        or (before["forbid_author_approval"] and not after["forbid_author_approval"])
        or not set(before["required_groups"]) <= set(after["required_groups"])
    )


def environment_update(
    *,
    actor,
    environment: Environment,
    requires_gates: bool | None = None,
    required_approvals: int | None = None,
    requires_live_in=UNCHANGED,
    description: str | None = None,
    forbid_author_approval: bool | None = None,
    required_groups: list[str] | None = None,
):
    """Change `environment`'s rules (admins); None (or `...` for requires_live_in) leaves a rule unchanged.

    Return the environment when the change applied (tightening, or nothing that weakens control), or the
    pending GovernanceChangeRequest when it loosens a rule and needs another admin's approval. Rule changes
    never decide requests that are already pending: each keeps the rules it was made under.

    `requires_live_in` takes an Environment, an environment name, or None to drop the requirement.
    """
    require(actor, Capability.MANAGE_ENVIRONMENTS)
    with transaction.atomic():
        environment = locked_environment(environment)
        before = environment_rules(environment)
        after = dict(before)
        if requires_gates is not None:
            after["requires_gates"] = bool(requires_gates)
        if required_approvals is not None:
            if required_approvals < 0:
                raise InvalidEnvironmentRule("required_approvals cannot be negative.")
            after["required_approvals"] = required_approvals
        if description is not None:
            after["description"] = description
        if forbid_author_approval is not None:
            after["forbid_author_approval"] = bool(forbid_author_approval)
        if required_groups is not None:
            after["required_groups"] = sorted(set(valid_group_names(required_groups)))
        if requires_live_in is not UNCHANGED:
            required = resolve_required_environment(environment, requires_live_in)
            after["requires_live_in"] = required.name if required else None
        if after == before:
            return environment
        change = governed_change(
            actor=actor,
            kind=ENVIRONMENT_RULES_KIND,
            target={"environment": environment.name},
            before=before,
            proposed=after,
            loosening=rules_loosen(before, after),
            summary=rules_summary(environment.name, before, after),
        )
        if change is not None:
            return change
        environment_apply_rules(environment, after, actor=actor)
    return environment


def rules_summary(name: str, before: dict, after: dict) -> str:
    """Return a one-line description of what a rule change changes."""
    changed = [f"{key}: {before[key]!r} -> {after[key]!r}" for key in after if after[key] != before.get(key)]
    return f"environment {name}: " + "; ".join(changed)


def valid_group_names(names: list[str]) -> list[str]:
    """Return `names` stripped, refusing names that are not group names."""
    cleaned = [str(name).strip() for name in names]
    if any(not GROUP_NAME.match(name) for name in cleaned):
        raise InvalidEnvironmentRule(UNKNOWN_GROUP_NAME)
    return cleaned


def environment_apply_rules(environment: Environment, rules: dict, *, actor, approved_by=None) -> None:
    """Give locked `environment` the `rules` (as environment_rules returns them) and audit the change."""
    before = environment_rules(environment)
    changed = [key for key in RULE_ORDER if rules[key] != before.get(key)]
    environment.description = rules["description"]
    environment.requires_gates = rules["requires_gates"]
    environment.required_approvals = rules["required_approvals"]
    environment.forbid_author_approval = rules["forbid_author_approval"]
    environment.required_groups = list(rules["required_groups"])
    environment.requires_live_in = (
        access_environment(None, rules["requires_live_in"]) if rules["requires_live_in"] else None
    )
    environment._history_user = actor
    fields = ["requires_live_in" if key == "requires_live_in" else key for key in changed]
    environment.save(update_fields=[*fields, "updated_at"])
    data = {"environment": environment.name, "changed": changed, "before": before, "after": rules}
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(actor=actor, action=PromotionAction.ENVIRONMENT_CHANGED, target=environment, data=data)


def environment_rules_state(target: dict) -> dict:
    """Return the current rules of the target environment (row locked), for the governance kind."""
    return environment_rules(locked_environment(access_environment(None, target["environment"])))


def environment_rules_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply approved rules to the target environment."""
    environment = locked_environment(access_environment(None, target["environment"]))
    environment_apply_rules(environment, proposed, actor=actor, approved_by=approved_by)


def resolve_required_environment(environment: Environment, value) -> Environment | None:
    """Return the environment `value` names as `environment`'s prerequisite; refuse itself and cycles."""
    if value is None or value == "":
        return None
    required = value if isinstance(value, Environment) else access_environment(None, str(value))
    if required.pk == environment.pk:
        raise InvalidEnvironmentRule(REQUIRES_ITSELF)
    step, seen = required, set()
    while step is not None and step.pk not in seen:
        if step.pk == environment.pk:
            raise InvalidEnvironmentRule(
                REQUIREMENT_CYCLE.format(required=required.name, environment=environment.name)
            )
        seen.add(step.pk)
        step = step.requires_live_in
    return required


def environment_approval_grant(*, actor, environment: Environment, user, granted: bool):
    """Grant or revoke `user`'s approve_promotion on `environment` (admins); the user must be a member.

    A revocation applies at once; a grant is a loosening: it returns the pending GovernanceChangeRequest
    unless the tenant is still bootstrapping (then None, applied). The grantee can never approve their own
    grant. Where the environment separates duties, a member holding the author role cannot be granted.
    """
    require(actor, Capability.MANAGE_ENVIRONMENTS)
    if membership_of(user, current_tenant()) is None:
        raise UserNotFound(USER_NOT_FOUND.format(username=user.get_username()))
    with transaction.atomic():
        environment = locked_environment(environment)
        if granted:
            refuse_author_approver(environment, user)
        target = {"environment": environment.name, "user": user.get_username()}
        change = governed_change(
            actor=actor,
            kind=APPROVER_GRANT_KIND,
            target=target,
            before=approver_state(target),
            proposed={"granted": granted},
            loosening=granted,
            summary=f"{'grant' if granted else 'revoke'} approve_promotion on {environment.name} "
            f"{'to' if granted else 'from'} {user.get_username()}",
            beneficiary=user if granted else None,
        )
        if change is not None:
            return change
        apply_approver_grant(environment, user, granted, actor=actor)
    return None


def refuse_author_approver(environment: Environment, user) -> None:
    """Raise SeparationOfDuties when `environment` separates duties and `user` holds the author role."""
    membership = membership_of(user, current_tenant())
    if environment.forbid_author_approval and membership is not None and Role.AUTHOR in membership.roles:
        raise SeparationOfDuties(
            SEPARATION_OF_DUTIES.format(environment=environment.name, username=user.get_username())
        )


def apply_approver_grant(environment: Environment, user, granted: bool, *, actor, approved_by=None) -> None:
    """Grant or revoke approve_promotion (environment locked by the caller) and audit it."""
    if granted:
        refuse_author_approver(environment, user)
        assign_perm("approve_promotion", user, environment)
    else:
        remove_perm("approve_promotion", user, environment)
    data = {"environment": environment.name, "user": user.get_username(), "granted": granted}
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(
        actor=actor,
        action=PromotionAction.APPROVER_GRANTED if granted else PromotionAction.APPROVER_REVOKED,
        target=environment,
        data=data,
    )


def approver_state(target: dict) -> dict:
    """Return whether the target user holds approve_promotion on the target environment directly."""
    environment = access_environment(None, target["environment"])
    user = get_user_model().objects.filter(username=target["user"]).first()
    holds = user is not None and "approve_promotion" in get_user_perms(user, environment)
    return {"granted": holds}


def approver_grant_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply an approved approver grant or revocation."""
    environment = locked_environment(access_environment(None, target["environment"]))
    user = get_user_model().objects.get(username=target["user"])
    if proposed["granted"] and membership_of(user, current_tenant()) is None:
        raise UserNotFound(USER_NOT_FOUND.format(username=user.get_username()))
    apply_approver_grant(environment, user, proposed["granted"], actor=actor, approved_by=approved_by)


def author_role_check(tenant, user, roles: list[str]) -> None:
    """Refuse giving the author role to a member who may approve where duties are separated (a role check
    registered with tenancy, so memberships cannot undo the separation)."""
    if Role.AUTHOR not in roles:
        return
    with in_tenant_schema(tenant):
        for environment in Environment.objects.filter(forbid_author_approval=True):
            if "approve_promotion" in get_user_perms(user, environment):
                raise SeparationOfDuties(
                    SEPARATION_OF_DUTIES.format(environment=environment.name, username=user.get_username())
                )
