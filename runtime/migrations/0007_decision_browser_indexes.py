"""Indexes that serve the decisions browser's pages in order whatever the log's size.

Decisions are listed newest first by (created_at, id) and paged by cursor (core/pagination.py); filters by
bundle, by bundle and status, or by status alone read a range of an index in that order instead of walking the
whole time index and discarding rows. The expressions are the ones Django writes for `data__bundle=...`
(`data -> 'bundle'`), so the planner matches them.
"""

from django.db import migrations

DECISION = "action = 'runtime.decision'"

CREATE = f"""
CREATE INDEX runtime_decision_time ON audit_record (created_at, id) WHERE {DECISION};
DROP INDEX IF EXISTS runtime_decision_created;
CREATE INDEX runtime_decision_bundle_status
    ON audit_record ((data -> 'bundle'), (data -> 'status'), created_at, id) WHERE {DECISION};
CREATE INDEX runtime_decision_status ON audit_record ((data -> 'status'), created_at, id) WHERE {DECISION};
"""
DROP = f"""
DROP INDEX IF EXISTS runtime_decision_status;
DROP INDEX IF EXISTS runtime_decision_bundle_status;
CREATE INDEX IF NOT EXISTS runtime_decision_created ON audit_record (created_at) WHERE {DECISION};
DROP INDEX IF EXISTS runtime_decision_time;
"""


class Migration(migrations.Migration):
    dependencies = [("runtime", "0006_decision_rollups")]

    operations = [migrations.RunSQL(CREATE, DROP)]
