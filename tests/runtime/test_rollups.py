"""Decision rollups: each decision counted once, in its hour and group, verified once, never before commit."""

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from audit.hashing import record_hash
from audit.models import Record
from audit.services import canonical_form, record
from runtime.access import KeyGrant
from runtime.models import DecisionBundle, DecisionDailyRollup, DecisionRollup, DecisionRollupState
from runtime.rollups import QUICK_SETTLE_SECONDS, SETTLE_SECONDS, decision_rollup_advance, rolled_up_to
from runtime.selectors import decision_bundles, governance_coverage
from runtime.tasks import roll_up_decisions
from tests.conftest import ROOT, run_committed

KEY = KeyGrant(9, "roll", "x", 1, frozenset(), False)
STEP = timedelta(seconds=SETTLE_SECONDS + 1)


def decide(bundle="claims-triage", status="allowed", environment="current", latency=2.5):
    data = {
        "bundle": bundle,
        "version": "1.0.0",
        "digest": "sha256:" + "a" * 64,
        "pipeline": "triage",
        "environment": environment,
        "status": status,
        "latency_ms": latency,
    }
    with transaction.atomic():
        return record(actor=KEY, action="runtime.decision", data=data)


def roll_everything(now: datetime) -> datetime:
    """Run the rollup as beat would, SETTLE_SECONDS apart from `now`, until it covers every record written.

    (A horizon read by an earlier run may settle first: beat goes on running, and so does this loop.)
    """
    newest = Record.objects.order_by("-id").values_list("id", flat=True).first() or 0
    while rolled_up_to() < newest:
        decision_rollup_advance(now=now)
        now += STEP
    return now


def test_decisions_are_counted_once_per_hour_and_group_with_their_latency(in_tenant_a):
    for _ in range(3):
        decide()
    decide(status="denied", latency=1.0)
    decide(bundle="support-routing")
    now = roll_everything(timezone.now())
    for _ in range(3):  # later runs count nothing twice
        now += STEP
        decision_rollup_advance(now=now)
    rows = {(row.bundle, row.status): row for row in DecisionRollup.objects.all()}
    assert {key: row.executions for key, row in rows.items()} == {
        ("claims-triage", "allowed"): 3,
        ("claims-triage", "denied"): 1,
        ("support-routing", "allowed"): 1,
    }
    assert rows[("claims-triage", "allowed")].latency_ms_total == pytest.approx(7.5)
    assert rows[("claims-triage", "allowed")].verified == 3
    hour = timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    assert {row.hour for row in rows.values()} <= {hour, hour - timedelta(hours=1)}


def test_a_record_whose_hash_does_not_match_is_counted_but_not_verified(in_tenant_a):
    entry = Record(
        created_at=timezone.now(),
        actor_kind="runtime_key",
        actor_id="9",
        actor_name="roll",
        action="runtime.decision",
        data={"bundle": "claims-triage", "status": "allowed", "environment": "current"},
        record_hash="0" * 64,
    )
    entry.save(force_insert=True)
    decide()
    roll_everything(timezone.now())
    totals = DecisionRollup.objects.filter(bundle="claims-triage")
    assert sum(row.executions for row in totals) == 2
    assert sum(row.verified for row in totals) == 1


def test_nothing_is_rolled_up_before_the_horizon_settles(in_tenant_a):
    decide()
    now = timezone.now()
    decision_rollup_advance(now=now)  # reads the horizon
    progress = decision_rollup_advance(now=now + timedelta(seconds=QUICK_SETTLE_SECONDS / 2))
    assert progress.decisions == 0
    assert not DecisionRollup.objects.exists()


def test_a_large_backlog_is_rolled_up_in_bounded_batches(in_tenant_a):
    for _ in range(7):
        decide()
    now = timezone.now()
    decision_rollup_advance(now=now)
    now += STEP
    batches = []
    while True:
        progress = decision_rollup_advance(now=now, batch_rows=3)
        batches.append(progress.decisions)
        if not progress.more:
            break
    assert batches == [3, 3, 1]
    assert sum(row.executions for row in DecisionRollup.objects.all()) == 7


def test_filter_choices_come_from_rollups_and_the_tail(in_tenant_a):
    decide(bundle="claims-triage")
    roll_everything(timezone.now())
    decide(bundle="support-routing")  # not rolled up yet
    assert decision_bundles() == ["claims-triage", "support-routing"]


def test_a_decision_committing_after_a_higher_id_is_still_counted(db, committed_tenant):
    """A transaction holds its id open while a later decision commits and the rollup runs."""
    holding = threading.Event()
    release = threading.Event()

    def slow_writer():
        try:
            connection.set_tenant(committed_tenant)
            with transaction.atomic():
                decide(bundle="slow")
                holding.set()
                release.wait(30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert holding.wait(30)
        run_committed(decide, bundle="fast", tenant=committed_tenant)
        now = timezone.now()

        def advance(at):
            return decision_rollup_advance(now=at)

        run_committed(advance, now, tenant=committed_tenant)  # horizon read while "slow" is open
        run_committed(advance, now + timedelta(seconds=QUICK_SETTLE_SECONDS + 1), tenant=committed_tenant)

        def counted():
            return {row.bundle: row.executions for row in DecisionRollup.objects.all()}

        assert "fast" not in run_committed(counted, tenant=committed_tenant)  # blocked behind the open id
    finally:
        release.set()
        writer.join()
    later = now + timedelta(seconds=2 * SETTLE_SECONDS)
    run_committed(decision_rollup_advance, now=later, tenant=committed_tenant)
    run_committed(decision_rollup_advance, now=later + STEP, tenant=committed_tenant)
    totals = run_committed(counted, tenant=committed_tenant)
    assert (totals.get("slow"), totals.get("fast")) == (1, 1)


def test_the_beat_task_rolls_up_every_tenant(db, committed_tenant):
    run_committed(decide, bundle="beat", tenant=committed_tenant)

    def horizon_read_a_while_ago():
        DecisionRollupState.objects.get_or_create(pk=1)
        DecisionRollupState.objects.filter(pk=1).update(horizon_id=None)
        decision_rollup_advance()  # reads a horizon past the decision above
        DecisionRollupState.objects.filter(pk=1).update(horizon_at=timezone.now() - STEP)

    run_committed(horizon_read_a_while_ago, tenant=committed_tenant)
    rolled = run_committed(roll_up_decisions, 5.0)
    assert rolled.get(committed_tenant.schema_name, 0) >= 1


def test_the_runtimes_connections_end_long_statements_and_idle_transactions(db):
    program = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SHOW statement_timeout'); print(cursor.fetchone()[0])\n"
        "    cursor.execute('SHOW idle_in_transaction_session_timeout'); print(cursor.fetchone()[0])\n"
        "    cursor.execute('SELECT current_user'); print(cursor.fetchone()[0])\n"
    )
    database = connection.settings_dict
    user = database["USER"] or "postgres"
    url = f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "contractor_site.settings.runtime", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5s", "5s", "contractor_runtime"]


def decided_at(moment: datetime, bundle: str = "windowed") -> None:
    """Write a decision recorded at `moment` (hashed over that time, as the runtime would have then)."""
    entry = Record(
        created_at=moment,
        actor_kind="runtime_key",
        actor_id="9",
        actor_name="roll",
        action="runtime.decision",
        data={"bundle": bundle, "status": "allowed", "environment": "current", "digest": "sha256:x"},
    )
    entry.record_hash = record_hash(canonical_form(entry, tenant=connection.schema_name))
    entry.save(force_insert=True)


def test_long_windows_read_days_and_the_hours_at_both_ends(in_tenant_a):
    now = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
    decided_at(now - timedelta(days=7) + timedelta(minutes=45))  # first, partial day: hourly rows
    decided_at(now - timedelta(days=7) - timedelta(hours=2))  # before the window
    decided_at(now - timedelta(days=3))  # a whole day inside: the daily row
    decided_at(now - timedelta(days=3))
    decided_at(now - timedelta(minutes=20))  # today: hourly rows
    roll_everything(timezone.now())
    days = {row.day: row.executions for row in DecisionDailyRollup.objects.filter(bundle="windowed")}
    assert days[(now - timedelta(days=3)).date()] == 2
    assert sum(days.values()) == 5
    bundle = DecisionBundle.objects.get(bundle="windowed")
    assert (bundle.executions, bundle.last_hour) == (5, now.replace(minute=0))
    coverage = governance_coverage(days=7, now=now)
    assert coverage["since"] == (now - timedelta(days=7)).replace(minute=0).isoformat()
    assert coverage["overall"]["executions"] == 4
    assert governance_coverage(days=30, now=now)["overall"]["executions"] == 5
    assert governance_coverage(days=1, now=now)["overall"]["executions"] == 1
