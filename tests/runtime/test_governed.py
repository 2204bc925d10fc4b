"""Governed execution in process: a parsed request in, a recorded decision out, as the runtime's own role.

Each test runs in the test's transaction (rolled back after) on the committed world's tenant, with the
connection switched to contractor_runtime, so every read and the decision record go through the runtime's
real grants; the model is the real dev model server.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bundles.language.decisions import ErrorKind
from runtime import access, endpoint_models
from runtime.access import KeyGrant, authenticate
from runtime.exceptions import (
    BUNDLE_OUT_OF_SCOPE,
    IDEMPOTENCY_KEY_REUSED,
    BundleOutOfScope,
    DecisionNotRecorded,
    IdempotencyKeyReused,
)
from runtime.governed import ExecutionRequest, execute_governed
from tests.runtime.conftest import RUNTIME_ROLE

pytestmark = pytest.mark.django_db

CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}
# Warm: the key, the release pointer, the compiled version and the endpoint all come from the caches.
WARM_QUERIES = [
    "SAVEPOINT",  # the record's transaction (BEGIN in production, a savepoint inside the test's transaction)
    "INSERT INTO",  # the decision record
    "RELEASE SAVEPOINT",
]
WARM_KEYED_QUERIES = [
    "SELECT pg_advisory_lock",  # one execution per runtime key and Idempotency-Key at a time
    # the first decision for this Idempotency-Key, if any
    "SELECT id, data FROM runtime_idempotent_decision(",
    *WARM_QUERIES,
    "SELECT pg_advisory_unlock",
]


def run_as_runtime_role() -> None:
    """Switch the test's transaction to the runtime's database role (reverted when it rolls back)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {RUNTIME_ROLE}")


@pytest.fixture
def as_runtime(world, settings):
    """The world's tenant as contractor_runtime, with the runtime's settings and empty caches (living 1 s)."""
    settings.CONTRACTOR = {**settings.CONTRACTOR, "RUNTIME_CACHE_SECONDS": 1.0}
    settings.TENANT_LIMIT_SET_CALLS = True  # one `SET search_path` per request, as the runtime's settings say
    access.clear_caches()
    endpoint_models.clear_caches()
    connection.set_tenant(world.tenant)
    run_as_runtime_role()
    yield world
    access.clear_caches()
    endpoint_models.clear_caches()
    connection.set_schema_to_public()


def grant_of(world, name: str = "main") -> KeyGrant:
    return authenticate(f"Bearer {world.keys[name]}")


def decisions_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runtime_decision")
        return cursor.fetchone()[0]


def test_a_bundle_outside_the_key_scope_is_refused_and_nothing_is_recorded(as_runtime):
    before = decisions_count()
    with pytest.raises(BundleOutOfScope) as refused:
        execute_governed(
            grant=grant_of(as_runtime, "lab_only"), request=ExecutionRequest("claims-triage", "triage", CLAIM)
        )
    assert refused.value.message == BUNDLE_OUT_OF_SCOPE.format(bundle="claims-triage")
    assert decisions_count() == before


def test_an_allowed_execution_returns_its_recorded_decision_and_output(as_runtime):
    grant = grant_of(as_runtime)
    recorded = execute_governed(grant=grant, request=ExecutionRequest("claims-triage", "triage", CLAIM))
    assert (recorded.status, recorded.output, recorded.replayed) == (
        "allowed",
        {"queue": "auto", "reason": "collision"},
        False,
    )
    record = access.access_decision(grant, recorded.decision_id)
    assert record.data == recorded.data
    assert (record.data["bundle"], record.data["version"], record.data["environment"]) == (
        "claims-triage",
        "1.3.0",
        "current",
    )
    assert "output" not in record.data  # hashes, not payloads
    assert record.is_intact()


def test_a_denied_execution_is_recorded_without_output(as_runtime):
    grant = grant_of(as_runtime)
    recorded = execute_governed(
        grant=grant, request=ExecutionRequest("claims-triage", "triage", {**CLAIM, "amount": 500000})
    )
    assert (recorded.status, recorded.data["denied_by"], recorded.output) == ("denied", "amount-limit", None)
    assert access.access_decision(grant, recorded.decision_id).data["hashes"]["prompt"] is None


def test_invalid_input_is_a_recorded_decision_naming_each_problem(as_runtime):
    grant = grant_of(as_runtime)
    recorded = execute_governed(
        grant=grant, request=ExecutionRequest("claims-triage", "triage", {"claim_id": "X1", "amount": -1})
    )
    assert recorded.status == "invalid_input"
    assert {error["path"] for error in recorded.data["errors"]} >= {"claim_id", "amount", "description"}
    assert access.access_decision(grant, recorded.decision_id).data["status"] == "invalid_input"


def test_a_model_failure_is_a_recorded_error_decision(as_runtime):
    grant = grant_of(as_runtime)
    recorded = execute_governed(grant=grant, request=ExecutionRequest("claims-lab", "failing", CLAIM))
    assert (recorded.status, recorded.error_kind, recorded.output) == ("error", ErrorKind.MODEL_FAILED, None)
    assert access.access_decision(grant, recorded.decision_id).data["reason"] == recorded.data["reason"]


def test_an_endpoint_the_tenant_lacks_fails_the_model_call_and_is_recorded(as_runtime):
    recorded = execute_governed(
        grant=grant_of(as_runtime), request=ExecutionRequest("claims-lab", "elsewhere", CLAIM)
    )
    assert (recorded.status, recorded.error_kind) == ("error", ErrorKind.MODEL_FAILED)
    assert "'nowhere' is not configured" in recorded.data["reason"]


def test_a_repeat_with_the_same_idempotency_key_returns_the_first_decision(as_runtime):
    grant = grant_of(as_runtime)
    request = ExecutionRequest("claims-triage", "triage", CLAIM, idempotency_key="in-process-1")
    first = execute_governed(grant=grant, request=request)
    before = decisions_count()
    again = execute_governed(grant=grant, request=request)
    assert (again.decision_id, again.output, again.replayed) == (first.decision_id, first.output, True)
    assert decisions_count() == before
    other = ExecutionRequest(
        "claims-triage", "triage", {**CLAIM, "amount": 10}, idempotency_key="in-process-1"
    )
    with pytest.raises(IdempotencyKeyReused) as refused:
        execute_governed(grant=grant, request=other)
    assert refused.value.message == IDEMPOTENCY_KEY_REUSED.format(key="in-process-1")


def test_no_output_leaves_when_the_decision_cannot_be_recorded(as_runtime):
    grant = grant_of(as_runtime)
    before = decisions_count()
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")  # the owner takes the runtime's INSERT away, until the test rolls back
        cursor.execute(f"REVOKE INSERT ON audit_record FROM {RUNTIME_ROLE}")
    run_as_runtime_role()
    with pytest.raises(DecisionNotRecorded):
        execute_governed(grant=grant, request=ExecutionRequest("claims-triage", "triage", CLAIM))
    assert decisions_count() == before


@pytest.mark.parametrize(
    ("idempotency_key", "expected"), [(None, WARM_QUERIES), ("warm-key", WARM_KEYED_QUERIES)]
)
def test_a_warm_execution_costs_only_its_record(as_runtime, idempotency_key, expected):
    authorization = f"Bearer {as_runtime.keys['main']}"
    warm_up = ExecutionRequest("claims-triage", "triage", CLAIM, idempotency_key="warm-up")
    execute_governed(grant=authenticate(authorization), request=warm_up)
    request = ExecutionRequest("claims-triage", "triage", CLAIM, idempotency_key=idempotency_key)
    with CaptureQueriesContext(connection) as queries:
        recorded = execute_governed(grant=authenticate(authorization), request=request)
    assert recorded.status == "allowed"
    executed = [query["sql"] for query in queries.captured_queries]
    assert len(executed) == len(expected), executed
    for statement, start in zip(executed, expected, strict=True):
        assert statement.startswith(start), executed
