"""Gate runs: every suite through the engine, per-digest results, immutable once finished."""

import pytest
from django.db import ProgrammingError, connection, transaction

from audit.models import Record
from promotions.models import GateRun, GateStatus, OutboxEvent
from promotions.selectors import gates_summary, latest_gate_run, version_passed_gates
from promotions.services.gate_execution import gate_run_execute
from promotions.services.gates import gate_run_start
from tenancy.exceptions import MissingCapability
from tests.promotions.promotion_factories import failing_files, push_version, run_gates


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
