"""Fail closed: when the decision record cannot be written, the runtime returns no output (503)."""

import threading
import time

import httpx
import pytest
from django.db import connection

from audit.models import Record
from runtime.exceptions import DATABASE_UNAVAILABLE, DECISION_NOT_RECORDED
from tests.live import free_port
from tests.runtime.conftest import (
    RUNTIME_ROLE,
    RuntimeClient,
    owner_connection,
    runtime_database_url,
    start_runtime,
    stop_runtime,
)

pytestmark = pytest.mark.django_db

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}


def decisions_count(world) -> int:
    connection.set_tenant(world.tenant)
    try:
        return Record.objects.filter(action="runtime.decision").count()
    finally:
        connection.set_schema_to_public()


def assert_not_recorded(response, code: str = "decision_not_recorded", message: str = DECISION_NOT_RECORDED):
    assert response.status_code == 503, response.text
    assert response.json() == {"error": {"code": code, "message": message, "details": []}}


def unrecorded_total(client, world) -> float:
    """Return the runtime's count of executions refused because they could not be recorded."""
    prefix = f'contractor_runtime_unrecorded_total{{tenant="{world.tenant.schema_name}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_losing_the_insert_grant_on_the_audit_log_withholds_the_output(client, world):
    assert client.execute("claims-triage", "triage", CLAIM).status_code == 200
    refused_before = unrecorded_total(client, world)
    before = decisions_count(world)
    table = f'"{world.tenant.schema_name}".audit_record'
    with owner_connection() as owner:
        owner.execute(f"REVOKE INSERT ON {table} FROM {RUNTIME_ROLE}")
        try:
            responses = [client.execute("claims-triage", "triage", CLAIM) for _ in range(3)]
        finally:
            owner.execute(f"GRANT INSERT ON {table} TO {RUNTIME_ROLE}")
    for response in responses:
        assert_not_recorded(response)
        assert "collision" not in response.text
    assert decisions_count(world) == before
    assert client.execute("claims-triage", "triage", CLAIM).status_code == 200
    assert unrecorded_total(client, world) == refused_before + 3


def test_the_database_going_away_during_an_execution_withholds_the_output(client, world, runtime):
    assert client.execute("claims-lab", "slow", CLAIM).status_code == 200  # both caches and connections warm
    before = decisions_count(world)
    outcome = {}

    def execute_slowly():
        slow_client = RuntimeClient(runtime, world.host, world.keys["main"])
        try:
            outcome["response"] = slow_client.execute("claims-lab", "slow", CLAIM)
        finally:
            slow_client.close()

    worker = threading.Thread(target=execute_slowly)
    worker.start()
    time.sleep(0.8)  # the runtime has resolved key and version and waits for the (2 s) model
    with owner_connection() as owner:
        terminated = owner.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = %s AND datname = current_database()",
            [RUNTIME_ROLE],
        ).fetchone()[0]
    worker.join(timeout=30)
    assert terminated >= 1
    assert_not_recorded(outcome["response"])
    assert decisions_count(world) == before
    recovered = [client.execute("claims-triage", "triage", CLAIM).status_code for _ in range(4)]
    assert recovered == [200] * 4  # each worker notices its dead connection before using it, and reconnects


def test_a_runtime_whose_database_is_unreachable_executes_nothing(world, tmp_path):
    unreachable = start_runtime(runtime_database_url(port=free_port()), "no-db", tmp_path, workers=1)
    try:
        runtime_client = RuntimeClient(unreachable, world.host, world.keys["main"])
        response = runtime_client.execute("claims-triage", "triage", CLAIM)
        assert_not_recorded(response, "database_unavailable", DATABASE_UNAVAILABLE)
        assert httpx.get(f"{unreachable.address}/healthz").status_code == 200
        ready = httpx.get(f"{unreachable.address}/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")
        runtime_client.close()
    finally:
        stop_runtime(unreachable)
