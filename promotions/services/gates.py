"""Gate runs: start one per digest, store its final state, and decide the requests waiting on it.

Running a run on a worker (claim, heartbeat, retries) and the watch that finds lost runs are in
`gate_execution`; this module is what both build on.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import record
from bundles.models import BundleVersion
from promotions.actions import PromotionAction, PromotionEvent
from promotions.conf import promotion_setting
from promotions.exceptions import (
    AUTO_RERUN,
    GATES_ERRORED_REASON,
    GATES_FAILED_REASON,
    GATES_NOT_PASSED,
    GATES_RERUN_REASON,
    LOST_RUN,
    REPLACED,
    WAITING_FOR_GATES_REASON,
    GatesNotPassed,
)
from promotions.models import GateRun, GateStatus, PromotionRequest, PromotionStatus
from promotions.queue import RUN_GATES, enqueue_task
from promotions.selectors import version_passed_gates
from promotions.services.deployments import promotion_apply_if_ready, promotion_fail
from promotions.services.outbox import outbox_publish
from promotions.services.preconditions import locked_request, require
from tenancy.roles import Capability

logger = logging.getLogger(__name__)

FINISHED_GATE_STATUSES = (GateStatus.PASSED, GateStatus.FAILED, GateStatus.ERROR)
ACTIVE_GATE_STATUSES = (GateStatus.QUEUED, GateStatus.RUNNING, GateStatus.STALE)


def gate_run_start(*, actor, version: BundleVersion, enqueue: bool = True) -> GateRun:
    """Return the gate run that decides `version`: a passed or live one for its digest, else a new one.

    A stale run (its worker lost) is replaced by a new one rather than returned. A new run is queued for the
    worker once this transaction commits (`enqueue=False` leaves running it to the caller, e.g. a benchmark).
    """
    require(actor, Capability.RUN_GATES)
    with transaction.atomic():
        return ensure_gate_run(actor=actor, version=version, enqueue=enqueue)


def run_lost(run: GateRun, now=None) -> bool:
    """Return whether `run` lost its worker: marked stale, or running without a heartbeat for too long."""
    if run.status == GateStatus.STALE:
        return True
    if run.status != GateStatus.RUNNING:
        return False
    last_sign = run.heartbeat_at or run.started_at or run.created_at
    stale_after = timedelta(seconds=promotion_setting("GATE_RUN_STALE_SECONDS"))
    return last_sign < (now or timezone.now()) - stale_after


def ensure_gate_run(*, actor, version: BundleVersion, enqueue: bool = True, reason: str = "") -> GateRun:
    """Return a passed or live run for `version`'s digest, or start one (in the caller's transaction).

    `reason` says why the system starts a run (recorded with it); a lost run found here ends in `error`,
    replaced by the new one.
    """
    # Lock the version row so two concurrent starts cannot both queue a run.
    BundleVersion.objects.select_for_update(no_key=True).filter(pk=version.pk).values_list(
        "pk", flat=True
    ).first()
    runs = GateRun.objects.filter(digest=version.digest)
    passed = runs.filter(status=GateStatus.PASSED).order_by("-id").first()
    if passed is not None:
        return passed
    active = runs.filter(status__in=ACTIVE_GATE_STATUSES).order_by("-id").first()
    if active is not None and not run_lost(active):
        return active
    if active is not None:
        # A worker storing its result or the watch holds the row: it is changing now, so it is not replaced
        # (and waiting for it here, under the environment's and the version's locks, could deadlock).
        locked = GateRun.objects.select_for_update(skip_locked=True).filter(pk=active.pk).first()
        if locked is None or not run_lost(locked):
            return locked or active
        active = locked
    now = timezone.now()
    run = GateRun.objects.create(
        version=version,
        digest=version.digest,
        requested_by=actor,
        heartbeat_at=now,
        dispatched_at=now if enqueue else None,
    )
    facts = {"bundle": version.bundle.name, "version": version.version, "digest": version.digest}
    if reason:
        facts["reason"] = reason
    if active is not None:
        why = LOST_RUN.format(status=active.status, seconds=promotion_setting("GATE_RUN_STALE_SECONDS"))
        gate_run_finish(
            active, status=GateStatus.ERROR, error=REPLACED.format(run_id=run.pk, why=why), reevaluate=False
        )
        facts["replaces"] = active.pk
        # The requests that waited on the replaced run now wait on this one (a note only: no history row).
        PromotionRequest.objects.filter(
            status=PromotionStatus.PENDING, version__digest=version.digest
        ).update(status_reason=WAITING_FOR_GATES_REASON.format(run_id=run.pk))
    record(actor=actor, action=PromotionAction.GATE_STARTED, target=run, data=facts)
    if enqueue:
        enqueue_task(RUN_GATES, gate_run_id=run.pk)
    return run


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


def gate_run_finish(
    run: GateRun,
    *,
    status: str,
    report: dict | None = None,
    pass_rate: float | None = None,
    policy_coverage: float | None = None,
    duration_ms: int | None = None,
    error: str = "",
    reevaluate: bool = True,
) -> GateRun:
    """Store the final state of `run` (locked by the caller), record it, and decide the waiting requests.

    `reevaluate=False` leaves the waiting requests alone (the run is being replaced by another).
    """
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
    record(actor=None, action=PromotionAction.GATE_FINISHED, target=run, data=facts)
    outbox_publish(PromotionEvent.GATE_FINISHED, facts)
    if reevaluate:
        reevaluate_waiting_requests(run)
    return run


def gate_summary(run: GateRun) -> str:
    """Return a short reason naming the failing suites of a finished run."""
    if run.error:
        return run.error
    failing = [suite["name"] for suite in (run.report or {}).get("suites", []) if not suite["passed"]]
    return "failing suite(s): " + ", ".join(failing) if failing else "failed"


def reevaluate_waiting_requests(run: GateRun) -> None:
    """Apply, fail or re-run the gates of the pending requests whose version has `run`'s digest."""
    waiting = list(
        PromotionRequest.objects.filter(status=PromotionStatus.PENDING, version__digest=run.digest)
        .select_related("environment")
        .order_by("environment_id", "id")
    )
    errored = []
    for request in waiting:
        environment, request = locked_request(request)
        if request.status != PromotionStatus.PENDING or not environment.requires_gates:
            continue
        if run.status == GateStatus.PASSED or version_passed_gates(request.version):
            promotion_apply_if_ready(actor=None, request=request)
        elif run.status == GateStatus.FAILED:
            promotion_fail(
                request,
                GATES_FAILED_REASON.format(run_id=run.pk, status=run.status, summary=gate_summary(run)),
            )
        else:
            errored.append(request)
    if errored:
        gates_rerun_after_error(run, errored)


def gates_rerun_after_error(run: GateRun, requests: list[PromotionRequest]) -> GateRun | None:
    """Re-run the gates of pending `requests` (locked) whose run ended in error; fail those out of re-runs.

    Each request may have its gates re-run GATE_RUN_AUTO_RERUNS times; the new run is recorded with the
    system as actor and the reason. Return the run they now wait on, or None when every request failed.
    """
    limit = promotion_setting("GATE_RUN_AUTO_RERUNS")
    rerun = [request for request in requests if request.gate_reruns < limit]
    for request in requests:
        if request.gate_reruns >= limit:
            promotion_fail(
                request,
                GATES_ERRORED_REASON.format(run_id=run.pk, error=run.error, reruns=request.gate_reruns),
            )
    if not rerun:
        return None
    reason = AUTO_RERUN.format(
        run_id=run.pk, error=run.error, requests=", ".join(str(request.pk) for request in rerun)
    )
    new_run = ensure_gate_run(actor=None, version=rerun[0].version, reason=reason)
    for request in rerun:
        request.gate_reruns += 1
        request.status_reason = GATES_RERUN_REASON.format(
            run_id=run.pk, error=run.error, new_run_id=new_run.pk, rerun=request.gate_reruns, limit=limit
        )
        request._history_user = None
        request.save(update_fields=["gate_reruns", "status_reason"])
    logger.warning(
        "gate run %s ended in error; gates re-run as %s for requests %s", run.pk, new_run.pk, reason
    )
    return new_run
