"""The idempotency lookup of a keyed execution is one range of the idempotency index, whatever the log size.

Through the security-barrier view the planner applies `data ->> 'idempotency_key' = ...` (not leakproof) only
after the view's own filter, so the index could never serve it: a scan of every decision per keyed request.
The runtime now asks a SECURITY DEFINER function that reads the table through the index and shows nothing the
view does not.
"""

import json
import uuid

import pytest
from django.db import transaction
from psycopg import errors, sql

from audit.services import record
from runtime.access import KeyGrant
from runtime.grants import (
    DECISION_ACTION,
    IDEMPOTENCY_INDEX,
    IDEMPOTENT_DECISION_FUNCTION,
    IDEMPOTENT_DECISION_QUERY,
)
from tests.conftest import run_committed
from tests.runtime.conftest import RUNTIME_ROLE, owner_connection, runtime_role_connection

pytestmark = pytest.mark.django_db

KEY = KeyGrant(7, "ci-key", "x", 1, frozenset(), False)
OTHER_KEY = KeyGrant(8, "other", "x", 1, frozenset(), False)
LOOKUP = "SELECT id, data FROM runtime_idempotent_decision(%s, %s)"


@pytest.fixture
def keyed_decisions(committed_tenant):
    """Twenty committed decisions of key 7 under fresh Idempotency-Keys, and one of key 8 reusing one."""
    run = uuid.uuid4().hex[:8]

    def write():
        with transaction.atomic():
            rows = [
                record(actor=KEY, action=DECISION_ACTION, data={"idempotency_key": f"{run}-{n}"})
                for n in range(20)
            ]
            record(
                actor=("runtime_key", "8", "other"),
                action=DECISION_ACTION,
                data={"idempotency_key": f"{run}-3"},
            )
        return rows

    return committed_tenant.schema_name, run, run_committed(write, tenant=committed_tenant)


def plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


def test_the_functions_query_names_the_decision_action(db):
    assert "action = 'runtime.decision'" in IDEMPOTENT_DECISION_QUERY
    assert DECISION_ACTION == "runtime.decision"


def test_the_lookup_the_function_runs_is_an_index_range_in_its_generic_plan(keyed_decisions):
    schema, run, _ = keyed_decisions
    query = sql.SQL(IDEMPOTENT_DECISION_QUERY).format(
        audit=sql.Identifier(schema, "audit_record"), key_id=sql.SQL("$1"), idempotency_key=sql.SQL("$2")
    )
    with owner_connection() as owner:
        owner.execute("SET plan_cache_mode = force_generic_plan")
        owner.execute(sql.SQL("PREPARE lookup(text, text) AS {}").format(query))
        plan = owner.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE lookup('7', {})").format(f"{run}-3")
        ).fetchone()[0]
    nodes = plan_nodes(plan[0]["Plan"])
    assert any(node.get("Index Name") == IDEMPOTENCY_INDEX for node in nodes), json.dumps(plan)
    assert not any(node["Node Type"] == "Seq Scan" for node in nodes), json.dumps(plan)


def test_the_runtime_role_finds_its_decision_through_the_function_and_only_that_one(keyed_decisions):
    schema, run, rows = keyed_decisions
    with runtime_role_connection(schema) as runtime:
        found = runtime.execute(LOOKUP, ["7", f"{run}-3"]).fetchall()
        missing = runtime.execute(LOOKUP, ["7", f"{run}-404"]).fetchall()
    assert [row[0] for row in found] == [rows[3].pk]
    assert found[0][1]["idempotency_key"] == f"{run}-3"
    assert missing == []


def test_the_function_reads_only_its_own_schema_whatever_the_callers_search_path(keyed_decisions, tenant_b):
    _, run, _ = keyed_decisions
    with runtime_role_connection("beta") as runtime:
        found = runtime.execute(LOOKUP, ["7", f"{run}-3"]).fetchall()
    assert found == []


def test_the_function_is_pinned_and_callable_by_the_runtime_role_alone(db):
    with owner_connection() as owner:
        row = owner.execute(
            "SELECT p.prosecdef, p.proconfig, has_function_privilege('public', p.oid, 'EXECUTE'), "
            "has_function_privilege(%s, p.oid, 'EXECUTE') FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'alpha' AND p.proname = %s",
            [RUNTIME_ROLE, IDEMPOTENT_DECISION_FUNCTION],
        ).fetchone()
    security_definer, config, public_may, runtime_may = row
    assert security_definer is True
    assert config == ["search_path=pg_catalog, pg_temp"]
    assert (public_may, runtime_may) == (False, True)


def test_the_runtime_role_still_cannot_read_the_audit_table(db):
    with runtime_role_connection("alpha") as runtime, pytest.raises(errors.InsufficientPrivilege):
        runtime.execute("SELECT data FROM audit_record LIMIT 1")
