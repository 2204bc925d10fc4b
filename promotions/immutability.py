"""Database-enforced immutability of finished gate runs.

Unlike append-only tables, a gate run changes while it is queued and running, so the trigger refuses UPDATE
and DELETE only of a row that is already finished. While it is active, what it runs (version, digest), who
asked and when never change, and its attempt counter (the token of the latest claim) never goes back, so
a worker whose claim was superseded can never be made current again. The function is created in each
tenant schema by the tenant migration (rather than once in public), so parallel tenant migrations never
recreate a shared function concurrently, and no shared app needs to know about gate runs.
"""

FINISHED_STATUSES = ("passed", "failed", "error")
GATE_RUN_TABLE = "promotions_gaterun"
FUNCTION = "contractor_refuse_finished_gate_run"
REFUSAL = "contractor: % of finished gate run %.%(id=%) is refused: a finished run is immutable"

CREATE_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ({", ".join(f"'{status}'" for status in FINISHED_STATUSES)}) THEN
        RAISE EXCEPTION '{REFUSAL}',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
"""

PROTECT_SQL = f"""
{CREATE_FUNCTION_SQL}
CREATE TRIGGER {GATE_RUN_TABLE}_refuse_finished BEFORE UPDATE OR DELETE ON {GATE_RUN_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();
CREATE TRIGGER {GATE_RUN_TABLE}_refuse_truncate BEFORE TRUNCATE ON {GATE_RUN_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION public.contractor_refuse_mutation();
"""

UNPROTECT_SQL = f"""
DROP TRIGGER IF EXISTS {GATE_RUN_TABLE}_refuse_finished ON {GATE_RUN_TABLE};
DROP TRIGGER IF EXISTS {GATE_RUN_TABLE}_refuse_truncate ON {GATE_RUN_TABLE};
DROP FUNCTION IF EXISTS {FUNCTION}();
"""

IDENTITY_REFUSAL = (
    "contractor: changing % of gate run %.%(id=%) is refused: a run keeps its version, digest, requester, "
    "creation time and never lowers its attempts"
)

CREATE_FUNCTION_WITH_IDENTITY_SQL = f"""
CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ({", ".join(f"'{status}'" for status in FINISHED_STATUSES)}) THEN
        RAISE EXCEPTION '{REFUSAL}',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF NEW.version_id IS DISTINCT FROM OLD.version_id
        OR NEW.digest IS DISTINCT FROM OLD.digest
        OR NEW.requested_by_id IS DISTINCT FROM OLD.requested_by_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.attempts < OLD.attempts THEN
        RAISE EXCEPTION '{IDENTITY_REFUSAL}',
            'identity', TG_TABLE_SCHEMA, TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
"""
