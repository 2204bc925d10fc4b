"""Full verification of a tenant's log as a run: on a worker, in chunks, with progress, resumable.

Checking every record hash is linear in the log (about 20,000 records a second in Python), so it never runs
inside an HTTP request: `verification_run_request` queues a run (or returns the one in progress), a worker
checks CHUNK_ROWS records per transaction and saves how far it got, and a run whose worker stopped
(no heartbeat for STALE_SECONDS) is sent again by the sweep and goes on from its position. One run at a time
per tenant.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Record, VerificationRun, VerificationStatus
from audit.selectors import record_is_intact
from core.tasks import enqueue_on_commit

CHUNK_ROWS = 5000
STALE_SECONDS = 60
MAX_FINDINGS = 100
RECORD_MODIFIED = "record_modified"
REQUEST_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('audit.verification_run:' || current_schema()))"


def requester_name(actor) -> str:
    """Return how a run names who asked for it."""
    if actor is None:
        return "system"
    return actor.get_username() if getattr(actor, "is_authenticated", False) else str(actor)


def stale_before() -> timezone.datetime:
    """Return the heartbeat time before which a running run counts as stopped."""
    return timezone.now() - timedelta(seconds=STALE_SECONDS)


def verification_run_request(*, actor) -> tuple[VerificationRun, bool]:
    """Queue a verification of every record written so far; return (run, created).

    A run already queued or running (and alive) is returned instead of starting a second one.
    """
    from audit.tasks import verify_log  # the task module imports this one

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('audit.verification_run:' || current_schema()))"
            )
        active = VerificationRun.objects.filter(
            status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING]
        ).first()
        if active is not None:
            return active, False
        newest = Record.objects.order_by("-id").values_list("id", flat=True).first() or 0
        run = VerificationRun.objects.create(
            requested_by=requester_name(actor), upto_id=newest, total=estimated_records(newest)
        )
        enqueue_on_commit(verify_log, run_id=run.pk)
    return run, True


def estimated_records(upto_id: int) -> int:
    """Return about how many records have an id up to `upto_id` (the planner's estimate past 100,000)."""
    counted = Record.objects.filter(id__lte=upto_id)[:100_001].count()
    if counted <= 100_000:
        return counted
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'audit_record'::regclass")
        return max(int(cursor.fetchone()[0]), counted)


def verification_run_step(*, run_id: int, rows: int = CHUNK_ROWS) -> VerificationRun | None:
    """Check the run's next `rows` records and save the progress; return the run (None: not ours to run).

    The run row is locked for the chunk, so two workers handed the same run (a redelivery, a re-dispatch)
    check each record once.
    """
    with transaction.atomic():
        run = (
            VerificationRun.objects.select_for_update(skip_locked=True)
            .filter(pk=run_id, status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING])
            .first()
        )
        if run is None:
            return None
        now = timezone.now()
        if run.status == VerificationStatus.QUEUED:
            run.status, run.started_at = VerificationStatus.RUNNING, now
        began = timezone.now()
        chunk = Record.objects.filter(id__gt=run.position, id__lte=run.upto_id).order_by("id")[:rows]
        seen = 0
        for entry in chunk.iterator(chunk_size=1000):
            seen += 1
            run.position = entry.pk
            if not record_is_intact(entry):
                run.bad_records += 1
                run.first_bad_record = run.first_bad_record or entry.pk
                if len(run.findings) < MAX_FINDINGS:
                    run.findings.append({"kind": RECORD_MODIFIED, "record": entry.pk})
        run.checked += seen
        run.seconds += (timezone.now() - began).total_seconds()
        run.heartbeat_at = timezone.now()
        if seen < rows:
            run.position = run.upto_id
            run.status, run.finished_at = VerificationStatus.FINISHED, run.heartbeat_at
        run.save()
    return run


def verification_run_execute(*, run_id: int, rows: int = CHUNK_ROWS) -> VerificationRun | None:
    """Check the run's remaining records, chunk by chunk; return the run as it ended."""
    run = None
    while True:
        step = verification_run_step(run_id=run_id, rows=rows)
        if step is None:
            return run
        run = step
        if run.status == VerificationStatus.FINISHED:
            return run


def verification_runs_redispatch_stale() -> list[int]:
    """Send again the runs whose worker stopped (queued or running without a recent heartbeat)."""
    from audit.tasks import verify_log

    stale = VerificationRun.objects.filter(
        status__in=[VerificationStatus.QUEUED, VerificationStatus.RUNNING]
    ).exclude(heartbeat_at__gte=stale_before())
    stale = stale.exclude(status=VerificationStatus.QUEUED, created_at__gte=stale_before())
    ids = list(stale.values_list("id", flat=True))
    for run_id in ids:
        verify_log.delay(run_id=run_id)
    return ids


def latest_run() -> VerificationRun | None:
    """Return the tenant's newest verification run."""
    return VerificationRun.objects.order_by("-id").first()


def run_report(run: VerificationRun | None) -> dict:
    """Return the JSON report of `run` (a report of no run when there is none)."""
    if run is None:
        return {
            "run": None,
            "status": "never_run",
            "intact": None,
            "checked": 0,
            "total": 0,
            "first_bad_record": None,
            "bad_records": 0,
            "findings": [],
            "records_per_second": None,
            "requested_by": None,
            "created_at": None,
            "finished_at": None,
        }
    return {
        "run": run.pk,
        "status": run.status,
        "intact": run.intact,
        "checked": run.checked,
        "total": max(run.total, run.checked),
        "first_bad_record": run.first_bad_record,
        "bad_records": run.bad_records,
        "findings": run.findings,
        "records_per_second": round(run.checked / run.seconds) if run.seconds else None,
        "requested_by": run.requested_by,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
