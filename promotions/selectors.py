"""Reads of environments, gate runs, promotion requests, the release pointer and webhooks."""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user, get_users_with_perms

from bundles.models import Bundle, BundleVersion
from promotions.exceptions import (
    ENVIRONMENT_NOT_FOUND,
    GATE_RUN_NOT_FOUND,
    PROMOTION_NOT_FOUND,
    WEBHOOK_NOT_FOUND,
    EnvironmentNotFound,
    GateRunNotFound,
    PromotionNotFound,
    WebhookNotFound,
)
from promotions.models import (
    Approval,
    Deployment,
    Environment,
    GateRun,
    GateStatus,
    PromotionRequest,
    PromotionStatus,
    Webhook,
    WebhookDelivery,
)
from tenancy.models import Membership
from tenancy.roles import Capability, Role
from tenancy.selectors import current_tenant, holds_object_permission, membership_of

APPROVE_PERMISSION = "promotions.approve_promotion"
APPROVE_CODENAME = "approve_promotion"

# Reasons approval_eligibility gives (the same codes the services raise).
ELIGIBLE = ""
REASON_NOT_A_MEMBER = "not_a_member"
REASON_MISSING_ROLE = "missing_role"
REASON_SELF_APPROVAL = "self_approval"
REASON_NOT_AN_APPROVER = "not_an_approver"
REASON_NOT_PENDING = "request_not_pending"
REASON_ALREADY_DECIDED = "already_decided"
REASON_SEPARATION_OF_DUTIES = "separation_of_duties"


# Environments ---------------------------------------------------------------------------------------------


def environments() -> QuerySet[Environment]:
    """Return the tenant's environments in promotion order."""
    return Environment.objects.select_related("requires_live_in").order_by("position", "name")


def access_environment(actor, name: str) -> Environment:
    """Return environment `name`, or raise EnvironmentNotFound (every member may read environments)."""
    environment = environments().filter(name=name).first()
    if environment is None:
        raise EnvironmentNotFound(ENVIRONMENT_NOT_FOUND.format(name=name))
    return environment


def environment_approvers(environment: Environment) -> list:
    """Return the users holding approve_promotion on `environment`, by username."""
    users = get_users_with_perms(
        environment, only_with_perms_in=["approve_promotion"], with_superusers=False, with_group_users=True
    )
    return sorted(users, key=lambda user: user.get_username())


def environment_history(environment: Environment):
    """Return the recorded versions of `environment`'s rules, newest first."""
    return environment.history.order_by("-history_date", "-history_id")


# Gate runs ------------------------------------------------------------------------------------------------


def latest_gate_run(version: BundleVersion) -> GateRun | None:
    """Return the newest gate run for `version`'s digest, or None when gates never ran."""
    return GateRun.objects.filter(digest=version.digest).order_by("-created_at", "-id").first()


def version_passed_gates(version: BundleVersion) -> bool:
    """Return whether some gate run passed for `version`'s digest (results are per digest)."""
    return GateRun.objects.filter(digest=version.digest, status=GateStatus.PASSED).exists()


def gate_runs_of(version: BundleVersion) -> QuerySet[GateRun]:
    """Return every gate run of `version`'s digest, newest first."""
    return GateRun.objects.filter(digest=version.digest).order_by("-created_at", "-id")


def gates_summary(version: BundleVersion) -> dict | None:
    """Return the status of the run that decides `version`'s gates: a passed run if any, else the latest."""
    run = GateRun.objects.filter(digest=version.digest, status=GateStatus.PASSED).order_by(
        "-id"
    ).first() or latest_gate_run(version)
    if run is None:
        return None
    return {
        "run_id": run.pk,
        "status": run.status,
        "digest": run.digest,
        "pass_rate": run.pass_rate,
        "policy_coverage": run.policy_coverage,
        "finished_at": run.finished_at,
    }


def access_gate_run(actor, gate_run_id: int) -> GateRun:
    """Return gate run `gate_run_id`, or raise GateRunNotFound."""
    run = GateRun.objects.select_related("version__bundle").filter(pk=gate_run_id).first()
    if run is None:
        raise GateRunNotFound(GATE_RUN_NOT_FOUND.format(id=gate_run_id))
    return run


# Promotion requests ---------------------------------------------------------------------------------------


def promotion_requests(
    *, status: str | None = None, environment: str | None = None, bundle: str | None = None
):
    """Return promotion requests, newest first, optionally filtered by status, environment or bundle name."""
    requests = PromotionRequest.objects.select_related(
        "version__bundle", "environment", "requested_by"
    ).order_by("-created_at", "-id")
    if status:
        requests = requests.filter(status=status)
    if environment:
        requests = requests.filter(environment__name=environment)
    if bundle:
        requests = requests.filter(version__bundle__name=bundle)
    return requests


def access_promotion(actor, promotion_id) -> PromotionRequest:
    """Return promotion request `promotion_id`, or raise PromotionNotFound (also for ids of other tenants)."""
    try:
        key = int(promotion_id)
    except (TypeError, ValueError):
        key = None
    found = promotion_requests().filter(pk=key).first() if key is not None else None
    if found is None:
        raise PromotionNotFound(PROMOTION_NOT_FOUND.format(id=promotion_id))
    return found


def approvals_of(request: PromotionRequest) -> QuerySet[Approval]:
    """Return the decisions recorded on `request`, oldest first."""
    return Approval.objects.filter(request=request).select_related("reviewer").order_by("created_at", "id")


def approval_rules(environment: Environment) -> dict:
    """Return the rules a promotion request to `environment` is decided under (snapshot at request time)."""
    return {
        "requires_gates": environment.requires_gates,
        "required_approvals": environment.required_approvals,
        "required_groups": sorted(environment.required_groups),
        "forbid_author_approval": environment.forbid_author_approval,
    }


def request_rules(request: PromotionRequest) -> dict:
    """Return the rules `request` was made under (requests older than snapshots: the environment's now)."""
    return {**approval_rules(request.environment), **(request.rules or {})}


def approving_reviewers(request: PromotionRequest) -> list:
    """Return the users who approved `request`, in the order they approved."""
    approvals = Approval.objects.filter(request=request, decision="approve").select_related("reviewer")
    return [approval.reviewer for approval in approvals.order_by("created_at", "id")]


def groups_covered(reviewers: list, required_groups: list[str]) -> bool:
    """Return whether each required group has its own approver: distinct reviewers, one per group, each a
    member of the group they stand for (a bipartite matching; one person never satisfies two groups)."""
    if not required_groups:
        return True
    memberships = Membership.objects.filter(
        tenant=current_tenant(), user__in=reviewers, is_active=True
    ).values_list("user_id", "groups")
    groups_of = {user_id: set(groups) for user_id, groups in memberships}
    matched: dict[int, str] = {}  # reviewer id -> group

    def assign(group: str, seen: set[int]) -> bool:
        for user_id, groups in groups_of.items():
            if group in groups and user_id not in seen:
                seen.add(user_id)
                if user_id not in matched or assign(matched[user_id], seen):
                    matched[user_id] = group
                    return True
        return False

    return all(assign(group, set()) for group in required_groups)


def approval_count(request: PromotionRequest) -> int:
    """Return how many distinct reviewers approved `request`."""
    return Approval.objects.filter(request=request, decision="approve").count()


def approval_eligibility(user, request: PromotionRequest) -> tuple[bool, str]:
    """Return (True, "") when `user` may approve or reject `request` now, else (False, the refusal code)."""
    membership = membership_of(user, current_tenant())
    if membership is None:
        return False, REASON_NOT_A_MEMBER
    if not membership.can(Capability.APPROVE_PROMOTION):
        return False, REASON_MISSING_ROLE
    if request.requested_by_id == user.pk:
        return False, REASON_SELF_APPROVAL
    if not holds_object_permission(user, APPROVE_CODENAME, request.environment):
        return False, REASON_NOT_AN_APPROVER
    if request_rules(request)["forbid_author_approval"] and (
        Role.AUTHOR in membership.roles or request.version.author_id == user.pk
    ):
        return False, REASON_SEPARATION_OF_DUTIES
    if request.status != PromotionStatus.PENDING:
        return False, REASON_NOT_PENDING
    if Approval.objects.filter(request=request, reviewer=user).exists():
        return False, REASON_ALREADY_DECIDED
    return True, ELIGIBLE


def pending_approvals_for(user) -> list[PromotionRequest]:
    """Return the pending requests `user` may approve now, oldest first."""
    membership = membership_of(user, current_tenant())
    if membership is None or not membership.can(Capability.APPROVE_PROMOTION):
        return []
    allowed = get_objects_for_user(
        user,
        APPROVE_PERMISSION,
        klass=Environment,
        accept_global_perms=False,
        use_groups=True,
        with_superuser=False,  # superusers approve only where granted, like everyone (check_decider)
    )
    return list(
        promotion_requests(status=PromotionStatus.PENDING)
        .filter(environment__in=allowed)
        .exclude(requested_by=user)
        .exclude(approvals__reviewer=user)
        .order_by("created_at", "id")
    )


# Deployments (the release pointer) ------------------------------------------------------------------------


def live_deployment(
    bundle: Bundle, environment: Environment, as_of: datetime | None = None
) -> Deployment | None:
    """Return the deployment row that is (or was at `as_of`) live for `bundle` in `environment`."""
    rows = Deployment.objects.filter(bundle=bundle, environment=environment)
    if as_of is not None:
        rows = rows.filter(created_at__lte=as_of)
    return rows.select_related("version").order_by("-id").first()


def live_version(
    bundle: Bundle, environment: Environment, as_of: datetime | None = None
) -> BundleVersion | None:
    """Return the version of `bundle` live in `environment` now (or at `as_of`), or None."""
    deployment = live_deployment(bundle, environment, as_of)
    return deployment.version if deployment else None


def live_rows(as_of: datetime | None = None) -> QuerySet[Deployment]:
    """Return the live deployment row of every (bundle, environment) pair (at `as_of` when given)."""
    rows = Deployment.objects.all()
    if as_of is not None:
        rows = rows.filter(created_at__lte=as_of)
    latest = rows.order_by("bundle_id", "environment_id", "-id").distinct("bundle_id", "environment_id")
    return Deployment.objects.filter(pk__in=latest.values("pk"))


def live_versions(bundle: Bundle | None = None) -> list[tuple[Bundle, Environment, Deployment]]:
    """Return (bundle, environment, live deployment) for each pair with something live, by bundle and env."""
    rows = live_rows().select_related("bundle", "environment", "version", "actor", "request")
    if bundle is not None:
        rows = rows.filter(bundle=bundle)
    rows = rows.order_by("bundle__name", "environment__position", "environment__name")
    return [(row.bundle, row.environment, row) for row in rows]


def deployment_history(
    bundle: Bundle | None = None, environment: Environment | None = None, as_of: datetime | None = None
) -> QuerySet[Deployment]:
    """Return the pointer history, newest first; with `as_of`, only the rows that were live at that time."""
    rows = live_rows(as_of) if as_of is not None else Deployment.objects.all()
    if bundle is not None:
        rows = rows.filter(bundle=bundle)
    if environment is not None:
        rows = rows.filter(environment=environment)
    return rows.select_related(
        "bundle", "environment", "version", "actor", "request", "previous__version"
    ).order_by("-created_at", "-id")


def was_live_in(version: BundleVersion, environment: Environment) -> bool:
    """Return whether `version` was ever live in `environment`."""
    return Deployment.objects.filter(version=version, environment=environment).exists()


def rollback_candidates(bundle: Bundle, environment: Environment) -> list[BundleVersion]:
    """Return the versions once live in `environment` that a rollback may return to, latest-live first."""
    current = live_version(bundle, environment)
    seen: set[int] = set()
    candidates = []
    for row in (
        Deployment.objects.filter(bundle=bundle, environment=environment)
        .select_related("version")
        .order_by("-id")
    ):
        if row.version_id in seen or (current is not None and row.version_id == current.pk):
            continue
        seen.add(row.version_id)
        candidates.append(row.version)
    return candidates


def default_rollback_target(bundle: Bundle, environment: Environment) -> BundleVersion | None:
    """Return the version live before the current one (skipping rows of the current version), or None."""
    current = live_deployment(bundle, environment)
    if current is None:
        return None
    earlier = (
        Deployment.objects.filter(bundle=bundle, environment=environment, id__lt=current.pk)
        .exclude(version=current.version)
        .select_related("version")
        .order_by("-id")
        .first()
    )
    return earlier.version if earlier else None


def version_deployments(version: BundleVersion) -> dict:
    """Return, per environment, whether `version` is live there and when it was deployed there."""
    facts = {}
    for environment in environments():
        rows = list(Deployment.objects.filter(version=version, environment=environment).order_by("id"))
        live = live_version(version.bundle, environment)
        facts[environment.name] = {
            "live": live is not None and live.pk == version.pk,
            "deployed": [{"id": row.pk, "kind": row.kind, "at": row.created_at} for row in rows],
        }
    return facts


def bundle_live_facts(bundle: Bundle) -> dict:
    """Return the live version of `bundle` per environment (None where nothing is live)."""
    live = {environment.name: None for environment in environments()}
    for _, environment, deployment in live_versions(bundle):
        live[environment.name] = {
            "version": deployment.version.version,
            "digest": deployment.version.digest,
            "deployment_id": deployment.pk,
            "kind": deployment.kind,
            "since": deployment.created_at,
        }
    return live


# Webhooks -------------------------------------------------------------------------------------------------


def webhooks() -> QuerySet[Webhook]:
    """Return the tenant's webhooks that were not deleted."""
    return Webhook.objects.filter(deleted_at__isnull=True).order_by("id")


def access_webhook(actor, webhook_id) -> Webhook:
    """Return webhook `webhook_id`, or raise WebhookNotFound."""
    try:
        key = int(webhook_id)
    except (TypeError, ValueError):
        key = None
    found = webhooks().filter(pk=key).first() if key is not None else None
    if found is None:
        raise WebhookNotFound(WEBHOOK_NOT_FOUND.format(id=webhook_id))
    return found


def webhook_deliveries(webhook: Webhook) -> QuerySet[WebhookDelivery]:
    """Return the delivery attempts of `webhook`, newest first."""
    return WebhookDelivery.objects.filter(webhook=webhook).select_related("event").order_by("-id")


def active_member(username: str):
    """Return the active user `username` if they are an active member of the current tenant, else None."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or membership_of(user, current_tenant()) is None:
        return None
    return user
