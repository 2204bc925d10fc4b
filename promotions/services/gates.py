"""Gate runs: every suite of a version, run by the worker; the result decides the requests waiting on it."""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.services import record
from bundles.language.compiler import compile_bundle
from bundles.language.suites import run_suites
from bundles.models import BundleVersion
from promotions.actions import PromotionAction, PromotionEvent
from promotions.conf import promotion_setting
from promotions.exceptions import (
    GATES_ERRORED_REASON,
    GATES_FAILED_REASON,
    GATES_NOT_PASSED,
    NO_SUITES,
    TOO_MANY_ATTEMPTS,
    WORKER_LOST,
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
ACTIVE_GATE_STATUSES = (GateStatus.QUEUED, GateStatus.RUNNING)


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
        action=PromotionAction.GATE_STARTED,
        target=run,
        data={"bundle": version.bundle.name, "version": version.version, "digest": version.digest},
    )
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
    record(actor=None, action=PromotionAction.GATE_FINISHED, target=run, data=facts)
    outbox_publish(PromotionEvent.GATE_FINISHED, facts)
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
