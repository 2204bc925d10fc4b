"""Writes of promotions: environments, gate runs, promotion requests, deployments, rollback, webhooks.

Every decision about an environment runs in one transaction that first locks the environment's row
(`SELECT ... FOR UPDATE`), so concurrent approvals, promotions and rollbacks of one environment serialize and
each sees the pointer the previous one left. Each new deployment row also names the row it replaced
(`previous`, unique): even a code path that forgot the lock could not fork the pointer.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from audit.services import record
from bundles.language.compiler import compile_bundle
from bundles.language.suites import run_suites
from bundles.models import Bundle, BundleVersion
from core.tasks import enqueue_on_commit
from promotions import tasks
from promotions.conf import promotion_setting
from promotions.defaults import DEFAULT_ENVIRONMENTS
from promotions.exceptions import (
    ALREADY_DECIDED,
    ALREADY_LIVE,
    ALREADY_LIVE_REASON,
    GATES_ERRORED_REASON,
    GATES_FAILED_REASON,
    GATES_NOT_PASSED,
    INVALID_WEBHOOK_URL,
    NO_PREVIOUS_VERSION,
    NO_SUITES,
    NOT_AN_APPROVER,
    NOT_IN_STAGING,
    NOT_LIVE_IN_REQUIRED_ENVIRONMENT,
    NOT_PREVIOUSLY_LIVE,
    NOT_THE_REQUESTER,
    NOTHING_LIVE,
    REQUEST_EXISTS,
    REQUEST_NOT_PENDING,
    REQUIREMENT_CYCLE,
    REQUIRES_ITSELF,
    TOO_MANY_ATTEMPTS,
    UNKNOWN_EVENTS,
    USER_NOT_FOUND,
    WAITING_FOR_GATES_REASON,
    WORKER_LOST,
    AlreadyDecided,
    AlreadyLive,
    CommentRequired,
    GatesNotPassed,
    InvalidEnvironmentRule,
    InvalidWebhook,
    JustificationRequired,
    NoPreviousVersion,
    NotAnApprover,
    NothingLive,
    NotInStaging,
    NotLiveInRequiredEnvironment,
    NotPreviouslyLive,
    NotTheRequester,
    RequestExists,
    RequestNotPending,
    SelfApproval,
    UserNotFound,
)
from promotions.models import (
    Approval,
    ApprovalDecision,
    Deployment,
    DeploymentKind,
    Environment,
    GateRun,
    GateStatus,
    OutboxEvent,
    PromotionRequest,
    PromotionStatus,
    Webhook,
    WebhookDelivery,
)
from promotions.selectors import (
    APPROVE_CODENAME,
    approval_count,
    default_rollback_target,
    live_deployment,
    version_passed_gates,
    was_live_in,
)
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, holds_object_permission, membership_of, require_capability

logger = logging.getLogger(__name__)

FINISHED_GATE_STATUSES = (GateStatus.PASSED, GateStatus.FAILED, GateStatus.ERROR)
ACTIVE_GATE_STATUSES = (GateStatus.QUEUED, GateStatus.RUNNING)

# Notification events (outbox), the names webhooks subscribe to.
EVENT_PROMOTION_REQUESTED = "promotion.requested"
EVENT_PROMOTION_APPROVED = "promotion.approved"
EVENT_PROMOTION_REJECTED = "promotion.rejected"
EVENT_PROMOTION_PROMOTED = "promotion.promoted"
EVENT_PROMOTION_CANCELLED = "promotion.cancelled"
EVENT_PROMOTION_FAILED = "promotion.failed"
EVENT_ROLLED_BACK = "deployment.rolled_back"
EVENT_GATE_FINISHED = "gate.finished"
EVENTS = (
    EVENT_PROMOTION_REQUESTED,
    EVENT_PROMOTION_APPROVED,
    EVENT_PROMOTION_REJECTED,
    EVENT_PROMOTION_PROMOTED,
    EVENT_PROMOTION_CANCELLED,
    EVENT_PROMOTION_FAILED,
    EVENT_ROLLED_BACK,
    EVENT_GATE_FINISHED,
)

SIGNATURE_HEADER = "X-Contractor-Signature"
EVENT_HEADER = "X-Contractor-Event"
DELIVERY_HEADER = "X-Contractor-Delivery"
USER_AGENT = "CONTRACTOR-Webhooks/1"
# How much of a failed delivery's answer is read, and kept in its delivery record.
WEBHOOK_EXCERPT_BYTES = 1024
WEBHOOK_EXCERPT_CHARS = 200
UNCHANGED = ...


# Plumbing ------------------------------------------------------------------------------------------------


def require(actor, capability: str) -> None:
    """Raise unless `actor` (a user; None is the system) holds `capability` in the current tenant."""
    if actor is not None:
        require_capability(actor, capability)


def locked_environment(environment: Environment) -> Environment:
    """Return `environment` re-read under a row lock that serializes every decision about it."""
    return Environment.objects.select_for_update().get(pk=environment.pk)


def locked_request(request: PromotionRequest) -> tuple[Environment, PromotionRequest]:
    """Lock the request's environment, then return it with the request re-read under the lock."""
    environment = locked_environment(request.environment)
    fresh = PromotionRequest.objects.select_related("version__bundle", "requested_by").get(pk=request.pk)
    fresh.environment = environment
    return environment, fresh


def outbox_publish(event: str, payload: dict) -> OutboxEvent:
    """Write notification `event` in the caller's transaction; dispatch it once that commits."""
    entry = OutboxEvent.objects.create(event=event, payload=payload)
    # robust: a broker outage must not fail a committed change; the sweep dispatches the event later.
    enqueue_on_commit(tasks.dispatch_event, event_id=entry.pk)
    return entry


def username(user) -> str | None:
    """Return the user's name, or None for the system."""
    return user.get_username() if user is not None else None


def request_facts(request: PromotionRequest) -> dict:
    """Return what audit records and notifications say about `request`."""
    version = request.version
    return {
        "request": request.pk,
        "bundle": version.bundle.name,
        "version": version.version,
        "digest": version.digest,
        "environment": request.environment.name,
        "status": request.status,
        "requested_by": username(request.requested_by),
    }


# Environments --------------------------------------------------------------------------------------------


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
                    action="environment.created",
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
            action="environment.changed",
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
    from promotions.selectors import access_environment

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
            action="environment.approver_granted" if granted else "environment.approver_revoked",
            target=environment,
            data={"environment": environment.name, "user": user.get_username(), "granted": granted},
        )


# Gate runs -----------------------------------------------------------------------------------------------


def gate_run_start(*, actor, version: BundleVersion, enqueue: bool = True) -> GateRun:
    """Return the gate run that decides `version`: a passed or active one for its digest, else a new one.

    A new run is queued for the worker once this transaction commits (`enqueue=False` leaves running it to
    the caller, e.g. the demo seeder running gates inline).
    """
    require(actor, Capability.RUN_GATES)
    with transaction.atomic():
        return ensure_gate_run(actor=actor, version=version, enqueue=enqueue)


def ensure_gate_run(*, actor, version: BundleVersion, enqueue: bool = True) -> GateRun:
    """Return a passed or active run for `version`'s digest, or start one (in the caller's transaction)."""
    # Lock the version row so two concurrent starts cannot both queue a run.
    BundleVersion.objects.select_for_update(no_key=True).filter(pk=version.pk).values_list(
        "pk", flat=True
    ).first()
    runs = GateRun.objects.filter(digest=version.digest)
    existing = (
        runs.filter(status=GateStatus.PASSED).order_by("-id").first()
        or runs.filter(status__in=ACTIVE_GATE_STATUSES).order_by("-id").first()
    )
    if existing is not None:
        return existing
    run = GateRun.objects.create(version=version, digest=version.digest, requested_by=actor)
    record(
        actor=actor,
        action="gate.started",
        target=run,
        data={"bundle": version.bundle.name, "version": version.version, "digest": version.digest},
    )
    if enqueue:
        enqueue_on_commit(tasks.run_gates, gate_run_id=run.pk)
    return run


def gate_run_execute(*, gate_run_id: int) -> GateRun | None:
    """Run every suite of the run's version and store the result (the worker's task body; safe to repeat)."""
    with transaction.atomic():
        run = GateRun.objects.select_for_update().filter(pk=gate_run_id).first()
        if run is None or run.status in FINISHED_GATE_STATUSES:
            return run
        if run.attempts >= promotion_setting("GATE_RUN_MAX_ATTEMPTS"):
            gate_run_finish(
                run, status=GateStatus.ERROR, error=TOO_MANY_ATTEMPTS.format(attempts=run.attempts)
            )
            return run
        run.status = GateStatus.RUNNING
        run.started_at = timezone.now()
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "attempts"])
        attempt = run.attempts
    version = BundleVersion.objects.select_related("bundle").get(pk=run.version_id)
    started = time.perf_counter()
    outcome = evaluate_gates(version)
    duration_ms = round((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        run = GateRun.objects.select_for_update().get(pk=gate_run_id)
        if run.status != GateStatus.RUNNING or run.attempts != attempt:
            # The sweep declared this attempt lost, or a redelivery superseded it: its result is not kept.
            return run
        gate_run_finish(run, duration_ms=duration_ms, **outcome)
    return run


def evaluate_gates(version: BundleVersion) -> dict:
    """Return the outcome of running every suite of `version`: status, report, pass rate, coverage, error."""
    try:
        report = run_suites(compile_bundle(version.content, version.digest)).to_dict()
    except Exception as error:
        logger.exception("gate run of %s failed to execute", version)
        return {"status": GateStatus.ERROR, "error": f"{type(error).__name__}: {error}"}
    totals = report["totals"]
    pairs, covered = set(), set()
    for suite in report["suites"]:
        coverage = suite["policy_coverage"]
        pairs.update((suite["pipeline"], name) for name in coverage["covered"] + coverage["uncovered"])
        covered.update((suite["pipeline"], name) for name in coverage["covered"])
    if not report["suites"] or not totals["cases"]:
        status, error = GateStatus.FAILED, NO_SUITES
    else:
        status, error = (GateStatus.PASSED if report["passed"] else GateStatus.FAILED), ""
    return {
        "status": status,
        "report": report,
        "pass_rate": totals["cases_passed"] / totals["cases"] if totals["cases"] else 0.0,
        "policy_coverage": len(covered) / len(pairs) if pairs else 1.0,
        "error": error,
    }


def gate_run_finish(
    run: GateRun,
    *,
    status: str,
    report: dict | None = None,
    pass_rate: float | None = None,
    policy_coverage: float | None = None,
    duration_ms: int | None = None,
    error: str = "",
) -> GateRun:
    """Store the final state of `run` (locked by the caller), record it, and re-evaluate waiting requests."""
    run.status = status
    run.report = report
    run.pass_rate = pass_rate
    run.policy_coverage = policy_coverage
    run.duration_ms = duration_ms
    run.error = error
    run.finished_at = timezone.now()
    run.save(
        update_fields=[
            "status",
            "report",
            "pass_rate",
            "policy_coverage",
            "duration_ms",
            "error",
            "finished_at",
        ]
    )
    version = BundleVersion.objects.select_related("bundle").get(pk=run.version_id)
    facts = {
        "run": run.pk,
        "bundle": version.bundle.name,
        "version": version.version,
        "digest": run.digest,
        "status": status,
        "pass_rate": pass_rate,
        "policy_coverage": policy_coverage,
        "duration_ms": duration_ms,
        "attempts": run.attempts,
        "error": error,
    }
    record(actor=None, action="gate.finished", target=run, data=facts)
    outbox_publish(EVENT_GATE_FINISHED, facts)
    reevaluate_waiting_requests(run)
    return run


def gate_summary(run: GateRun) -> str:
    """Return a short reason naming the failing suites of a finished run."""
    if run.error:
        return run.error
    failing = [suite["name"] for suite in (run.report or {}).get("suites", []) if not suite["passed"]]
    return "failing suite(s): " + ", ".join(failing) if failing else "failed"


def reevaluate_waiting_requests(run: GateRun) -> None:
    """Apply or fail the pending requests whose version has `run`'s digest, now that the run finished."""
    waiting = list(
        PromotionRequest.objects.filter(status=PromotionStatus.PENDING, version__digest=run.digest)
        .select_related("environment")
        .order_by("environment_id", "id")
    )
    for request in waiting:
        environment, request = locked_request(request)
        if request.status != PromotionStatus.PENDING or not environment.requires_gates:
            continue
        if run.status == GateStatus.PASSED:
            promotion_apply_if_ready(actor=None, request=request)
        elif run.status == GateStatus.FAILED:
            promotion_fail(
                request,
                GATES_FAILED_REASON.format(run_id=run.pk, status=run.status, summary=gate_summary(run)),
            )
        elif not version_passed_gates(request.version):
            request.status_reason = GATES_ERRORED_REASON.format(run_id=run.pk, error=run.error)
            request._history_user = None
            request.save(update_fields=["status_reason"])


def gate_runs_sweep_stale() -> list[int]:
    """Mark runs queued or running longer than the timeout as `error` (worker lost); return their ids."""
    seconds = promotion_setting("GATE_RUN_TIMEOUT_SECONDS")
    cutoff = timezone.now() - timedelta(seconds=seconds)
    swept = []
    stale = (
        GateRun.objects.filter(status__in=ACTIVE_GATE_STATUSES).order_by("id").values_list("pk", flat=True)
    )
    for run_id in list(stale):
        with transaction.atomic():
            run = GateRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None or run.status not in ACTIVE_GATE_STATUSES:
                continue
            since = run.started_at if run.status == GateStatus.RUNNING and run.started_at else run.created_at
            if since > cutoff:
                continue
            gate_run_finish(
                run, status=GateStatus.ERROR, error=WORKER_LOST.format(status=run.status, seconds=seconds)
            )
            swept.append(run.pk)
    return swept


# Promotion requests --------------------------------------------------------------------------------------


def promotion_request_create(
    *, actor, version: BundleVersion, environment: Environment, justification: str
) -> PromotionRequest:
    """Request that `version` go live in `environment`; applied at once when gates and approvals suffice."""
    require(actor, Capability.REQUEST_PROMOTION)
    justification = (justification or "").strip()
    if not justification:
        raise JustificationRequired()
    bundle = version.bundle
    with transaction.atomic():
        environment = locked_environment(environment)
        live = live_deployment(bundle, environment)
        if live is not None and live.version_id == version.pk:
            raise AlreadyLive(ALREADY_LIVE.format(version=version, environment=environment.name))
        pending = PromotionRequest.objects.filter(
            version__bundle=bundle, environment=environment, status=PromotionStatus.PENDING
        ).first()
        if pending is not None:
            raise RequestExists(
                REQUEST_EXISTS.format(id=pending.pk, bundle=bundle.name, environment=environment.name)
            )
        required = environment.requires_live_in
        if required is not None and not was_live_in(version, required):
            if required.name == "staging":
                raise NotInStaging(NOT_IN_STAGING.format(version=version))
            raise NotLiveInRequiredEnvironment(
                NOT_LIVE_IN_REQUIRED_ENVIRONMENT.format(version=version, required=required.name)
            )
        run = None
        if environment.requires_gates:
            run = gate_run_deciding(actor, version)
        request = PromotionRequest(
            version=version, environment=environment, justification=justification, requested_by=actor
        )
        if run is not None and run.status != GateStatus.PASSED:
            request.status_reason = WAITING_FOR_GATES_REASON.format(run_id=run.pk)
        request._history_user = actor
        request.save()
        facts = {
            **request_facts(request),
            "justification": justification,
            "gate_run": run.pk if run else None,
        }
        record(actor=actor, action="promotion.requested", target=request, data=facts)
        outbox_publish(EVENT_PROMOTION_REQUESTED, facts)
        promotion_apply_if_ready(actor=actor, request=request)
    return request


def gate_run_deciding(actor, version: BundleVersion) -> GateRun:
    """Return the run that decides `version`'s gates, starting one when none ran (or the last one errored).

    Raise GatesNotPassed when the latest finished run of its digest failed.
    """
    if version_passed_gates(version):
        return GateRun.objects.filter(digest=version.digest, status=GateStatus.PASSED).order_by("-id").first()
    latest = GateRun.objects.filter(digest=version.digest).order_by("-created_at", "-id").first()
    if latest is not None and latest.status == GateStatus.FAILED:
        raise GatesNotPassed(GATES_NOT_PASSED.format(version=version, run_id=latest.pk, status=latest.status))
    return ensure_gate_run(actor=actor, version=version)


def promotion_apply_if_ready(*, actor, request: PromotionRequest) -> bool:
    """Deploy `request` (environment locked by the caller) when gates passed and approvals suffice.

    The deployment's actor is whoever's action made the request ready; when the system applied it (gates
    finished, rules loosened) the audit record's actor is the system and the deployment names the requester.
    """
    if request.status != PromotionStatus.PENDING:
        return False
    environment = request.environment
    if environment.requires_gates and not version_passed_gates(request.version):
        return False
    if approval_count(request) < environment.required_approvals:
        return False
    bundle = request.version.bundle
    live = live_deployment(bundle, environment)
    if live is not None and live.version_id == request.version_id:
        promotion_fail(
            request, ALREADY_LIVE_REASON.format(version=request.version, environment=environment.name)
        )
        return False
    deployment = Deployment.objects.create(
        bundle=bundle,
        environment=environment,
        version=request.version,
        kind=DeploymentKind.PROMOTE,
        request=request,
        actor=actor or request.requested_by,
        justification=request.justification,
        previous=live,
    )
    close_request(request, status=PromotionStatus.PROMOTED, reason="", actor=actor)
    facts = {
        **request_facts(request),
        "deployment": deployment.pk,
        "kind": deployment.kind,
        "previous_version": live.version.version if live else None,
        "previous_deployment": live.pk if live else None,
    }
    record(actor=actor, action="deployment.created", target=deployment, data=facts)
    outbox_publish(EVENT_PROMOTION_PROMOTED, facts)
    return True


def close_request(request: PromotionRequest, *, status: str, reason: str, actor) -> None:
    """Give a locked, pending `request` its final status and reason, in history as changed by `actor`."""
    request.status = status
    request.status_reason = reason
    request.decided_at = timezone.now()
    request._history_user = actor
    request.save(update_fields=["status", "status_reason", "decided_at"])


def promotion_fail(request: PromotionRequest, reason: str) -> None:
    """End `request` (environment locked by the caller) as failed with `reason`."""
    close_request(request, status=PromotionStatus.FAILED, reason=reason, actor=None)
    facts = {**request_facts(request), "reason": reason}
    record(actor=None, action="promotion.failed", target=request, data=facts)
    outbox_publish(EVENT_PROMOTION_FAILED, facts)


def check_decider(actor, request: PromotionRequest) -> None:
    """Raise unless `actor` may decide `request` now (permission refusals before state conflicts)."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    if request.requested_by_id == actor.pk:
        raise SelfApproval()
    if not holds_object_permission(actor, APPROVE_CODENAME, request.environment):
        raise NotAnApprover(NOT_AN_APPROVER.format(environment=request.environment.name))
    if request.status != PromotionStatus.PENDING:
        raise RequestNotPending(REQUEST_NOT_PENDING.format(id=request.pk, status=request.status))
    if Approval.objects.filter(request=request, reviewer=actor).exists():
        raise AlreadyDecided(ALREADY_DECIDED.format(id=request.pk))


def promotion_approve(*, actor, request: PromotionRequest, comment: str = "") -> PromotionRequest:
    """Record `actor`'s approval of `request`; deploy it when that makes approvals (and gates) suffice."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    with transaction.atomic():
        _, request = locked_request(request)
        check_decider(actor, request)
        Approval.objects.create(
            request=request, reviewer=actor, decision=ApprovalDecision.APPROVE, comment=comment
        )
        facts = {
            **request_facts(request),
            "comment": comment,
            "approvals": approval_count(request),
            "required_approvals": request.environment.required_approvals,
        }
        record(actor=actor, action="promotion.approved", target=request, data=facts)
        outbox_publish(EVENT_PROMOTION_APPROVED, {**facts, "reviewer": username(actor)})
        promotion_apply_if_ready(actor=actor, request=request)
    return request


def promotion_reject(*, actor, request: PromotionRequest, comment: str) -> PromotionRequest:
    """Reject `request`: one rejection ends it."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    comment = (comment or "").strip()
    with transaction.atomic():
        _, request = locked_request(request)
        check_decider(actor, request)
        if not comment:
            raise CommentRequired()
        Approval.objects.create(
            request=request, reviewer=actor, decision=ApprovalDecision.REJECT, comment=comment
        )
        close_request(request, status=PromotionStatus.REJECTED, reason=comment, actor=actor)
        facts = {**request_facts(request), "comment": comment}
        record(actor=actor, action="promotion.rejected", target=request, data=facts)
        outbox_publish(EVENT_PROMOTION_REJECTED, {**facts, "reviewer": username(actor)})
    return request


def promotion_cancel(*, actor, request: PromotionRequest, comment: str = "") -> PromotionRequest:
    """Cancel `request`; only its requester may, and only while it is pending."""
    require_capability(actor, Capability.VIEW)
    with transaction.atomic():
        _, request = locked_request(request)
        if request.requested_by_id != actor.pk:
            raise NotTheRequester(NOT_THE_REQUESTER.format(id=request.pk))
        if request.status != PromotionStatus.PENDING:
            raise RequestNotPending(REQUEST_NOT_PENDING.format(id=request.pk, status=request.status))
        close_request(request, status=PromotionStatus.CANCELLED, reason=comment, actor=actor)
        facts = {**request_facts(request), "comment": comment}
        record(actor=actor, action="promotion.cancelled", target=request, data=facts)
        outbox_publish(EVENT_PROMOTION_CANCELLED, facts)
    return request


# Rollback ------------------------------------------------------------------------------------------------


def deployment_rollback(
    *, actor, bundle: Bundle, environment: Environment, to_version=None, justification: str
) -> Deployment:
    """Point `environment` back to a version of `bundle` once live there (default: the one before); at once.

    `to_version` is a BundleVersion of the bundle, its version string, or None.
    """
    require(actor, Capability.ROLLBACK)
    justification = (justification or "").strip()
    if not justification:
        raise JustificationRequired()
    with transaction.atomic():
        environment = locked_environment(environment)
        live = live_deployment(bundle, environment)
        if live is None:
            raise NothingLive(NOTHING_LIVE.format(bundle=bundle.name, environment=environment.name))
        if to_version is None:
            target = default_rollback_target(bundle, environment)
            if target is None:
                raise NoPreviousVersion(
                    NO_PREVIOUS_VERSION.format(bundle=bundle.name, environment=environment.name)
                )
        else:
            target = rollback_target(bundle, environment, to_version)
            if target.pk == live.version_id:
                raise AlreadyLive(ALREADY_LIVE.format(version=target, environment=environment.name))
        deployment = Deployment.objects.create(
            bundle=bundle,
            environment=environment,
            version=target,
            kind=DeploymentKind.ROLLBACK,
            actor=actor,
            justification=justification,
            previous=live,
        )
        facts = {
            "deployment": deployment.pk,
            "bundle": bundle.name,
            "environment": environment.name,
            "from_version": live.version.version,
            "to_version": target.version,
            "digest": target.digest,
            "previous_deployment": live.pk,
            "justification": justification,
            "explicit_target": to_version is not None,
        }
        record(actor=actor, action="rollback", target=deployment, data=facts)
        outbox_publish(EVENT_ROLLED_BACK, {**facts, "actor": username(actor)})
    return deployment


def rollback_target(bundle: Bundle, environment: Environment, to_version) -> BundleVersion:
    """Return the named version of `bundle` if it was ever live in `environment`; else NotPreviouslyLive."""
    label = to_version.version if isinstance(to_version, BundleVersion) else str(to_version)
    target = BundleVersion.objects.filter(bundle=bundle, version=label).select_related("bundle").first()
    if target is None or not was_live_in(target, environment):
        raise NotPreviouslyLive(
            NOT_PREVIOUSLY_LIVE.format(bundle=bundle.name, version=label, environment=environment.name)
        )
    return target


# Webhooks ------------------------------------------------------------------------------------------------


def webhook_create(
    *, actor, url: str, events: Iterable[str] = (), description: str = "", active: bool = True
) -> tuple[Webhook, str]:
    """Create a webhook (admins); return it with its signing secret, which is shown only this once."""
    require(actor, Capability.MANAGE_WEBHOOKS)
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidWebhook(INVALID_WEBHOOK_URL)
    events = sorted(set(events or ()))
    unknown = [event for event in events if event not in EVENTS]
    if unknown:
        raise InvalidWebhook(UNKNOWN_EVENTS.format(events=", ".join(unknown), known=", ".join(EVENTS)))
    secret = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        webhook = Webhook(
            url=url, secret=secret, events=events, description=description, active=active, created_by=actor
        )
        webhook._history_user = actor
        webhook.save()
        record(
            actor=actor,
            action="webhook.created",
            target=webhook,
            data={"url": url, "events": events, "active": active},
        )
    return webhook, secret


def webhook_delete(*, actor, webhook: Webhook) -> None:
    """Stop and hide `webhook` (admins); its delivery records are kept."""
    require(actor, Capability.MANAGE_WEBHOOKS)
    with transaction.atomic():
        webhook.active = False
        webhook.deleted_at = timezone.now()
        webhook._history_user = actor
        webhook.save(update_fields=["active", "deleted_at"])
        record(actor=actor, action="webhook.deleted", target=webhook, data={"url": webhook.url})


def outbox_dispatch(*, event_id: int) -> list[int]:
    """Queue a delivery of event `event_id` to each subscribed active webhook; return the webhook ids."""
    with transaction.atomic():
        event = OutboxEvent.objects.select_for_update(skip_locked=True).filter(pk=event_id).first()
        if event is None or event.dispatched_at is not None:
            return []
        targets = [
            webhook.pk
            for webhook in Webhook.objects.filter(active=True, deleted_at__isnull=True)
            if webhook.wants(event.event)
        ]
        for webhook_id in targets:
            enqueue_on_commit(tasks.deliver_webhook, event_id=event.pk, webhook_id=webhook_id)
        event.dispatched_at = timezone.now()
        event.save(update_fields=["dispatched_at"])
    return targets


def outbox_redispatch_stale() -> list[int]:
    """Dispatch again the events whose dispatch never ran (the broker was down when they committed)."""
    cutoff = timezone.now() - timedelta(seconds=promotion_setting("OUTBOX_REDISPATCH_SECONDS"))
    stale = list(
        OutboxEvent.objects.filter(dispatched_at__isnull=True, created_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )
    for event_id in stale:
        outbox_dispatch(event_id=event_id)
    return stale


def webhook_body(event: OutboxEvent) -> bytes:
    """Return the exact bytes POSTed for `event` (what the signature covers)."""
    envelope = {
        "id": event.pk,
        "event": event.event,
        "tenant": connection.schema_name.replace("_", "-"),
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), default=str).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    """Return the X-Contractor-Signature value of `body`: sha256=<hex HMAC-SHA256 keyed by the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_retry_delay(attempt: int) -> float:
    """Return the seconds to wait after failed attempt `attempt` (1-based): base * 2^(attempt-1)."""
    return promotion_setting("WEBHOOK_RETRY_BASE_SECONDS") * 2 ** (attempt - 1)


def webhook_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST `body` to a webhook; return its status and the start of its answer (for the delivery record).

    The receiver is chosen by a tenant admin and may be hostile or broken: redirects are not followed (the
    signed body must not travel on), and at most WEBHOOK_EXCERPT_BYTES of the answer are read, within the
    timeout counted from the start of the call. A 2xx answer's body is not read at all.
    """
    timeout = promotion_setting("WEBHOOK_TIMEOUT_SECONDS")
    deadline = time.monotonic() + timeout
    headers = {**headers, "Accept-Encoding": "identity"}  # the excerpt is read raw: no decompression bomb
    with httpx.stream(
        "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
    ) as response:
        if 200 <= response.status_code < 300:
            return response.status_code, ""
        excerpt = b""
        for chunk in response.iter_raw():
            excerpt += chunk
            if len(excerpt) >= WEBHOOK_EXCERPT_BYTES or time.monotonic() > deadline:
                break
    text = excerpt[:WEBHOOK_EXCERPT_BYTES].decode(response.encoding or "utf-8", errors="replace")
    return response.status_code, text[:WEBHOOK_EXCERPT_CHARS]


def webhook_deliver(*, event_id: int, webhook_id: int, attempt: int) -> WebhookDelivery | None:
    """POST event `event_id` to webhook `webhook_id` once, record the attempt and return it.

    Return None when there is nothing to do (webhook gone or inactive); return the earlier record when this
    event already reached this webhook or this attempt was already made (a redelivered task).
    """
    webhook = Webhook.objects.filter(pk=webhook_id, active=True, deleted_at__isnull=True).first()
    event = OutboxEvent.objects.filter(pk=event_id).first()
    if webhook is None or event is None:
        return None
    earlier = WebhookDelivery.objects.filter(webhook=webhook, event=event)
    done = earlier.filter(succeeded=True).first() or earlier.filter(attempt=attempt).first()
    if done is not None:
        return done
    body = webhook_body(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event.event,
        DELIVERY_HEADER: f"{event.pk}.{webhook.pk}.{attempt}",
        SIGNATURE_HEADER: webhook_signature(webhook.secret, body),
    }
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        status_code, excerpt = webhook_post(webhook.url, body, headers)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {excerpt}"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    duration_ms = round((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            attempt=attempt,
            succeeded=not error,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    if error:
        logger.warning("webhook %s: attempt %s of event %s failed: %s", webhook.pk, attempt, event.pk, error)
    return delivery
