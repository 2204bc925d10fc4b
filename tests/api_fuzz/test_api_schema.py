"""The OpenAPI schema tells the truth: paginated envelopes, error answers, bounds; no generator warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from core.api import MAX_OFFSET, MAX_PAGE_SIZE
from core.pagination import MAX_CURSOR_LENGTH

ROOT = Path(__file__).resolve().parent.parent.parent
PAGINATED = [
    "/api/v1/audit/records/",
    "/api/v1/bundles/",
    "/api/v1/bundles/{name}/versions/{version}/gate-runs/",
    "/api/v1/decisions/",
    "/api/v1/deployments/",
    "/api/v1/environments/",
    "/api/v1/environments/{name}/history/",
    "/api/v1/model-endpoints/",
    "/api/v1/promotions/",
    "/api/v1/runtime-keys/",
    "/api/v1/webhooks/",
    "/api/v1/webhooks/{webhook_id}/deliveries/",
]
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def response_schema(operation: dict, status: str) -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_the_generator_reports_no_warning_and_the_schema_validates():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "contractor_site.settings.base"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr


@pytest.mark.parametrize("path", PAGINATED)
def test_a_paginated_list_is_documented_as_its_envelope_with_bounded_limit_offset_and_cursor(schema, path):
    operation = schema["paths"][path]["get"]
    reference = response_schema(operation, "200")["$ref"].rsplit("/", 1)[-1]
    envelope = schema["components"]["schemas"][reference]
    assert set(envelope["properties"]) == {"count", "count_exact", "next", "previous", "results"}
    assert envelope["properties"]["results"]["type"] == "array"
    bounds = {
        parameter["name"]: parameter["schema"]
        for parameter in operation["parameters"]
        if parameter["name"] in ("limit", "offset", "cursor")
    }
    assert (bounds["cursor"]["type"], bounds["cursor"]["maxLength"]) == ("string", MAX_CURSOR_LENGTH)
    assert (bounds["limit"]["minimum"], bounds["limit"]["maximum"]) == (1, MAX_PAGE_SIZE)
    assert (bounds["offset"]["minimum"], bounds["offset"]["maximum"]) == (0, MAX_OFFSET)


def test_every_operation_documents_its_error_answers_in_the_error_shape(schema):
    missing = []
    for path, method, operation in operations(schema):
        expected = {"400", "401", "403"} | ({"404"} if "{" in path else set())
        for status in sorted(expected):
            if status not in operation["responses"] or response_schema(operation, status) != ERROR_REF:
                missing.append(f"{method} {path} {status}")
    assert missing == []
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/bundles/{name}/versions/", "post", {"200", "201", "409", "413", "415"}),
        ("/api/v1/promotions/", "post", {"201", "404", "409"}),
        ("/api/v1/promotions/{promotion_id}/approve/", "post", {"200", "409"}),
        ("/api/v1/runtime-keys/{key_id}/", "delete", {"200", "409"}),
        ("/api/v1/bundles/{name}/push-grants/{username}/", "delete", {"200"}),
        ("/api/v1/environments/{name}/approvers/{username}/", "delete", {"200"}),
    ],
)
def test_answers_an_operation_gives_are_documented(schema, path, method, statuses):
    documented = set(schema["paths"][path][method]["responses"])
    assert statuses <= documented
    assert "204" not in documented  # these deletions answer 200 with the object, not an empty 204


def test_bodies_the_services_refuse_when_blank_are_documented_as_required_and_not_blank(schema):
    components = schema["components"]["schemas"]
    for component, field in [
        ("PromotionListInputRequest", "justification"),
        ("RollbackInputRequest", "justification"),
        ("RejectInputRequest", "comment"),
    ]:
        assert field in components[component]["required"]
        assert components[component]["properties"][field]["pattern"] == r"\S"


def test_path_and_free_text_query_parameters_document_that_nul_is_refused(schema):
    [parameter] = schema["paths"]["/api/v1/bundles/{name}/"]["get"]["parameters"]
    assert parameter["schema"]["pattern"] == "^[^\\u0000]*$"
    history = schema["paths"]["/api/v1/audit/history/"]["get"]["parameters"]
    by_name = {parameter["name"]: parameter for parameter in history}
    assert by_name["model"]["schema"]["enum"]
    assert by_name["object_id"]["schema"]["type"] == "integer"
