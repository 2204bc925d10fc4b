"""Regressions found by fuzzing the control-plane API: bad input gets a precise JSON 4xx, never a 500 or HTML.

Each test names the input that used to answer a 500, an HTML page or a 400 without the field.
"""

import json
from datetime import UTC

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from audit.exceptions import UNKNOWN_HISTORY_MODEL
from audit.history import tracked_models
from bundles.exceptions import ARCHIVE_INVALID
from bundles.models import Bundle
from core.api import (
    INVALID_LIMIT,
    INVALID_OFFSET,
    INVALID_REQUEST_MESSAGE,
    INVALID_TIME_VALUE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    NESTED_TOO_DEEPLY_MESSAGE,
    NUL_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE_MESSAGE,
    ROUTE_NOT_FOUND_MESSAGE,
    TOO_MANY_FIELDS_MESSAGE,
)
from promotions.exceptions import (
    COMMENT_REQUIRED,
    INVALID_WEBHOOK_URL,
    JUSTIFICATION_REQUIRED,
    REQUIRES_ITSELF,
)
from tenancy.exceptions import UNKNOWN_ROLE
from tenancy.roles import Role
from tests.bundles.bundle_factories import CLAIMS, example_files, tar_gz
from tests.conftest import host_of, session_client, token_client
from tests.promotions.promotion_factories import make_team, push_version, run_gates

NUL_IN = {"code": "null_characters_not_allowed", "message": NUL_NOT_ALLOWED}


@pytest.fixture
def team(in_tenant_a, make_member):
    return make_team(make_member, in_tenant_a, prefix="fz")


@pytest.fixture
def clients(team, tenant_a):
    return {role: token_client(tenant_a, getattr(team, role)) for role in vars(team)}


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


def one_field_error(field: str, message: str, code: str = "invalid") -> list[dict]:
    return [{"field": field, "code": code, "message": message}]


# --- refusals before any view: CSRF, unknown routes, HTML pages ---


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unknown_route_answers_json_404_to_a_session_without_a_csrf_token(team, tenant_a, method):
    client = session_client(tenant_a, team.admin, enforce_csrf=True)
    response = getattr(client, method)("/api/v1/no-such-thing/")
    assert response.status_code == 404  # was an HTML 403 page: CSRF refused the catch-all route first
    assert error_of(response) == {
        "code": "route_not_found",
        "message": ROUTE_NOT_FOUND_MESSAGE,
        "details": [],
    }


def test_an_html_error_page_under_the_api_is_answered_as_json(tenant_a):
    response = APIClient(HTTP_HOST=host_of(tenant_a)).get("/api/docs/")
    assert response.status_code == 401  # was the text/html page "401 Unauthorized"
    assert error_of(response) == {"code": "not_authenticated", "message": "Unauthorized.", "details": []}


# --- NUL characters in the path or the query (PostgreSQL refuses them: were 500s) ---


@pytest.mark.parametrize(
    ("role", "method", "path", "field"),
    [
        ("author", "get", "/api/v1/bundles/a%00b/", "name"),
        ("author", "get", f"/api/v1/bundles/{CLAIMS}/versions/1.0.0/files/a%00b", "path"),
        ("admin", "put", "/api/v1/memberships/a%00b/", "username"),
        ("admin", "put", f"/api/v1/bundles/{CLAIMS}/push-grants/a%00b/", "username"),
        ("admin", "put", "/api/v1/environments/staging/approvers/a%00b/", "username"),
    ],
)
def test_a_nul_in_a_path_parameter_is_a_400_naming_it(clients, role, method, path, field):
    response = getattr(clients[role], method)(path)
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "validation_failed",
        "message": INVALID_REQUEST_MESSAGE,
        "details": [{"field": field, **NUL_IN}],
    }


@pytest.mark.parametrize(
    ("role", "path", "field"),
    [
        ("auditor", "/api/v1/audit/records/?action=%00", "action"),
        ("auditor", "/api/v1/audit/history/?model=bundles.bundle&object_id=1%00", "object_id"),
        ("auditor", "/api/v1/decisions/?bundle=x%00&policy=y", "bundle"),
        ("auditor", "/api/v1/promotions/?environment=%00", "environment"),
        ("auditor", "/api/v1/deployments/?bundle=%00", "bundle"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(clients, role, path, field):
    response = clients[role].get(path)
    assert response.status_code == 400
    assert error_of(response)["details"] == [{"field": field, **NUL_IN}]


# --- times: impossible dates were 500s, offsets beyond ±15:59 were 500s, a date meant its start ---


@pytest.mark.parametrize(
    ("path", "name", "value", "code"),
    [
        ("/api/v1/deployments/", "as_of", "2026-02-30", "invalid_query"),
        ("/api/v1/deployments/", "as_of", "2026-01-01T25:00:00", "invalid_query"),
        ("/api/v1/decisions/", "since", "2026-13-01", "invalid_query"),
        ("/api/v1/decisions/", "until", "2026-02-30T00:00:00Z", "invalid_query"),
    ],
)
def test_an_impossible_time_is_a_400_naming_the_parameter(clients, path, name, value, code):
    response = clients["auditor"].get(path, {name: value})
    assert response.status_code == 400
    message = INVALID_TIME_VALUE.format(name=name, value=value)
    assert error_of(response) == {"code": code, "message": message, "details": one_field_error(name, message)}


def test_an_impossible_audit_time_is_a_400_naming_the_parameter(clients):
    response = clients["auditor"].get("/api/v1/audit/records/", {"since": "2026-02-30T00:00:00"})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["details"][0]["field"]) == ("invalid_time", "since")


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/api/v1/deployments/", "as_of", "2000-01-01T00:00:00+18:00"),
        ("/api/v1/decisions/", "until", "1706-05-17T22:53:06+18:44"),
        ("/api/v1/decisions/", "since", "0001-01-01T00:00:00+10:00"),
        ("/api/v1/audit/records/", "since", "0308-09-02T00:51:46-15:28"),
        ("/api/v1/audit/records/", "until", "9999-12-31T23:59:59-10:00"),
    ],
)
def test_any_offset_python_reads_is_converted_to_utc_not_a_500(clients, path, name, value):
    response = clients["auditor"].get(path, {name: value})
    assert response.status_code == 200, response.content[:300]


def test_as_of_a_date_means_the_end_of_that_day(team, clients):
    run_gates(team.author, push_version(team.author, "1.2.0"))
    request = {"bundle": CLAIMS, "version": "1.2.0", "environment": "staging", "justification": "Ready."}
    assert clients["author"].post("/api/v1/promotions/", request, format="json").status_code == 201
    today = timezone.now().astimezone(UTC).date().isoformat()
    live = clients["auditor"].get("/api/v1/deployments/", {"as_of": today}).json()["results"]
    assert [(row["environment"], row["version"]) for row in live] == [("staging", "1.2.0")]


# --- pagination: malformed values were ignored silently, huge ones reached the database ---


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"limit": "abc"}, "limit", INVALID_LIMIT.format(maximum=MAX_PAGE_SIZE, value="abc")),
        ({"limit": "0"}, "limit", INVALID_LIMIT.format(maximum=MAX_PAGE_SIZE, value="0")),
        ({"limit": "1001"}, "limit", INVALID_LIMIT.format(maximum=MAX_PAGE_SIZE, value="1001")),
        ({"offset": "-1"}, "offset", INVALID_OFFSET.format(maximum=MAX_OFFSET, value="-1")),
        ({"offset": "1e3"}, "offset", INVALID_OFFSET.format(maximum=MAX_OFFSET, value="1e3")),
        (
            {"offset": str(10**30)},
            "offset",
            INVALID_OFFSET.format(maximum=MAX_OFFSET, value=str(10**30)),
        ),
    ],
)
def test_a_malformed_limit_or_offset_is_a_400_naming_it(clients, query, field, message):
    response = clients["author"].get("/api/v1/bundles/", query)
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_query",
        "message": message,
        "details": one_field_error(field, message),
    }


def test_an_empty_limit_or_offset_means_the_default_page(clients):
    response = clients["author"].get("/api/v1/bundles/", {"limit": "", "offset": ""})
    assert response.status_code == 200
    assert set(response.json()) == {"count", "count_exact", "next", "previous", "results"}


# --- bodies: what the database cannot hold, what Django's parsers refuse ---


def test_a_file_path_with_a_nul_or_an_unpaired_surrogate_is_a_400_and_stores_nothing(clients):
    files = example_files()
    files["entities/x\x00y.yaml"] = files["entities/claim.yaml"].replace("name: Claim", "name: Other")
    body = json.dumps({"files": {**files, "entities/z\ud800.yaml": "name: Z"}})
    response = clients["author"].generic(
        "POST", f"/api/v1/bundles/{CLAIMS}/versions/", body, content_type="application/json"
    )
    assert response.status_code == 400  # was a 500 (NUL: DataError; surrogate: rendering the 400 failed)
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert sorted((item["field"], item["code"], item["file"]) for item in error["details"]) == [
        ("files", "unstorable_path", "entities/x\\u0000y.yaml"),
        ("files", "unstorable_path", "entities/z\\ud800.yaml"),
    ]
    assert not Bundle.objects.exists()


def test_an_archive_with_a_nul_in_a_file_or_a_name_that_is_not_utf8_is_refused(clients):
    files = {**example_files(), "README.md": "hello \x00 world"}
    extra = {f"{CLAIMS}/entities/x\udcffy.yaml": b"name: Other\n"}
    archive = SimpleUploadedFile("bundle.tar.gz", tar_gz(files, extra=extra), content_type="application/gzip")
    response = clients["author"].post(
        f"/api/v1/bundles/{CLAIMS}/versions/", {"archive": archive}, format="multipart"
    )
    assert response.status_code == 400  # was a 500
    error = error_of(response)
    assert (error["code"], error["message"]) == ("archive_invalid", ARCHIVE_INVALID.format(count=2))
    assert sorted((item["code"], item["file"]) for item in error["details"]) == [
        ("unstorable_path", "entities/x\\udcffy.yaml"),
        ("unstorable_text", "README.md"),
    ]
    assert not Bundle.objects.exists()


def test_an_error_echoing_an_unpaired_surrogate_is_still_rendered(clients):
    body = '{"url": "https://hooks.example/x", "events": ["\\ud800"]}'
    response = clients["admin"].generic("POST", "/api/v1/webhooks/", body, content_type="application/json")
    assert response.status_code == 400  # was a 500: the 400 could not be encoded as UTF-8
    detail = error_of(response)["details"][0]
    assert (detail["field"], detail["code"]) == ("events[0]", "invalid_choice")
    assert "\\ud800" in detail["message"]


def test_more_form_fields_than_django_accepts_is_a_400(tenant_a):
    body = "username=a&password=b" + "&x=1" * 1200
    response = APIClient(HTTP_HOST=host_of(tenant_a)).generic(
        "POST", "/api/v1/auth/token/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400  # was a 500 (TooManyFieldsSent)
    assert error_of(response) == {
        "code": "too_many_parts",
        "message": TOO_MANY_FIELDS_MESSAGE.format(limit=1000),
        "details": [],
    }


def test_a_body_above_the_upload_limit_is_a_413(clients, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = clients["admin"].put(
        "/api/v1/memberships/fz-author/", {"roles": ["author"], "pad": "x" * 4096}, format="json"
    )
    assert response.status_code == 413  # was a 500 (RequestDataTooBig)
    assert error_of(response) == {
        "code": "payload_too_large",
        "message": PAYLOAD_TOO_LARGE_MESSAGE.format(limit=2048),
        "details": [],
    }


def test_a_body_nested_too_deeply_is_a_parse_error(clients):
    body = '{"roles": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = clients["admin"].generic(
        "PUT", "/api/v1/memberships/fz-author/", body, content_type="application/json"
    )
    assert response.status_code == 400  # was a 500 (RecursionError in the JSON parser)
    assert error_of(response) == {"code": "parse_error", "message": NESTED_TOO_DEEPLY_MESSAGE, "details": []}


@pytest.mark.parametrize("body", ["null", "1", '"x"'])
def test_patching_a_model_endpoint_with_a_json_that_is_not_an_object_is_a_400(clients, body):
    clients["operator"].post(
        "/api/v1/model-endpoints/",
        {"name": "fz", "base_url": "http://127.0.0.1:9/v1", "allowed_models": ["m"]},
        format="json",
    )
    response = clients["operator"].generic(
        "PATCH", "/api/v1/model-endpoints/fz/", body, content_type="application/json"
    )
    assert response.status_code == 400  # was a 500 (set() of a non-object)
    assert error_of(response)["details"][0]["field"] == "non_field_errors"


# --- every 400 names its field ---


def test_history_of_an_object_id_that_cannot_be_an_id_is_a_400_naming_it(clients):
    response = clients["auditor"].get(
        "/api/v1/audit/history/", {"model": "bundles.bundle", "object_id": "abc"}
    )
    assert response.status_code == 400  # was a 500 (ValueError casting the id)
    error = error_of(response)
    assert (error["code"], [item["field"] for item in error["details"]]) == ("invalid_query", ["object_id"])


def test_history_of_an_unknown_model_names_the_model_parameter(clients):
    response = clients["auditor"].get("/api/v1/audit/history/", {"model": "nope"})
    message = UNKNOWN_HISTORY_MODEL.format(model="nope", models=", ".join(tracked_models()))
    assert error_of(response) == {
        "code": "unknown_history_model",
        "message": message,
        "details": one_field_error("model", message),
    }


def test_validation_details_name_list_items_by_index(clients):
    response = clients["admin"].put(
        "/api/v1/memberships/fz-author/", {"roles": ["author", None]}, format="json"
    )
    assert error_of(response)["details"] == [
        {"field": "roles[1]", "code": "null", "message": "This field may not be null."}
    ]


def test_refusals_of_the_services_name_their_field(team, clients):
    unknown_role = clients["admin"].put("/api/v1/memberships/fz-author/", {"roles": ["pope"]}, format="json")
    message = UNKNOWN_ROLE.format(role="pope", roles=", ".join(Role.values))
    assert error_of(unknown_role)["details"] == one_field_error("roles", message, "unknown_role")

    push_version(team.author, "1.2.0")
    blank = {"bundle": CLAIMS, "version": "1.2.0", "environment": "staging", "justification": "  "}
    refused = clients["author"].post("/api/v1/promotions/", blank, format="json")
    assert error_of(refused)["details"] == one_field_error(
        "justification", JUSTIFICATION_REQUIRED, "justification_required"
    )

    itself = clients["admin"].patch(
        "/api/v1/environments/staging/", {"requires_live_in": "staging"}, format="json"
    )
    assert error_of(itself)["details"] == one_field_error(
        "requires_live_in", REQUIRES_ITSELF, "invalid_environment_rule"
    )

    webhook = clients["admin"].post("/api/v1/webhooks/", {"url": "ftp://hooks.example/x"}, format="json")
    assert error_of(webhook)["details"] == one_field_error("url", INVALID_WEBHOOK_URL, "invalid_webhook")


def test_a_missing_justification_or_rejection_comment_is_a_400_naming_it(team, clients):
    run_gates(team.author, push_version(team.author, "1.2.0"))
    staging = {"bundle": CLAIMS, "version": "1.2.0", "environment": "staging", "justification": "Go."}
    assert clients["author"].post("/api/v1/promotions/", staging, format="json").status_code == 201
    request = {"bundle": CLAIMS, "version": "1.2.0", "environment": "current"}
    missing = clients["author"].post("/api/v1/promotions/", request, format="json")
    assert error_of(missing)["details"] == one_field_error(
        "justification", "This field is required.", "required"
    )
    created = clients["author"].post(
        "/api/v1/promotions/", {**request, "justification": "Go."}, format="json"
    )
    path = f"/api/v1/promotions/{created.json()['id']}/reject/"
    no_comment = clients["reviewer"].post(path, {}, format="json")
    assert error_of(no_comment)["details"] == one_field_error(
        "comment", "This field is required.", "required"
    )
    blank = clients["reviewer"].post(path, {"comment": " "}, format="json")
    assert error_of(blank)["details"] == one_field_error("comment", COMMENT_REQUIRED, "comment_required")
