"""Gate runs: every suite through the engine, per-digest results, immutable once finished, the sweep."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import Record
from promotions.exceptions import TOO_MANY_ATTEMPTS, WORKER_LOST
from promotions.models import GateRun, GateStatus, OutboxEvent
from promotions.selectors import gates_summary, latest_gate_run, version_passed_gates
from promotions.services.gates import gate_run_execute, gate_run_start, gate_runs_sweep_stale
from promotions.services.promotion_requests import promotion_request_create
from tenancy.exceptions import MissingCapability
from tests.promotions.promotion_factories import environment, failing_files, push_version, run_gates


@pytest.fixture
def version(team):
    return push_version(team.author, "1.2.0")


def test_a_member_without_run_gates_cannot_start_them(team, version):
    with pytest.raises(MissingCapability) as refused:
        gate_run_start(actor=team.reviewer, version=version)
    assert refused.value.code == "missing_role"
    assert not GateRun.objects.exists()


def test_a_started_run_is_queued_and_audited(team, version):
    run = gate_run_start(actor=team.author, version=version)
    assert run.status == GateStatus.QUEUED
    assert run.digest == version.digest
    assert run.requested_by == team.author
    started = Record.objects.get(action="gate.started")
    assert started.target_id == str(run.pk)
    assert started.data["digest"] == version.digest


def test_running_the_gates_stores_per_case_results_and_passes(team, version):
    run = run_gates(team.author, version)
    assert run.status == GateStatus.PASSED
    assert run.attempts == 1
    assert run.pass_rate == 1.0
    assert run.policy_coverage == 1.0
    assert run.duration_ms is not None
    assert run.started_at <= run.finished_at
    suites = run.report["suites"]
    assert [suite["name"] for suite in suites] == ["golden"]
    cases = {case["name"]: case for case in suites[0]["cases"]}
    assert cases["huge-claim"]["status"] == "denied"
    assert all(case["passed"] for case in cases.values())
    assert run.report["totals"]["cases"] == len(cases)
    finished = Record.objects.get(action="gate.finished")
    assert finished.data["status"] == "passed"
    assert finished.actor_kind == "system"
    assert OutboxEvent.objects.get(event="gate.finished").payload["run"] == run.pk
    assert version_passed_gates(version)
    assert gates_summary(version)["status"] == "passed"


def test_a_failing_suite_fails_the_gates_with_the_failing_case(team):
    version = push_version(team.author, "1.2.0", failing_files())
    run = run_gates(team.author, version)
    assert run.status == GateStatus.FAILED
    assert run.pass_rate < 1.0
    failed = [case for case in run.report["suites"][0]["cases"] if not case["passed"]]
    assert [case["name"] for case in failed] == ["small-collision"]
    assert not version_passed_gates(version)


def test_a_passed_digest_needs_no_second_run(team, version):
    passed = run_gates(team.author, version)
    again = gate_run_start(actor=team.author, version=version)
    assert again.pk == passed.pk
    assert GateRun.objects.count() == 1
    assert Record.objects.filter(action="gate.started").count() == 1


def test_starting_while_a_run_is_queued_returns_that_run(team, version):
    first = gate_run_start(actor=team.author, version=version)
    second = gate_run_start(actor=team.operator, version=version)
    assert second.pk == first.pk
    assert latest_gate_run(version) == first


def test_executing_a_finished_run_again_changes_nothing(team, version):
    run = run_gates(team.author, version)
    gate_run_execute(gate_run_id=run.pk)
    run.refresh_from_db()
    assert run.attempts == 1
    assert Record.objects.filter(action="gate.finished").count() == 1


def test_a_finished_run_is_immutable_in_the_database(team, version):
    run = run_gates(team.author, version)
    for statement in (
        "UPDATE promotions_gaterun SET status = 'running' WHERE id = %s",
        "DELETE FROM promotions_gaterun WHERE id = %s",
    ):
        with (
            pytest.raises(ProgrammingError, match="a finished run is immutable"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [run.pk])
    run.refresh_from_db()
    assert run.status == GateStatus.PASSED


def test_an_unfinished_run_may_still_change(team, version):
    run = gate_run_start(actor=team.author, version=version)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE promotions_gaterun SET attempts = 1 WHERE id = %s", [run.pk])
    run.refresh_from_db()
    assert run.attempts == 1


def test_the_sweep_ends_a_run_whose_worker_was_lost(team, version):
    run = gate_run_start(actor=team.author, version=version)
    long_ago = timezone.now() - timedelta(hours=2)
    GateRun.objects.filter(pk=run.pk).update(status=GateStatus.RUNNING, started_at=long_ago, attempts=1)
    fresh = gate_run_start(actor=team.author, version=push_version(team.author, "1.3.0"))
    assert gate_runs_sweep_stale() == [run.pk]
    run.refresh_from_db()
    assert run.status == GateStatus.ERROR
    assert run.error == WORKER_LOST.format(status="running", seconds=900)
    assert run.finished_at is not None
    fresh.refresh_from_db()
    assert fresh.status == GateStatus.QUEUED
    assert (
        Record.objects.filter(action="gate.finished", target_id=str(run.pk)).get().data["status"] == "error"
    )


@override_settings(CONTRACTOR={**settings.CONTRACTOR, "GATE_RUN_TIMEOUT_SECONDS": 60})
def test_the_sweep_ends_runs_queued_longer_than_the_timeout(team, version):
    run = gate_run_start(actor=team.author, version=version)
    GateRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    assert gate_runs_sweep_stale() == [run.pk]
    run.refresh_from_db()
    assert run.error == WORKER_LOST.format(status="queued", seconds=60)


def test_the_worker_that_was_declared_lost_cannot_overwrite_the_error(team, version):
    run = gate_run_start(actor=team.author, version=version)
    GateRun.objects.filter(pk=run.pk).update(
        status=GateStatus.RUNNING, started_at=timezone.now() - timedelta(hours=2), attempts=1
    )
    gate_runs_sweep_stale()
    gate_run_execute(gate_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == GateStatus.ERROR


def test_after_a_lost_worker_a_new_run_starts_and_can_pass(team, version):
    run = gate_run_start(actor=team.author, version=version)
    GateRun.objects.filter(pk=run.pk).update(
        status=GateStatus.RUNNING, started_at=timezone.now() - timedelta(hours=2), attempts=1
    )
    gate_runs_sweep_stale()
    rerun = run_gates(team.author, version)
    assert rerun.pk != run.pk
    assert rerun.status == GateStatus.PASSED


def test_a_redelivered_run_counts_its_attempts_and_gives_up_after_the_limit(team, version):
    run = gate_run_start(actor=team.author, version=version)
    GateRun.objects.filter(pk=run.pk).update(status=GateStatus.RUNNING, attempts=3, started_at=timezone.now())
    gate_run_execute(gate_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == GateStatus.ERROR
    assert run.error == TOO_MANY_ATTEMPTS.format(attempts=3)


def test_a_redelivered_running_run_is_run_again(team, version):
    run = gate_run_start(actor=team.author, version=version)
    GateRun.objects.filter(pk=run.pk).update(status=GateStatus.RUNNING, attempts=1, started_at=timezone.now())
    gate_run_execute(gate_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == GateStatus.PASSED
    assert run.attempts == 2


def test_a_waiting_request_stays_pending_when_its_run_errors(team, version):
    created = promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="Ship it."
    )
    run = GateRun.objects.get(digest=version.digest)
    GateRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=2))
    gate_runs_sweep_stale()
    created.refresh_from_db()
    assert created.status == "pending"
    assert f"Gate run {run.pk} ended in error" in created.status_reason
    rerun = run_gates(team.author, version)
    created.refresh_from_db()
    assert rerun.status == GateStatus.PASSED
    assert created.status == "promoted"
