"""The runtime's database role (DESIGN §7): connected AS contractor_runtime, it reads released versions only
and may only append to the audit log. Every tenant schema gets exactly these grants from its migrations."""

import psycopg
import pytest
from psycopg import errors

from bench.bare_runtime import BenchAction
from tests.runtime.conftest import RUNTIME_ROLE, owner_connection, runtime_role_connection

pytestmark = pytest.mark.django_db

DENIED_READS = [
    "bundles_bundle",
    "bundles_bundleversion",
    "bundles_draft",
    "bundles_historicalbundle",
    "bundles_historicaldraft",
    "promotions_environment",
    "promotions_deployment",
    "promotions_promotionrequest",
    "promotions_historicalpromotionrequest",
    "promotions_approval",
    "promotions_gaterun",
    "runtime_historicalruntimekey",
    "runtime_historicalmodelendpoint",
    "guardian_userobjectpermission",
    "audit_record",
    "public.auth_user",
    "public.tenancy_apitoken",
    "public.tenancy_membership",
    "public.django_session",
]
ALLOWED_READS = [
    "runtime_released_version",
    "runtime_decision",
    "runtime_runtimekey",
    "runtime_modelendpoint",
    "public.tenancy_tenant",
    "public.tenancy_domain",
]
WRITE_DENIALS = [
    "UPDATE runtime_runtimekey SET revoked_at = NULL",
    "DELETE FROM runtime_runtimekey",
    "UPDATE runtime_modelendpoint SET base_url = 'http://evil.example/v1'",
    "INSERT INTO runtime_runtimekey (name, prefix, secret_hash, environment_id, bundles, created_at) "
    "VALUES ('x', 'deadbeef', 'x', 1, '{}', now())",
    "UPDATE audit_record SET action = 'x'",
    "DELETE FROM audit_record",
    "TRUNCATE audit_record",
    "TRUNCATE runtime_runtimekey",
    "INSERT INTO promotions_deployment (bundle_id, environment_id, version_id, kind, actor_id, "
    "justification, created_at) VALUES (1, 1, 1, 'promote', 1, '', now())",
    "CREATE TABLE runtime_smuggled (id int)",
]
AUDIT_INSERT = (
    "INSERT INTO audit_record (created_at, actor_kind, actor_id, actor_name, action, target_type, target_id, "
    "data, record_hash) VALUES (now(), {kind}, '1', 'someone', {action}, 'promotions.promotionrequest', '1', "
    "'{{}}', '0')"
)
FORGED_RECORDS = [
    AUDIT_INSERT.format(kind="'user'", action="'promotion.approved'"),
    AUDIT_INSERT.format(kind="'runtime_key'", action="'deployment.created'"),
    AUDIT_INSERT.format(kind="'system'", action="'rollback'"),
    AUDIT_INSERT.format(kind="'user'", action="'runtime.decision'"),
    "INSERT INTO audit_record (id, created_at, actor_kind, actor_id, actor_name, action, target_type, "
    "target_id, data, record_hash) VALUES (9000000000000000000, now(), 'runtime_key', '1', 'k', "
    "'runtime.decision', '', '', '{}', '0')",
]


@pytest.fixture
def as_runtime(world):
    """A connection AS contractor_runtime on the world's tenant schema (rolled back after each statement)."""
    with runtime_role_connection(world.tenant.schema_name) as connection:
        yield connection


def attempt(connection: psycopg.Connection, statement: str):
    """Run `statement`, then roll back; return its rows, or the class of the error it raised."""
    try:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []
    except psycopg.Error as error:
        return type(error)
    finally:
        connection.rollback()


def select_from(table: str) -> str:
    """Return a query reading one row of `table` (a constant of this module)."""
    return "SELECT * FROM " + table + " LIMIT 1"  # noqa: S608 (tables named by this module)


@pytest.mark.parametrize("table", DENIED_READS)
def test_the_runtime_role_may_not_read_control_plane_tables(as_runtime, table):
    assert attempt(as_runtime, select_from(table)) is errors.InsufficientPrivilege


@pytest.mark.parametrize("statement", WRITE_DENIALS)
def test_the_runtime_role_may_not_change_anything_but_append_decisions(as_runtime, statement):
    assert attempt(as_runtime, statement) is errors.InsufficientPrivilege


@pytest.mark.parametrize("statement", FORGED_RECORDS)
def test_the_runtime_role_may_not_append_anything_but_its_own_decisions(as_runtime, statement):
    assert attempt(as_runtime, statement) is errors.InsufficientPrivilege


@pytest.mark.parametrize("table", ALLOWED_READS)
def test_the_runtime_role_reads_released_versions_keys_endpoints_and_routing(as_runtime, table):
    assert isinstance(attempt(as_runtime, select_from(table)), list)


def test_the_released_view_shows_what_the_runtime_may_execute(as_runtime):
    rows = as_runtime.execute(
        "SELECT bundle, environment, version, live FROM runtime_released_version "
        "WHERE bundle = 'claims-triage' ORDER BY environment, version"
    ).fetchall()
    assert rows == [
        ("claims-triage", "current", "1.2.0", False),
        ("claims-triage", "current", "1.3.0", True),
        ("claims-triage", "staging", "1.2.0", False),
        ("claims-triage", "staging", "1.3.0", True),
    ]
    never_released = as_runtime.execute(
        "SELECT count(*) FROM runtime_released_version "
        "WHERE bundle = 'support-routing' AND environment = 'current'"
    ).fetchone()
    assert never_released == (0,)


def test_the_runtime_role_may_append_a_decision_record(as_runtime, world):
    try:
        inserted = as_runtime.execute(
            "INSERT INTO audit_record (created_at, actor_kind, actor_id, actor_name, action, target_type, "
            "target_id, data, record_hash) "
            "VALUES (now(), 'runtime_key', %s, 'k', 'runtime.decision', '', '', '{}', '0') RETURNING id",
            [str(world.key_ids["main"])],
        ).fetchone()
        assert inserted[0] > 0
        returned_data = attempt_in_transaction(
            as_runtime,
            "INSERT INTO audit_record (created_at, actor_kind, actor_id, actor_name, action, target_type, "
            "target_id, data, record_hash) VALUES (now(), 'runtime_key', '1', 'k', 'x', '', '', '{}', '0') "
            "RETURNING data",
        )
        assert returned_data is errors.InsufficientPrivilege
    finally:
        as_runtime.rollback()


def attempt_in_transaction(connection: psycopg.Connection, statement: str):
    """Run `statement` in a savepoint of the open transaction; return the error class or the rows."""
    try:
        with connection.transaction():
            return connection.execute(statement).fetchall()
    except psycopg.Error as error:
        return type(error)


def test_the_decision_view_shows_runtime_decisions_and_nothing_else_of_the_audit_log(
    as_runtime, world, client
):
    assert (
        client.execute(
            "claims-lab", "triage", {"claim_id": "C1", "amount": 10, "description": "car"}
        ).status_code
        == 200
    )
    with owner_connection() as owner:
        owner.execute(f'SET search_path TO "{world.tenant.schema_name}"')
        all_records, decisions = owner.execute(
            "SELECT count(*), count(*) FILTER (WHERE action = 'runtime.decision') FROM audit_record"
        ).fetchone()
    visible = as_runtime.execute("SELECT count(*) FROM runtime_decision").fetchone()[0]
    assert decisions >= 1
    assert all_records > decisions
    assert visible == decisions


def test_every_tenant_schema_grants_the_runtime_role_the_same_privileges(world):
    with owner_connection() as owner:
        schemas = [
            row[0]
            for row in owner.execute("SELECT schema_name FROM tenancy_tenant WHERE schema_name <> 'public'")
        ]
        for schema in schemas:
            privileges = owner.execute(
                """
                SELECT has_schema_privilege(%(role)s, %(name)s, 'USAGE'),
                       has_table_privilege(%(role)s, %(schema)s || '.runtime_released_version', 'SELECT'),
                       has_any_column_privilege(%(role)s, %(schema)s || '.audit_record', 'INSERT'),
                       has_column_privilege(%(role)s, %(schema)s || '.audit_record', 'id', 'INSERT'),
                       has_table_privilege(%(role)s, %(schema)s || '.audit_record', 'SELECT'),
                       has_table_privilege(%(role)s, %(schema)s || '.bundles_bundleversion', 'SELECT'),
                       has_table_privilege(%(role)s, %(schema)s || '.audit_record', 'TRUNCATE'),
                       (SELECT relrowsecurity FROM pg_class
                        WHERE oid = (%(schema)s || '.audit_record')::regclass)
                """,
                {"role": RUNTIME_ROLE, "name": schema, "schema": f'"{schema}"'},
            ).fetchone()
            assert privileges == (True, True, True, False, False, False, False, True), schema


def test_the_runtime_role_is_a_plain_login_role():
    with owner_connection() as owner:
        attributes = owner.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [RUNTIME_ROLE],
        ).fetchone()
    assert attributes == (True, False, False, False, False)


def test_the_runtime_role_may_not_append_a_benchmark_record_in_an_ordinary_tenant(as_runtime):
    # Only the benchmark's throw-away tenant admits them (bench/bare_runtime.py adds that policy there).
    statement = AUDIT_INSERT.format(kind="'system'", action=f"'{BenchAction.BARE}'")
    assert attempt(as_runtime, statement) is errors.InsufficientPrivilege
