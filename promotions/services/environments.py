"""Environments and their promotion rules: defaults, rule changes, approvers."""

from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import record
from promotions.actions import PromotionAction
from promotions.defaults import DEFAULT_ENVIRONMENTS
from promotions.exceptions import (
    REQUIREMENT_CYCLE,
    REQUIRES_ITSELF,
    USER_NOT_FOUND,
    InvalidEnvironmentRule,
    UserNotFound,
)
from promotions.models import Environment, PromotionRequest, PromotionStatus
from promotions.selectors import access_environment
from promotions.services.deployments import promotion_apply_if_ready
from promotions.services.preconditions import locked_environment, require
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, membership_of

UNCHANGED = ...


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
    }


def environment_update(
    *,
    actor,
    environment: Environment,
    requires_gates: bool | None = None,
    required_approvals: int | None = None,
    requires_live_in=UNCHANGED,
    description: str | None = None,
) -> Environment:
    """Change `environment`'s rules (admins); None (or `...` for requires_live_in) leaves a rule unchanged.

    Pending requests that the new rules make ready (fewer approvals, no gates) are applied at once.

    `requires_live_in` takes an Environment, an environment name, or None to drop the requirement.
    """
    require(actor, Capability.MANAGE_ENVIRONMENTS)
    with transaction.atomic():
        environment = locked_environment(environment)
        before = environment_rules(environment)
        changed = []
        if requires_gates is not None and requires_gates != environment.requires_gates:
            environment.requires_gates = requires_gates
            changed.append("requires_gates")
        if required_approvals is not None and required_approvals != environment.required_approvals:
            if required_approvals < 0:
                raise InvalidEnvironmentRule("required_approvals cannot be negative.")
            environment.required_approvals = required_approvals
            changed.append("required_approvals")
        if description is not None and description != environment.description:
            environment.description = description
            changed.append("description")
        if requires_live_in is not UNCHANGED:
            required = resolve_required_environment(environment, requires_live_in)
            if (required.pk if required else None) != environment.requires_live_in_id:
                environment.requires_live_in = required
                changed.append("requires_live_in")
        if not changed:
            return environment
        environment._history_user = actor
        environment.save(update_fields=[*changed, "updated_at"])
        record(
            actor=actor,
            action=PromotionAction.ENVIRONMENT_CHANGED,
            target=environment,
            data={
                "environment": environment.name,
                "changed": changed,
                "before": before,
                "after": environment_rules(environment),
            },
        )
        # Looser rules may make waiting requests ready; they are applied like any other ready request.
        waiting = PromotionRequest.objects.filter(environment=environment, status=PromotionStatus.PENDING)
        for request in waiting.select_related("version__bundle", "requested_by").order_by("id"):
            request.environment = environment
            promotion_apply_if_ready(actor=None, request=request)
    return environment


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


def environment_approval_grant(*, actor, environment: Environment, user, granted: bool) -> None:
    """Grant or revoke `user`'s approve_promotion on `environment` (admins); the user must be a member."""
    require(actor, Capability.MANAGE_ENVIRONMENTS)
    if membership_of(user, current_tenant()) is None:
        raise UserNotFound(USER_NOT_FOUND.format(username=user.get_username()))
    with transaction.atomic():
        environment = locked_environment(environment)
        if granted:
            assign_perm("approve_promotion", user, environment)
        else:
            remove_perm("approve_promotion", user, environment)
        record(
            actor=actor,
            action=PromotionAction.APPROVER_GRANTED if granted else PromotionAction.APPROVER_REVOKED,
            target=environment,
            data={"environment": environment.name, "user": user.get_username(), "granted": granted},
        )
