"""The benchmark's ungoverned baseline, served by the runtime process only when the benchmark starts it.

bench/runtime.py starts gunicorn with bench/runtime_settings.py, whose URLconf is this module: the runtime's
own routes plus POST /v1/bench/bare/<bundle>/<pipeline>, which calls the model and inserts one audit record,
without key, release pointer, policies or validation. The runtime role may append such records only where
`admit_bare_records` allowed it: in the benchmark's throw-away tenant, whose schema (and policy) is dropped
at the end of the run. Production settings and ordinary tenants know nothing of either.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from psycopg import sql

from audit.actions import AuditAction
from audit.services import record
from bundles.language.decisions import content_hash
from bundles.language.models import ModelError, ModelRequest
from runtime import service_urls
from runtime.door import json_object, json_response, request_body, require_tenant, service_endpoint
from runtime.endpoint_models import model_for

BARE_ENDPOINT = "default"
BARE_MODEL = "dev-model"
BARE_FIELDS = frozenset({"input"})


class BenchAction(AuditAction):
    """What the benchmark's bare endpoint writes to an audit log (its own throw-away tenant's only)."""

    BARE = "bench.bare"


BARE_RECORDS_SQL = f"action = '{BenchAction.BARE}' AND actor_kind = 'system'"
BARE_INSERT_POLICY = "bench_appends_bare_records"
BARE_RETURNING_POLICY = "bench_returns_bare_record_ids"


@service_endpoint("POST")
def bare(request: HttpRequest, bundle: str, pipeline: str) -> HttpResponse:
    """POST /v1/bench/bare/<bundle>/<pipeline>: call the model, insert one record, answer.

    The same model endpoint and the same single audit INSERT in one transaction as a governed execution,
    without any governance.
    """
    require_tenant()
    document = json_object(request_body(request), BARE_FIELDS, frozenset())
    model = model_for(BARE_ENDPOINT)
    prompt = json.dumps(document.get("input"), sort_keys=True)
    try:
        text = model(ModelRequest("", prompt, {"name": BARE_MODEL})).text
    except ModelError as error:
        return json_response({"error": {"code": "model_failed", "message": str(error), "details": []}}, 502)
    with transaction.atomic():
        entry = record(
            actor=None,
            action=BenchAction.BARE,
            data={"bundle": bundle, "pipeline": pipeline, "input_hash": content_hash(document.get("input"))},
        )
    return json_response({"record_id": entry.pk, "output": text})


def admit_bare_records(cursor, schema: str, role: str) -> None:
    """Let `role` append (and read back the id of) `bench.bare` records in tenant `schema`'s audit log.

    Row-level security policies of one table add up (OR): these two widen the runtime's own, in this schema
    only. Call it as the table's owner, on the benchmark's tenant only.
    """
    audit = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("audit_record"))
    role_id = sql.Identifier(role)
    records = sql.SQL(BARE_RECORDS_SQL)
    cursor.execute(
        sql.SQL("CREATE POLICY {} ON {} FOR INSERT TO {} WITH CHECK ({})").format(
            sql.Identifier(BARE_INSERT_POLICY), audit, role_id, records
        )
    )
    cursor.execute(
        sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING ({})").format(
            sql.Identifier(BARE_RETURNING_POLICY), audit, role_id, records
        )
    )


urlpatterns = [
    path("v1/bench/bare/<str:bundle>/<str:pipeline>", bare, name="runtime-bench-bare"),
    *service_urls.urlpatterns,  # the runtime's routes, ending with its JSON 404 for every other path
]

handler400 = service_urls.handler400
handler404 = service_urls.handler404
handler500 = service_urls.handler500
