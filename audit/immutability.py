"""Database-enforced immutability: triggers that refuse UPDATE, DELETE and TRUNCATE of a table.

The trigger function lives once in the public schema (created by a tenancy migration); each protected tenant
table gets its own triggers in its own schema, so every new tenant is protected by its migrations.
"""

REFUSE_FUNCTION = "public.contractor_refuse_mutation"

CREATE_REFUSE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {REFUSE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'contractor: % on %.% is refused: the table is append-only',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""
DROP_REFUSE_FUNCTION_SQL = f"DROP FUNCTION IF EXISTS {REFUSE_FUNCTION}() CASCADE;"


def protect_table_sql(table: str) -> str:
    """Return SQL that makes `table` append-only: no UPDATE, DELETE or TRUNCATE, by any role."""
    return f"""
CREATE TRIGGER {table}_refuse_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {REFUSE_FUNCTION}();
CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {REFUSE_FUNCTION}();
"""


def unprotect_table_sql(table: str) -> str:
    """Return SQL that removes the append-only triggers of `table` (migration reverse only)."""
    return f"""
DROP TRIGGER IF EXISTS {table}_refuse_update_delete ON {table};
DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table};
"""
