"""The database side of the runtime's isolation: its role, the views it reads through, and its grants.

The runtime connects as `contractor_runtime` (DESIGN §7). In each tenant schema that role may:

- SELECT `runtime_released_version` (stated by promotions, promotions/release_view.py): every version ever
  deployed to an environment, with a `live` flag on the one the latest deployment points at (the runtime
  executes only live rows, and verifies past decisions of any row);
- SELECT `runtime_decision`: the `runtime.decision` audit records only (decision lookup);
- EXECUTE `runtime_idempotent_decision(key_id, idempotency_key)`: the decision a key recorded under an
  Idempotency-Key. A query on the security-barrier view cannot use the idempotency index (`->>` is not
  leakproof, so the planner applies it only after the view's own filter, row by row); this SECURITY DEFINER
  function, owned by the migrating role, reads the table through the index and returns nothing the view does
  not already show;
- SELECT `runtime_runtimekey` and `runtime_modelendpoint`;
- INSERT into `audit_record` every column but `id` (the identity column numbers the rows; a chosen id could
  collide with the control plane's next record), plus SELECT of its `id` column alone, which
  `INSERT ... RETURNING id` needs, and USAGE of its id sequence. Row-level security narrows that to the
  runtime's own records: a `runtime.decision` by a runtime key; the role cannot forge a control-plane
  record (`promotion.approved` by a user, ...). The table's owner, the control plane, is not subject to these
  policies.

A trigger (`runtime_decision_guard`, BEFORE INSERT on `audit_record`) checks every row the runtime role
appends: its `created_at` must be the database's present (within RECORD_CLOCK_TOLERANCE of the statement's
start and of the clock: no back-dated or future records; refused rather than overwritten, since the record
hash covers the time), and a record by a runtime key must name an existing, unrevoked key of that schema.

In `public` it may read `tenancy_tenant` and `tenancy_domain` (routing by host). Nothing else: bundles,
promotions, users, history tables and the audit log itself answer "permission denied". TRUNCATE is revoked
everywhere. The views are owned by the migrating role, so they read the base tables on the runtime's behalf.

The grants are applied by runtime's tenant migration in every schema it migrates (so every new tenant gets
them) and can be re-applied with `manage.py runtime_grants` (e.g. after an administrator created the role).
"""

from __future__ import annotations

import logging

from psycopg import sql

from promotions.release_view import RELEASED_VIEW
from runtime.actions import RuntimeAction
from runtime.conf import runtime_setting

logger = logging.getLogger(__name__)

DECISION_VIEW = "runtime_decision"
READABLE_TABLES = ("runtime_runtimekey", "runtime_modelendpoint")
READABLE_PUBLIC_TABLES = ("tenancy_tenant", "tenancy_domain")
AUDIT_TABLE = "audit_record"
DECISION_ACTION = RuntimeAction.DECISION.value  # the plain name, for SQL and the canonical record form
AUDIT_INSERT_COLUMNS = (
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "data",
    "record_hash",
)
INSERT_POLICY = "runtime_appends_its_records"
RETURNING_POLICY = "runtime_returns_its_record_ids"
# The only records the runtime role may append (and see the id of): its decisions. (The runtime benchmark adds
# a policy for its own rows in its throw-away tenant, see bench/bare_runtime.py.)
RUNTIME_RECORDS_SQL = f"action = '{DECISION_ACTION}' AND actor_kind = 'runtime_key'"

ROLE_CREATED = "runtime: created the database role {role}."
ROLE_EXISTS = "runtime: the database role {role} exists."
ROLE_NOT_CREATED = (
    "runtime: the migrating role may not create roles (needs CREATEROLE), so the runtime's database role "
    "{role} was NOT created. Create it as an administrator (CREATE ROLE {role} LOGIN PASSWORD '...'), "
    "then run `manage.py runtime_grants` to grant it access to every tenant."
)
GRANTS_SKIPPED = (
    "runtime: role {role} does not exist; grants on schema {schema} skipped (see runtime_grants)."
)

DECISION_VIEW_SQL = """
CREATE VIEW runtime_decision WITH (security_barrier) AS
SELECT id, created_at, actor_id AS key_id, actor_name AS key_name, target_type, target_id, data, record_hash
FROM audit_record
WHERE action = 'runtime.decision' AND actor_kind = 'runtime_key';
"""

DROP_DECISION_VIEW_SQL = f"DROP VIEW IF EXISTS {DECISION_VIEW};"

# Two requests with the same key and Idempotency-Key cannot both record a decision: the second INSERT fails.
IDEMPOTENCY_INDEX = "runtime_decision_idempotency"
IDEMPOTENCY_INDEX_SQL = f"""
CREATE UNIQUE INDEX {IDEMPOTENCY_INDEX} ON {AUDIT_TABLE} (actor_id, (data ->> 'idempotency_key'))
WHERE action = '{DECISION_ACTION}' AND (data ->> 'idempotency_key') IS NOT NULL;
"""
# Decisions by time (migration 0002); runtime 0007 replaces it by (created_at, id) and the browser's filters.
DECISION_TIME_INDEX = "runtime_decision_created"
DECISION_TIME_INDEX_SQL = f"""
CREATE INDEX {DECISION_TIME_INDEX} ON {AUDIT_TABLE} (created_at) WHERE action = '{DECISION_ACTION}';
"""
DROP_INDEXES_SQL = f"DROP INDEX IF EXISTS {IDEMPOTENCY_INDEX}; DROP INDEX IF EXISTS {DECISION_TIME_INDEX};"

IDEMPOTENT_DECISION_FUNCTION = "runtime_idempotent_decision"
# The lookup the function runs, as the table's owner: a range of the idempotency index (tests EXPLAIN it).
# (`runtime.decision` is DECISION_ACTION: a test holds them equal.)
IDEMPOTENT_DECISION_QUERY = """
SELECT id::bigint, data FROM {audit}
WHERE action = 'runtime.decision' AND actor_kind = 'runtime_key'
  AND actor_id = {key_id} AND (data ->> 'idempotency_key') = {idempotency_key}
LIMIT 1
"""


def idempotent_decision_function_sql(schema: str) -> sql.Composed:
    """Return the statement creating `schema`'s idempotency lookup function (search_path pinned)."""
    audit = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(AUDIT_TABLE))
    query = sql.SQL(IDEMPOTENT_DECISION_QUERY).format(
        audit=audit, key_id=sql.SQL("p_key_id"), idempotency_key=sql.SQL("p_idempotency_key")
    )
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {function}(p_key_id text, p_idempotency_key text) "
        "RETURNS TABLE (id bigint, data jsonb) LANGUAGE sql STABLE SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS {body}"
    ).format(
        function=sql.SQL("{}.{}").format(
            sql.Identifier(schema), sql.Identifier(IDEMPOTENT_DECISION_FUNCTION)
        ),
        body=sql.Literal(query.as_string()),
    )


def idempotent_decision_function_create(cursor, schema: str) -> None:
    """Create `schema`'s idempotency lookup function, callable by nobody until grant_runtime_access."""
    cursor.execute(idempotent_decision_function_sql(schema))
    cursor.execute(
        sql.SQL("REVOKE ALL ON FUNCTION {}.{}(text, text) FROM PUBLIC").format(
            sql.Identifier(schema), sql.Identifier(IDEMPOTENT_DECISION_FUNCTION)
        )
    )


# Seconds a runtime record's created_at may differ from the database's clock (application hosts' clock skew).
RECORD_CLOCK_TOLERANCE = 5
DECISION_GUARD = "runtime_decision_guard"
DECISION_GUARD_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $guard$
BEGIN
    IF current_user <> {role} THEN
        RETURN NEW;
    END IF;
    IF NEW.created_at IS NULL
       OR NEW.created_at < statement_timestamp() - make_interval(secs => {tolerance})
       OR NEW.created_at > clock_timestamp() + make_interval(secs => {tolerance}) THEN
        RAISE EXCEPTION 'runtime records are timed by the database: created_at % is not now (% s tolerance)',
            NEW.created_at, {tolerance} USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.actor_kind = 'runtime_key' AND NOT (
        NEW.actor_id ~ '^[0-9]{{1,18}}$' AND EXISTS (
            SELECT 1 FROM {keys} WHERE id = NEW.actor_id::bigint AND revoked_at IS NULL
        )
    ) THEN
        RAISE EXCEPTION 'runtime key % is unknown or revoked in this schema', NEW.actor_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$guard$;
"""
DECISION_GUARD_TRIGGER_SQL = """
DROP TRIGGER IF EXISTS {trigger} ON {audit};
CREATE TRIGGER {trigger} BEFORE INSERT ON {audit} FOR EACH ROW EXECUTE FUNCTION {function}();
"""
DROP_DECISION_GUARD_SQL = "DROP TRIGGER IF EXISTS {trigger} ON {audit}; DROP FUNCTION IF EXISTS {function}();"


def decision_guard_names(schema: str) -> dict[str, sql.Composable]:
    """Return the SQL names of the guard's trigger, function, the audit log and the keys of `schema`."""
    return {
        "trigger": sql.Identifier(DECISION_GUARD),
        "function": sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(DECISION_GUARD)),
        "audit": sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(AUDIT_TABLE)),
        "keys": sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("runtime_runtimekey")),
    }


def install_decision_guard(cursor, schema: str) -> None:
    """(Re)create the trigger checking the time and key of every record the runtime role appends."""
    names = decision_guard_names(schema)
    cursor.execute(
        sql.SQL(DECISION_GUARD_FUNCTION_SQL).format(
            role=sql.Literal(runtime_role()), tolerance=sql.Literal(RECORD_CLOCK_TOLERANCE), **names
        )
    )
    cursor.execute(sql.SQL(DECISION_GUARD_TRIGGER_SQL).format(**names))


def remove_decision_guard(cursor, schema: str) -> None:
    """Drop the guard's trigger and function from `schema` (migration reverse)."""
    cursor.execute(sql.SQL(DROP_DECISION_GUARD_SQL).format(**decision_guard_names(schema)))


def runtime_role() -> str:
    """Return the name of the runtime's database role."""
    return runtime_setting("RUNTIME_DB_ROLE")


def role_exists(cursor, role: str) -> bool:
    """Return whether `role` exists in the cluster."""
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    return cursor.fetchone() is not None


def may_create_roles(cursor) -> bool:
    """Return whether the connected role may create roles."""
    cursor.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
    row = cursor.fetchone()
    return bool(row and row[0])


def ensure_runtime_role(cursor) -> bool:
    """Create the runtime's LOGIN role unless it exists; return whether it exists afterwards.

    Never changes an existing role (its password may have been rotated by an administrator). When the
    migrating role lacks CREATEROLE, log how to create it and return False instead of failing.
    """
    role = runtime_role()
    if role_exists(cursor, role):
        logger.debug(ROLE_EXISTS.format(role=role))
        return True
    if not may_create_roles(cursor):
        logger.warning(ROLE_NOT_CREATED.format(role=role))
        return False
    # Two tenants migrating at once may race here; the loser sees duplicate_object and moves on.
    cursor.execute(
        sql.SQL(
            "DO $create_role$ BEGIN "
            "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {name}) THEN "
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {password}; "
            "END IF; "
            "EXCEPTION WHEN duplicate_object THEN NULL; "
            "END $create_role$"
        ).format(
            name=sql.Literal(role),
            role=sql.Identifier(role),
            password=sql.Literal(runtime_setting("RUNTIME_DB_PASSWORD")),
        )
    )
    logger.info(ROLE_CREATED.format(role=role))
    return True


def grant_statements(schema: str, role: str) -> list[sql.Composed]:
    """Return the statements giving `role` exactly the runtime's access to tenant `schema` and `public`."""
    role_id = sql.Identifier(role)
    schema_id = sql.Identifier(schema)

    def table(name: str, in_schema: str = schema) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(in_schema), sql.Identifier(name))

    readable = [table(name) for name in (RELEASED_VIEW, DECISION_VIEW, *READABLE_TABLES)]
    public_readable = [table(name, "public") for name in READABLE_PUBLIC_TABLES]
    audit = table(AUDIT_TABLE)
    insertable = sql.SQL(", ").join(sql.Identifier(column) for column in AUDIT_INSERT_COLUMNS)
    runtime_records = sql.SQL(RUNTIME_RECORDS_SQL)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role_id),
        sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(", ").join(readable), role_id),
        # Earlier grants gave INSERT on the whole table (the id column included): take it back first.
        sql.SQL("REVOKE INSERT ON {} FROM {}").format(audit, role_id),
        sql.SQL("GRANT INSERT ({}), SELECT (id) ON {} TO {}").format(insertable, audit, role_id),
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(audit),
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(INSERT_POLICY), audit),
        sql.SQL("CREATE POLICY {} ON {} FOR INSERT TO {} WITH CHECK ({})").format(
            sql.Identifier(INSERT_POLICY), audit, role_id, runtime_records
        ),
        sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(RETURNING_POLICY), audit),
        sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING ({})").format(
            sql.Identifier(RETURNING_POLICY), audit, role_id, runtime_records
        ),
        sql.SQL("GRANT EXECUTE ON FUNCTION {}.{}(text, text) TO {}").format(
            schema_id, sql.Identifier(IDEMPOTENT_DECISION_FUNCTION), role_id
        ),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role_id),
        sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(", ").join(public_readable), role_id),
        sql.SQL("REVOKE TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}").format(schema_id, role_id),
        sql.SQL("REVOKE TRUNCATE ON ALL TABLES IN SCHEMA public FROM {}").format(role_id),
    ]


def sequence_grant(cursor, schema: str, role: str) -> None:
    """Grant USAGE on the audit record id sequence (a serial needs it; an identity column does not)."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f'"{schema}".{AUDIT_TABLE}'])
    row = cursor.fetchone()
    if row and row[0]:
        cursor.execute(
            sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.SQL(row[0]), sql.Identifier(role))
        )


def grant_runtime_access(cursor, schema: str) -> bool:
    """Give the runtime role its access to `schema`; return False (and log) when the role does not exist."""
    role = runtime_role()
    if not role_exists(cursor, role):
        logger.warning(GRANTS_SKIPPED.format(role=role, schema=schema))
        return False
    idempotent_decision_function_create(cursor, schema)
    for statement in grant_statements(schema, role):
        cursor.execute(statement)
    sequence_grant(cursor, schema, role)
    install_decision_guard(cursor, schema)  # it names the role, which runtime_grants may apply anew
    return True


def revoke_runtime_access(cursor, schema: str) -> None:
    """Remove every privilege of the runtime role on `schema` (migration reverse)."""
    role = runtime_role()
    if role_exists(cursor, role):
        audit = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(AUDIT_TABLE))
        for policy in (INSERT_POLICY, RETURNING_POLICY):
            cursor.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(policy), audit))
        cursor.execute(
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        cursor.execute(
            sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(sql.Identifier(schema), sql.Identifier(role))
        )
    cursor.execute(
        sql.SQL("DROP FUNCTION IF EXISTS {}.{}(text, text)").format(
            sql.Identifier(schema), sql.Identifier(IDEMPOTENT_DECISION_FUNCTION)
        )
    )
