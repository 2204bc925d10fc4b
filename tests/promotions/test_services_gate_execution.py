"""Gate runs on a worker: the atomic claim, the heartbeat, the watch, retries, automatic re-runs."""

from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import Record
from promotions.exceptions import (
    GATES_ERRORED_REASON,
    NOT_PICKED_UP,
    REDISPATCHED,
    TIME_LIMIT_EXCEEDED,
    WORKER_LOST,
)
from promotions.models import GateRun, GateStatus, PromotionRequest
from promotions.services.gate_execution import (
    AttemptPulse,
    GateRunSuperseded,
    evaluate_gates,
    gate_run_claim,
    gate_run_execute,
    gate_run_retry_delay,
    gate_run_store,
    gate_runs_watch,
)
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import promotion_request_create
from tests.promotions.promotion_factories import environment, push_version

STALE = 45


@pytest.fixture
def version(team):
    return push_version(team.author, "1.2.0")


@pytest.fixture
def run(team, version):
    return gate_run_start(actor=team.author, version=version)


def age(run: GateRun, seconds: float, **fields) -> None:
    """Make the run's last heartbeat (and dispatch) `seconds` old, with `fields` changed too."""
    then = timezone.now() - timedelta(seconds=seconds)
    GateRun.objects.filter(pk=run.pk).update(heartbeat_at=then, dispatched_at=then, **fields)


def finished_records(run: GateRun) -> list[Record]:
    return list(Record.objects.filter(action="gate.finished", target_id=str(run.pk)))


# The claim --------------------------------------------------------------------------------------------------


def test_a_queued_run_is_claimed_once_and_the_attempt_is_the_token(run):
    assert gate_run_claim(run.pk) == 1
    assert gate_run_claim(run.pk) is None
    run.refresh_from_db()
    assert (run.status, run.attempts) == (GateStatus.RUNNING, 1)
    assert run.heartbeat_at is not None


def test_a_redelivered_message_of_a_run_with_a_fresh_heartbeat_changes_nothing(run):
    gate_run_claim(run.pk)
    assert gate_run_execute(gate_run_id=run.pk).status == GateStatus.RUNNING
    run.refresh_from_db()
    assert run.attempts == 1
    assert finished_records(run) == []


def test_a_running_run_without_a_heartbeat_is_claimed_again_and_finishes(run):
    gate_run_claim(run.pk)
    age(run, STALE + 1)
    finished = gate_run_execute(gate_run_id=run.pk)
    assert (finished.status, finished.attempts) == (GateStatus.PASSED, 2)


def test_a_late_duplicate_of_a_finished_run_is_a_no_op(run):
    gate_run_execute(gate_run_id=run.pk)
    assert gate_run_claim(run.pk) is None
    assert gate_run_execute(gate_run_id=run.pk, attempt=1).attempts == 1
    assert len(finished_records(run)) == 1


def test_a_retry_resumes_its_own_attempt_without_counting_a_new_one(run):
    gate_run_claim(run.pk)
    finished = gate_run_execute(gate_run_id=run.pk, attempt=1)
    assert (finished.status, finished.attempts) == (GateStatus.PASSED, 1)


def test_a_retry_whose_attempt_was_taken_over_does_not_run(run):
    gate_run_claim(run.pk)
    age(run, STALE + 1)
    assert gate_run_claim(run.pk) == 2
    assert gate_run_execute(gate_run_id=run.pk, attempt=1).status == GateStatus.RUNNING
    run.refresh_from_db()
    assert run.attempts == 2


def test_a_run_out_of_attempts_is_not_claimed(run):
    age(run, STALE + 1, status=GateStatus.RUNNING, attempts=3)
    assert gate_run_claim(run.pk) is None


# The heartbeat ----------------------------------------------------------------------------------------------


def test_the_pulse_beats_while_the_claim_holds_and_stops_the_run_once_it_is_lost(run):
    gate_run_claim(run.pk)
    age(run, 10)
    pulse = AttemptPulse(run.pk, 1)
    pulse.beat()
    run.refresh_from_db()
    assert timezone.now() - run.heartbeat_at < timedelta(seconds=5)
    GateRun.objects.filter(pk=run.pk).update(status=GateStatus.STALE)
    with pytest.raises(GateRunSuperseded):
        pulse.beat()


@override_settings(CONTRACTOR={**settings.CONTRACTOR, "GATE_RUN_HEARTBEAT_SECONDS": 0.0})
def test_a_superseded_attempt_stops_between_cases_and_stores_nothing(team, version, run):
    gate_run_claim(run.pk)
    GateRun.objects.filter(pk=run.pk).update(status=GateStatus.STALE)
    with pytest.raises(GateRunSuperseded):
        evaluate_gates(version, after_case=AttemptPulse(run.pk, 1))
    assert gate_run_store(run.pk, 1, {"status": GateStatus.PASSED}).status == GateStatus.STALE
    assert finished_records(run) == []


def test_a_run_past_its_soft_time_limit_ends_in_error_with_the_reason(version):
    def out_of_time():
        raise SoftTimeLimitExceeded()

    outcome = evaluate_gates(version, after_case=out_of_time)
    assert outcome == {"status": GateStatus.ERROR, "error": TIME_LIMIT_EXCEEDED.format(seconds=240)}


# The watch --------------------------------------------------------------------------------------------------


def test_the_watch_marks_a_run_without_heartbeat_stale_and_dispatches_it_again(run):
    gate_run_claim(run.pk)
    age(run, STALE + 1)
    assert gate_runs_watch() == {"redispatched": [run.pk], "resent": [], "ended": []}
    run.refresh_from_db()
    assert run.status == GateStatus.STALE
    redispatched = Record.objects.get(action="gate.redispatched", target_id=str(run.pk))
    assert redispatched.actor_kind == "system"
    assert redispatched.data["reason"] == REDISPATCHED.format(seconds=STALE, attempts=1)
    finished = gate_run_execute(gate_run_id=run.pk)
    assert (finished.status, finished.attempts) == (GateStatus.PASSED, 2)
    assert len(finished_records(run)) == 1


def test_the_watch_leaves_a_run_with_a_fresh_heartbeat_alone(run):
    gate_run_claim(run.pk)
    age(run, STALE - 5)
    assert gate_runs_watch() == {"redispatched": [], "resent": [], "ended": []}


def test_the_watch_ends_a_run_out_of_attempts_with_the_reason(run):
    age(run, STALE + 1, status=GateStatus.RUNNING, attempts=3)
    assert gate_runs_watch()["ended"] == [run.pk]
    run.refresh_from_db()
    assert run.status == GateStatus.ERROR
    assert run.error == WORKER_LOST.format(seconds=STALE, attempts=3, max_attempts=3)


def test_the_watch_sends_again_a_queued_run_whose_message_was_lost(run):
    age(run, STALE + 1)
    assert gate_runs_watch()["resent"] == [run.pk]
    run.refresh_from_db()
    assert run.status == GateStatus.QUEUED
    assert timezone.now() - run.dispatched_at < timedelta(seconds=5)


def test_the_watch_ends_a_run_no_worker_picked_up_in_time(run):
    age(run, 901)
    assert gate_runs_watch()["ended"] == [run.pk]
    run.refresh_from_db()
    assert run.error == NOT_PICKED_UP.format(status="queued", seconds=900)


def test_database_retries_back_off_exponentially_up_to_a_cap():
    assert [gate_run_retry_delay(retries) for retries in range(7)] == [1, 2, 4, 8, 16, 30, 30]


# Re-runs ----------------------------------------------------------------------------------------------------


def test_running_gates_by_hand_replaces_a_stale_run(team, version, run):
    gate_run_claim(run.pk)
    age(run, STALE + 1)
    fresh = gate_run_start(actor=team.operator, version=version)
    assert fresh.pk != run.pk
    assert fresh.status == GateStatus.QUEUED
    run.refresh_from_db()
    assert run.status == GateStatus.ERROR
    assert run.error.startswith(f"replaced by gate run {fresh.pk}: the run was running without a heartbeat")
    started = Record.objects.get(action="gate.started", target_id=str(fresh.pk))
    assert started.data["replaces"] == run.pk


def request_staging(team, version) -> PromotionRequest:
    return promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="Ship it."
    )


def end_in_error(run_id: int) -> None:
    """Make the run lose its worker for good and let the watch end it."""
    GateRun.objects.filter(pk=run_id).update(
        status=GateStatus.RUNNING,
        attempts=3,
        heartbeat_at=timezone.now() - timedelta(seconds=STALE + 1),
    )
    assert gate_runs_watch()["ended"] == [run_id]


def test_a_waiting_request_whose_run_errors_runs_its_gates_again_by_itself_and_is_promoted(team, version):
    created = request_staging(team, version)
    errored = GateRun.objects.get(digest=version.digest)
    end_in_error(errored.pk)
    rerun = GateRun.objects.exclude(pk=errored.pk).get(digest=version.digest)
    started = Record.objects.get(action="gate.started", target_id=str(rerun.pk))
    assert (started.actor_kind, rerun.requested_by) == ("system", None)
    assert started.data["reason"].startswith(f"gate run {errored.pk} ended in error (worker lost")
    created.refresh_from_db()
    assert (created.status, created.gate_reruns) == ("pending", 1)
    assert f"the gates run again as gate run {rerun.pk}" in created.status_reason
    gate_run_execute(gate_run_id=rerun.pk)
    created.refresh_from_db()
    assert created.status == "promoted"


def test_after_its_automatic_reruns_a_request_fails_and_a_new_one_is_not_blocked(team, version):
    created = request_staging(team, version)
    for _ in range(3):  # the first run and two automatic re-runs
        end_in_error(GateRun.objects.filter(digest=version.digest).order_by("-id").first().pk)
    created.refresh_from_db()
    last = GateRun.objects.filter(digest=version.digest).order_by("-id").first()
    assert GateRun.objects.filter(digest=version.digest).count() == 3
    assert (created.status, created.gate_reruns) == ("failed", 2)
    assert created.status_reason == GATES_ERRORED_REASON.format(run_id=last.pk, error=last.error, reruns=2)
    again = request_staging(team, version)
    assert again.status == "pending"


# Database protection and settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE promotions_gaterun SET digest = 'sha256:other' WHERE id = %s",
        "UPDATE promotions_gaterun SET requested_by_id = NULL WHERE id = %s",
        "UPDATE promotions_gaterun SET attempts = 0, status = 'queued' WHERE id = %s",
    ],
)
def test_an_active_run_keeps_its_identity_and_its_attempts_never_go_back(run, statement):
    gate_run_claim(run.pk)
    with (
        pytest.raises(ProgrammingError, match="a run keeps its version, digest"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [run.pk])


@pytest.mark.parametrize(
    ("changes", "error_id"),
    [
        ({"CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 300}}, "promotions.E001"),
        ({"CONTRACTOR": {**settings.CONTRACTOR, "GATE_RUN_SOFT_TIME_LIMIT_SECONDS": 300}}, "promotions.E002"),
        ({"CONTRACTOR": {**settings.CONTRACTOR, "GATE_RUN_HEARTBEAT_SECONDS": 20}}, "promotions.E003"),
    ],
)
def test_celery_settings_that_would_deliver_a_running_gate_twice_refuse_to_start(changes, error_id):
    from contractor_site.celery import validate_celery_settings
    from promotions.checks import gate_settings_errors

    assert gate_settings_errors() == []
    with override_settings(**changes):
        assert [error.id for error in gate_settings_errors()] == [error_id]
        with pytest.raises(ImproperlyConfigured, match=error_id):
            validate_celery_settings()
