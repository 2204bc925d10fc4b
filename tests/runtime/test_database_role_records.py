"""The database times and keys the runtime role's records (runtime/grants.py, `runtime_decision_guard`): as
contractor_runtime, a back-dated or future record, or a decision naming an unknown or revoked key of the
schema, is refused; a record of the present by a live key is appended, and executions still record."""

import psycopg
import pytest
from psycopg import errors

from tests.runtime.conftest import owner_connection, runtime_role_connection

pytestmark = pytest.mark.django_db

DECISION_INSERT = (
    "INSERT INTO audit_record (created_at, actor_kind, actor_id, actor_name, action, target_type, target_id, "
    "data, record_hash) VALUES ({created_at}, 'runtime_key', %s, 'k', 'runtime.decision', "
    "'bundles.bundleversion', '1', '{{}}', '0') RETURNING id"
)
NOW = "now()"
BACK_DATED = [
    "now() - interval '1 hour'",
    "now() - interval '6 seconds'",
    "'2020-01-01T00:00:00Z'",
]
FUTURE = ["now() + interval '1 hour'", "clock_timestamp() + interval '7 seconds'"]


@pytest.fixture
def as_runtime(world):
    """A connection AS contractor_runtime on the world's tenant schema."""
    with runtime_role_connection(world.tenant.schema_name) as connection:
        yield connection


def insert(connection: psycopg.Connection, created_at: str, key_id: str):
    """Insert one decision record, then roll back; return its id, or the class of the error it raised."""
    try:
        return connection.execute(DECISION_INSERT.format(created_at=created_at), [key_id]).fetchone()[0]
    except psycopg.Error as error:
        return type(error)
    finally:
        connection.rollback()


@pytest.mark.parametrize("created_at", BACK_DATED + FUTURE)
def test_a_record_not_of_the_present_is_refused(as_runtime, world, created_at):
    assert insert(as_runtime, created_at, str(world.key_ids["main"])) is errors.CheckViolation


@pytest.mark.parametrize("key", ["unknown", "revoked", "malformed"])
def test_a_decision_naming_an_unknown_or_revoked_key_is_refused(as_runtime, world, key):
    key_id = {"unknown": "987654321", "revoked": str(world.key_ids["revoked"]), "malformed": "1 OR true"}[key]
    assert insert(as_runtime, NOW, key_id) is errors.ForeignKeyViolation


def test_a_record_of_the_present_by_a_live_key_is_appended(as_runtime, world):
    assert isinstance(insert(as_runtime, NOW, str(world.key_ids["main"])), int)
    assert isinstance(insert(as_runtime, "now() - interval '2 seconds'", str(world.key_ids["main"])), int)


def test_the_owner_role_is_not_subject_to_the_guard(world):
    with owner_connection() as owner:
        owner.execute(f'SET search_path TO "{world.tenant.schema_name}"')
        with pytest.raises(psycopg.errors.RaiseException), owner.transaction():
            inserted = owner.execute(
                DECISION_INSERT.format(created_at=BACK_DATED[0]), [str(world.key_ids["revoked"])]
            ).fetchone()
            assert inserted[0] > 0
            raise psycopg.errors.RaiseException("roll back")  # keep the committed tenant's log clean


def test_executions_still_record_their_decisions(client):
    response = client.execute("claims-lab", "triage", {"claim_id": "C1", "amount": 10, "description": "car"})
    assert response.status_code == 200
    decision = client.get(f"/v1/decisions/{response.json()['decision_id']}")
    assert decision.status_code == 200
    assert decision.json()["record_hash"]
