"""Decision rollups by hour and day, bundle version, pipeline, environment and status, kept incrementally.

Governance coverage, the dashboard and the decisions browser's filter choices read `DecisionRollup` rows
(a few per hour) plus the handful of decisions not rolled up yet, never the whole window of the log. Each
decision is read once, when it is rolled up: its hash is checked then (`verified`), so no request
re-hashes records.

Ids are handed out before commit, so a decision with a lower id can become visible after a higher one. A
run rolls up only ids that can no longer appear. It reads the id sequence's value, the snapshot's xmax and
the time (the horizon); a later run may roll up to that id once it has settled: either no transaction id
below that xmax is still in progress anywhere in the cluster and QUICK_SETTLE_SECONDS have passed (a
transaction that took its id but had no transaction id yet when the horizon was read, a few microseconds of
its INSERT, has ended by then), or SETTLE_SECONDS have passed whatever else runs on the server: the runtime's
connections end any statement and any idle transaction after RUNTIME_DB_TIMEOUT_MS
(contractor_site/settings/runtime.py), and its decision transactions are one INSERT long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Record
from audit.selectors import record_is_intact
from runtime.grants import DECISION_ACTION
from runtime.models import DecisionRollup, DecisionRollupState

BATCH_ROWS = 20_000
QUICK_SETTLE_SECONDS = 2.0
SETTLE_SECONDS = 30.0
GROUP_FIELDS = DecisionRollup.GROUP
FIELD_LENGTHS = {name: DecisionRollup._meta.get_field(name).max_length for name in GROUP_FIELDS}
HORIZON_SQL = (
    "SELECT pg_sequence_last_value(pg_get_serial_sequence('audit_record', 'id')::regclass), "
    "pg_snapshot_xmax(pg_current_snapshot())::text"
)
# No transaction but this one that was running at the horizon is running still (own rows are visible to us).
SETTLED_SQL = (
    "SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(pg_current_snapshot()) AS running (xid) "
    "WHERE running.xid < %s::xid8)"
)
UPSERT_SQL = """
INSERT INTO runtime_decisionrollup
    (hour, bundle, version, digest, pipeline, environment, status, executions, verified, latency_ms_total)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT runtime_decision_rollup_group DO UPDATE SET
    executions = runtime_decisionrollup.executions + EXCLUDED.executions,
    verified = runtime_decisionrollup.verified + EXCLUDED.verified,
    latency_ms_total = runtime_decisionrollup.latency_ms_total + EXCLUDED.latency_ms_total
"""
DAILY_UPSERT_SQL = """
INSERT INTO runtime_decisiondailyrollup
    (day, bundle, version, digest, pipeline, environment, status, executions, verified, latency_ms_total)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT runtime_decision_daily_group DO UPDATE SET
    executions = runtime_decisiondailyrollup.executions + EXCLUDED.executions,
    verified = runtime_decisiondailyrollup.verified + EXCLUDED.verified,
    latency_ms_total = runtime_decisiondailyrollup.latency_ms_total + EXCLUDED.latency_ms_total
"""
BUNDLE_UPSERT_SQL = """
INSERT INTO runtime_decisionbundle (bundle, executions, last_hour) VALUES (%s, %s, %s)
ON CONFLICT (bundle) DO UPDATE SET
    executions = runtime_decisionbundle.executions + EXCLUDED.executions,
    last_hour = greatest(runtime_decisionbundle.last_hour, EXCLUDED.last_hour)
"""


@dataclass(frozen=True)
class RollupProgress:
    """What one run did: decisions rolled up, how far the rollups now reach, whether more are waiting."""

    decisions: int
    rolled_up_to: int
    more: bool


def hour_of(moment: datetime) -> datetime:
    """Return the start of `moment`'s hour in UTC."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """Return the start of `moment`'s day in UTC."""
    return hour_of(moment).replace(hour=0)


def group_of(entry: Record) -> tuple:
    """Return the rollup group of a decision record."""
    data = entry.data if isinstance(entry.data, dict) else {}
    values = tuple(str(data.get(name) or "")[: FIELD_LENGTHS[name]] for name in GROUP_FIELDS)
    return (hour_of(entry.created_at), *values)


def rolled_up_to() -> int:
    """Return the id up to which every decision of this tenant is counted in the rollups."""
    state = DecisionRollupState.objects.filter(pk=1).values_list("rolled_up_to", flat=True).first()
    return state or 0


def settled(state: DecisionRollupState, now: datetime) -> bool:
    """Return whether every id up to the state's horizon is final (committed or never will be)."""
    if state.horizon_id is None:
        return False
    elapsed = now - state.horizon_at
    if elapsed >= timedelta(seconds=SETTLE_SECONDS):
        return True
    if elapsed < timedelta(seconds=QUICK_SETTLE_SECONDS):
        return False
    with connection.cursor() as cursor:
        cursor.execute(SETTLED_SQL, [state.horizon_xid])
        return bool(cursor.fetchone()[0])


def read_horizon(state: DecisionRollupState, now: datetime) -> None:
    """Set the state's horizon to the id sequence's value and the snapshot's xmax, now."""
    with connection.cursor() as cursor:
        cursor.execute(HORIZON_SQL)
        last_id, xmax = cursor.fetchone()
    state.horizon_id, state.horizon_xid, state.horizon_at = last_id or 0, xmax, now


def decision_rollup_advance(*, now: datetime | None = None, batch_rows: int = BATCH_ROWS) -> RollupProgress:
    """Roll up the next settled decisions of this tenant (at most `batch_rows`); return the progress.

    One run at a time per tenant: a run that finds the state row locked by another returns at once.
    """
    now = now or timezone.now()
    with transaction.atomic():
        DecisionRollupState.objects.get_or_create(pk=1)
        state = DecisionRollupState.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if state is None:
            return RollupProgress(0, rolled_up_to(), more=False)
        settled_now = settled(state, now)
        limit = state.horizon_id if settled_now else state.rolled_up_to
        counts: dict[tuple, list] = {}
        decisions = 0
        reached = state.rolled_up_to
        if limit > state.rolled_up_to:
            rows = Record.objects.filter(
                id__gt=state.rolled_up_to, id__lte=limit, action=DECISION_ACTION
            ).order_by("id")[:batch_rows]
            for entry in rows.iterator(chunk_size=2000):
                decisions += 1
                reached = entry.pk
                group = counts.setdefault(group_of(entry), [0, 0, 0.0])
                group[0] += 1
                group[1] += record_is_intact(entry)
                latency = entry.data.get("latency_ms") if isinstance(entry.data, dict) else None
                group[2] += float(latency) if isinstance(latency, int | float) else 0.0
            if decisions < batch_rows:
                reached = limit
        more = reached < limit
        state.rolled_up_to = reached
        if state.horizon_id is None or (settled_now and not more):
            read_horizon(state, now)
        state.save()
        if counts:
            save_counts(counts)
    return RollupProgress(decisions, reached, more)


def save_counts(counts: dict[tuple, list]) -> None:
    """Add a run's counts (by hourly group) to the hourly, daily and per-bundle rollups."""
    days: dict[tuple, list] = {}
    bundles: dict[str, list] = {}
    for (hour, *group), (executions, verified, latency) in counts.items():
        totals = days.setdefault((hour.date(), *group), [0, 0, 0.0])
        totals[0], totals[1], totals[2] = totals[0] + executions, totals[1] + verified, totals[2] + latency
        seen = bundles.setdefault(group[0], [0, hour])
        seen[0], seen[1] = seen[0] + executions, max(seen[1], hour)
    with connection.cursor() as cursor:
        cursor.executemany(UPSERT_SQL, [(*group, *totals) for group, totals in counts.items()])
        cursor.executemany(DAILY_UPSERT_SQL, [(*group, *totals) for group, totals in days.items()])
        cursor.executemany(BUNDLE_UPSERT_SQL, [(bundle, *seen) for bundle, seen in sorted(bundles.items())])


def decision_rollups_catch_up(*, seconds: float = 20.0, now: datetime | None = None) -> int:
    """Advance this tenant's rollups until nothing settled is left or `seconds` passed; return decisions."""
    started = timezone.now()
    total = 0
    while True:
        progress = decision_rollup_advance(now=now)
        total += progress.decisions
        if not progress.more or (timezone.now() - started).total_seconds() >= seconds:
            return total
