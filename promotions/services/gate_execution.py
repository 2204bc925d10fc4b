"""Running a gate run on a worker, and the watch that finds runs whose worker was lost.

A worker first claims the run with one conditional UPDATE (queued or stale, or running without a heartbeat):
the claim adds one to `attempts`, and that number is the claim's token. While the suites run, the worker
beats `heartbeat_at` every few seconds, and only while the run is still `running` under its token; the result
is stored under the same condition. So a redelivered message, a re-dispatch by the watch and a task retry can
never run one gate twice at the same time, and a late duplicate of a finished run changes nothing.

A database error at any step (claim, heartbeat, the final write) is raised as GateRunInterrupted carrying the
token: the task retries with backoff and resumes the same attempt if nobody took the run over meanwhile.
"""

import logging
import time
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import record
from bundles.language.compiler import compile_bundle
from bundles.language.suites import run_suites
from bundles.models import BundleVersion
from promotions.actions import PromotionAction
from promotions.conf import promotion_setting
from promotions.exceptions import NO_SUITES, NOT_PICKED_UP, REDISPATCHED, TIME_LIMIT_EXCEEDED, WORKER_LOST
from promotions.models import GateRun, GateStatus
from promotions.queue import RUN_GATES, enqueue_task
from promotions.services.gates import gate_run_finish, run_lost

logger = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
WAITING_GATE_STATUSES = (GateStatus.QUEUED, GateStatus.STALE)


class GateRunInterrupted(Exception):
    """A database error stopped attempt `attempt` of a gate run (None: before it was claimed)."""

    def __init__(self, gate_run_id: int, attempt: int | None):
        super().__init__(f"gate run {gate_run_id} interrupted by a database error (attempt {attempt})")
        self.gate_run_id = gate_run_id
        self.attempt = attempt


class GateRunSuperseded(Exception):
    """The worker's claim on a run was lost (the watch re-dispatched it): its result must not be kept."""


def gate_run_execute(*, gate_run_id: int, attempt: int | None = None) -> GateRun | None:
    """Claim run `gate_run_id` (or resume `attempt`), run its suites and store the result; safe to repeat.

    Return the run as this call left it. Raise GateRunInterrupted on a database error.
    """
    try:
        claimed = gate_run_claim(gate_run_id, resume=attempt)
        if claimed is not None:
            attempt = claimed
            version = BundleVersion.objects.select_related("bundle").get(
                pk=GateRun.objects.values_list("version_id", flat=True).get(pk=gate_run_id)
            )
            started = time.perf_counter()
            outcome = evaluate_gates(version, after_case=AttemptPulse(gate_run_id, attempt))
            outcome["duration_ms"] = round((time.perf_counter() - started) * 1000)
            gate_run_store(gate_run_id, attempt, outcome)
    except GateRunSuperseded:
        logger.warning("gate run %s: attempt %s was superseded; its result is dropped", gate_run_id, attempt)
    except DATABASE_ERRORS as error:
        raise GateRunInterrupted(gate_run_id, attempt) from error
    return GateRun.objects.filter(pk=gate_run_id).first()


def gate_run_claim(gate_run_id: int, *, resume: int | None = None) -> int | None:
    """Claim the run for this worker and return the attempt number (its token); None when it is not ours.

    `resume` is the token of an attempt a database error interrupted: it is taken up again while the run is
    still running under it. Otherwise a queued or stale run, or a running one without a heartbeat for
    GATE_RUN_STALE_SECONDS, is claimed when attempts remain.
    """
    now = timezone.now()
    runs = GateRun.objects.filter(pk=gate_run_id)
    if resume is not None and runs.filter(status=GateStatus.RUNNING, attempts=resume).update(
        heartbeat_at=now
    ):
        return resume
    lost_before = now - timedelta(seconds=promotion_setting("GATE_RUN_STALE_SECONDS"))
    claimable = Q(status__in=WAITING_GATE_STATUSES) | Q(
        status=GateStatus.RUNNING, heartbeat_at__lt=lost_before
    )
    with transaction.atomic():
        claimed = runs.filter(claimable, attempts__lt=promotion_setting("GATE_RUN_MAX_ATTEMPTS")).update(
            status=GateStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, heartbeat_at=now
        )
        if not claimed:
            return None
        return runs.values_list("attempts", flat=True).get()


class AttemptPulse:
    """Called after every suite case: beat the heartbeat every few seconds while the claim holds."""

    def __init__(self, gate_run_id: int, attempt: int):
        self.gate_run_id = gate_run_id
        self.attempt = attempt
        self.interval = promotion_setting("GATE_RUN_HEARTBEAT_SECONDS")
        # Only the test settings make this non-zero, so that fault tests can stop a worker mid-run.
        self.case_delay = promotion_setting("GATE_RUN_CASE_DELAY_SECONDS")
        self.last = time.monotonic()

    def __call__(self) -> None:
        if self.case_delay:
            time.sleep(self.case_delay)
        if time.monotonic() - self.last >= self.interval:
            self.beat()

    def beat(self) -> None:
        """Write the heartbeat; raise GateRunSuperseded when the run is no longer ours."""
        beaten = GateRun.objects.filter(
            pk=self.gate_run_id, status=GateStatus.RUNNING, attempts=self.attempt
        ).update(heartbeat_at=timezone.now())
        if not beaten:
            raise GateRunSuperseded(
                f"gate run {self.gate_run_id}: attempt {self.attempt} is no longer current"
            )
        self.last = time.monotonic()


def evaluate_gates(version: BundleVersion, *, after_case=None) -> dict:
    """Return the outcome of running every suite of `version`: status, report, pass rate, coverage, error.

    A database error or a lost claim (from `after_case`) propagates; any other failure is the outcome
    `error`, the time limit included.
    """
    try:
        report = run_suites(compile_bundle(version.content, version.digest), after_case=after_case).to_dict()
    except (*DATABASE_ERRORS, GateRunSuperseded):
        raise
    except SoftTimeLimitExceeded:
        seconds = promotion_setting("GATE_RUN_SOFT_TIME_LIMIT_SECONDS")
        return {"status": GateStatus.ERROR, "error": TIME_LIMIT_EXCEEDED.format(seconds=seconds)}
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


def gate_run_store(gate_run_id: int, attempt: int, outcome: dict) -> GateRun:
    """Store `outcome` as the run's final state if attempt `attempt` still holds it; else change nothing."""
    with transaction.atomic():
        run = GateRun.objects.select_for_update().get(pk=gate_run_id)
        if run.status != GateStatus.RUNNING or run.attempts != attempt:
            logger.warning(
                "gate run %s: result of attempt %s dropped (run is %s)", run.pk, attempt, run.status
            )
            return run
        return gate_run_finish(run, **outcome)


def gate_runs_watch() -> dict[str, list[int]]:
    """Re-dispatch runs whose worker was lost, re-send lost messages, end runs out of attempts or time.

    Return the ids handled, by what was done: `redispatched`, `resent`, `ended`.
    """
    now = timezone.now()
    stale_seconds = promotion_setting("GATE_RUN_STALE_SECONDS")
    quiet_since = now - timedelta(seconds=stale_seconds)
    candidates = (
        GateRun.objects.annotate(
            last_sign=Coalesce("heartbeat_at", "started_at", "created_at"),
            last_dispatch=Coalesce("dispatched_at", "created_at"),
        )
        .filter(
            Q(status=GateStatus.RUNNING, last_sign__lt=quiet_since)
            | Q(status=GateStatus.STALE)
            | Q(status=GateStatus.QUEUED, last_dispatch__lt=quiet_since)
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )
    handled: dict[str, list[int]] = {"redispatched": [], "resent": [], "ended": []}
    for run_id in list(candidates):
        with transaction.atomic():
            run = GateRun.objects.select_for_update(skip_locked=True).filter(pk=run_id).first()
            if run is None:
                continue
            outcome = watch_one(run, now)
        if outcome:
            handled[outcome].append(run_id)
    return handled


def watch_one(run: GateRun, now) -> str | None:
    """Act on one locked run for the watch; return what was done, or None."""
    stale_seconds = promotion_setting("GATE_RUN_STALE_SECONDS")
    max_attempts = promotion_setting("GATE_RUN_MAX_ATTEMPTS")
    if run.status == GateStatus.RUNNING and run_lost(run, now):
        if run.attempts >= max_attempts:
            error = WORKER_LOST.format(
                seconds=stale_seconds, attempts=run.attempts, max_attempts=max_attempts
            )
            gate_run_finish(run, status=GateStatus.ERROR, error=error)
            return "ended"
        reason = REDISPATCHED.format(seconds=stale_seconds, attempts=run.attempts)
        run.status = GateStatus.STALE
        run.heartbeat_at = run.dispatched_at = now
        run.save(update_fields=["status", "heartbeat_at", "dispatched_at"])
        record(
            actor=None,
            action=PromotionAction.GATE_REDISPATCHED,
            target=run,
            data={"run": run.pk, "digest": run.digest, "attempts": run.attempts, "reason": reason},
        )
        enqueue_task(RUN_GATES, gate_run_id=run.pk)
        return "redispatched"
    if run.status not in WAITING_GATE_STATUSES:
        return None
    waiting_since = run.heartbeat_at or run.created_at
    timeout = promotion_setting("GATE_RUN_TIMEOUT_SECONDS")
    if waiting_since < now - timedelta(seconds=timeout):
        gate_run_finish(
            run, status=GateStatus.ERROR, error=NOT_PICKED_UP.format(status=run.status, seconds=timeout)
        )
        return "ended"
    if (run.dispatched_at or run.created_at) < now - timedelta(seconds=stale_seconds):
        # The message was lost (broker down at commit, a worker gone before acknowledging): send it again.
        # A duplicate is harmless: only one claim succeeds.
        run.dispatched_at = now
        run.save(update_fields=["dispatched_at"])
        enqueue_task(RUN_GATES, gate_run_id=run.pk)
        return "resent"
    return None


def gate_run_retry_delay(retries: int) -> float:
    """Return the delay before retry `retries` (0-based) after a database error: exponential, capped."""
    base = promotion_setting("GATE_RUN_DB_RETRY_BASE_SECONDS")
    return min(promotion_setting("GATE_RUN_DB_RETRY_MAX_SECONDS"), base * 2**retries)
