"""Faults of the real runtime over HTTP (gunicorn gthread, runtime settings, the restricted role): a slow
model, the model killed mid-traffic, the runtime's database connections terminated, a saturated tenant.

The invariant checked each time (tests/faults/runtime_faults.py, Ledger): every answer is JSON; every answer
that names a decision has exactly one decision record; a record whose answer was lost only comes with a 503;
no output ever leaves without its record.

- A slow model never holds a request past its budget nor starves another tenant: model calls end at
  MODEL_TIMEOUT_CAP as recorded 502s (never gunicorn's HTML), and a tenant whose endpoint has every slot in
  flight gets recorded 429 tenant_busy answers while another tenant is served at once.
- The dev model killed in the middle of traffic, then started again: the failures are recorded 502s, and the
  runtime recovers.
- The runtime's database connections terminated (pg_terminate_backend, this test database's runtime role only)
  during executions: a recorded decision or a 503 without output; the runtime's pool reconnects afterwards.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from runtime.exceptions import TENANT_BUSY_MESSAGE
from tests.faults import runtime_faults
from tests.faults.runtime_faults import (
    ENDPOINT_CONCURRENCY,
    MODEL_TIMEOUT_CAP,
    RECORD_MARGIN,
    WORKER_TIMEOUT,
    Ledger,
    decisions_since,
    execute,
    last_decision_id,
)
from tests.runtime.conftest import RUNTIME_ROLE, owner_connection

pytestmark = pytest.mark.django_db

# The fixtures (module scope: one dev model process, two tenants and one runtime for every test here).
fault_model = runtime_faults.fault_model
fault_worlds = runtime_faults.fault_worlds
fault_runtime = runtime_faults.fault_runtime

PROMPT_SECONDS = 1.5  # an answer of the fast tenant while the slow one is saturated
BUSY_RETRY_AFTER = "2"
CLIENTS = ENDPOINT_CONCURRENCY  # concurrent clients of one endpoint that never meet its limit
MODEL_REQUESTS = 60
KILL_AFTER = 15
DATABASE_REQUESTS = 45
TERMINATE_EVERY = 0.1
RECOVERY_SECONDS = 20
TERMINATE_RUNTIME_SQL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename = %s AND pid <> pg_backend_pid()"
)


def test_slow_model_calls_end_as_recorded_502s_within_the_time_budget(fault_runtime, fault_worlds):
    world = fault_worlds["slow"]
    after = last_decision_id(world)
    with ThreadPoolExecutor(ENDPOINT_CONCURRENCY) as pool:
        answers = list(pool.map(lambda _: execute(fault_runtime, world, "slow"), range(ENDPOINT_CONCURRENCY)))
    ledger = Ledger(answers, decisions_since(world, after))
    assert ledger.problems() == []
    assert [(answer.status, answer.code) for answer in answers] == [
        (502, "model_failed")
    ] * ENDPOINT_CONCURRENCY
    assert all(
        MODEL_TIMEOUT_CAP - 0.2 < answer.seconds < MODEL_TIMEOUT_CAP + RECORD_MARGIN for answer in answers
    )
    assert MODEL_TIMEOUT_CAP + RECORD_MARGIN < WORKER_TIMEOUT
    assert {record["status"] for record in ledger.records.values()} == {"error"}


def test_a_saturated_tenant_gets_recorded_429s_while_another_tenant_is_served_promptly(
    fault_runtime, fault_worlds
):
    slow, fast = fault_worlds["slow"], fault_worlds["fast"]
    after_slow, after_fast = last_decision_id(slow), last_decision_id(fast)
    with ThreadPoolExecutor(ENDPOINT_CONCURRENCY + 2) as pool:
        holding = [pool.submit(execute, fault_runtime, slow, "slow") for _ in range(ENDPOINT_CONCURRENCY)]
        time.sleep(0.5)  # every slot of the slow tenant's endpoint is now in flight
        busy = [pool.submit(execute, fault_runtime, slow, "slow") for _ in range(2)]
        busy_with_key = execute(fault_runtime, slow, "triage", **{"Idempotency-Key": "busy-then-retried"})
        served = execute(fault_runtime, fast, "triage")
        busy_answers = [future.result() for future in busy] + [busy_with_key]
        held_answers = [future.result() for future in holding]

    assert (served.status, served.seconds < PROMPT_SECONDS) == (200, True)
    for answer in busy_answers:
        assert (answer.status, answer.code, answer.headers["retry-after"]) == (
            429,
            "tenant_busy",
            BUSY_RETRY_AFTER,
        )
        assert answer.body["error"]["message"] == TENANT_BUSY_MESSAGE.format(seconds=2)
    assert [answer.status for answer in held_answers] == [502] * ENDPOINT_CONCURRENCY
    slow_ledger = Ledger(held_answers + busy_answers, decisions_since(slow, after_slow))
    assert slow_ledger.problems() == []
    assert Ledger([served], decisions_since(fast, after_fast)).problems() == []
    for answer in busy_answers:
        record = slow_ledger.records[answer.decision_id]
        assert record["status"] == "error"
        assert "tenant_busy" in record["reason"]
        assert "idempotency_key" not in record

    # The busy answer was not stored under its Idempotency-Key: the retry runs (and is then replayed).
    retried = execute(fault_runtime, slow, "triage", **{"Idempotency-Key": "busy-then-retried"})
    assert (retried.status, "idempotent-replayed" in retried.headers) == (200, False)
    replayed = execute(fault_runtime, slow, "triage", **{"Idempotency-Key": "busy-then-retried"})
    assert (replayed.decision_id, replayed.headers.get("idempotent-replayed")) == (
        retried.decision_id,
        "true",
    )


def wait_for(futures, count: int, timeout: float = 30) -> None:
    """Wait until `count` of `futures` are done."""
    deadline = time.monotonic() + timeout
    while sum(future.done() for future in futures) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_model_killed_mid_traffic_yields_recorded_502s_and_nothing_unrecorded(
    fault_runtime, fault_worlds, fault_model
):
    world = fault_worlds["fast"]
    after = last_decision_id(world)
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(execute, fault_runtime, world, "triage") for _ in range(MODEL_REQUESTS)]
        wait_for(futures, KILL_AFTER)
        fault_model.kill()
        wait_for(futures, MODEL_REQUESTS)
        fault_model.start()
        answers = [future.result() for future in futures]
    answers += [execute(fault_runtime, world, "triage") for _ in range(3)]  # after the restart

    ledger = Ledger(answers, decisions_since(world, after))
    assert ledger.problems() == []
    assert set(ledger.statuses) <= {200, 502}
    assert ledger.statuses[502] >= 1 and ledger.statuses[200] >= KILL_AFTER
    assert {answer.code for answer in answers if answer.status == 502} == {"model_failed"}
    assert [answer.status for answer in answers[-3:]] == [200] * 3


def terminate_until(stop: threading.Event, terminated: list[int]) -> None:
    """Terminate every backend of the runtime role on this test database, again and again, until `stop`."""
    with owner_connection() as owner:
        while not stop.is_set():
            terminated.append(owner.execute(TERMINATE_RUNTIME_SQL, [RUNTIME_ROLE]).fetchone()[0])
            time.sleep(TERMINATE_EVERY)


def recover(runtime, world) -> list:
    """Execute until one answer is 200 (at most RECOVERY_SECONDS); return the answers."""
    answers = []
    deadline = time.monotonic() + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        answers.append(execute(runtime, world, "triage"))
        if answers[-1].status == 200:
            return answers
        time.sleep(0.2)
    pytest.fail(f"the runtime did not recover within {RECOVERY_SECONDS} s: {[a.status for a in answers]}")


def test_terminated_database_connections_never_yield_an_answer_without_its_record(
    fault_runtime, fault_worlds
):
    world = fault_worlds["fast"]
    after = last_decision_id(world)
    stop, terminated = threading.Event(), []
    terminator = threading.Thread(target=terminate_until, args=(stop, terminated))
    terminator.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            keys = [
                {"Idempotency-Key": f"terminated-{index}"} if index % 3 == 0 else {}
                for index in range(DATABASE_REQUESTS)
            ]
            answers = list(pool.map(lambda headers: execute(fault_runtime, world, "triage", **headers), keys))
    finally:
        stop.set()
        terminator.join()
    # The pool reconnects in the background, backing off after repeated failures: 503s until it has.
    recovering = recover(fault_runtime, world)
    recovered = [execute(fault_runtime, world, "triage") for _ in range(3)]

    ledger = Ledger(answers + recovering + recovered, decisions_since(world, after))
    assert sum(terminated) > 0
    assert ledger.problems() == []
    assert set(ledger.statuses) <= {200, 503}, ledger.statuses
    assert {answer.code for answer in answers if answer.status == 503} <= {
        "decision_not_recorded",
        "database_unavailable",
    }
    assert all(answer.body["error"].get("decision_id") is None for answer in answers if answer.status == 503)
    assert [answer.status for answer in recovered] == [200] * 3
