"""Lists page by cursor: every row once, in order, both ways, at a cost that does not depend on the depth."""

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import ActorKind, Record
from audit.services import record
from core.pagination import COUNT_EXACT_LIMIT, INVALID_CURSOR, Keyset, bounded_count
from tests.conftest import token_client

DECISION = "runtime.decision"


@pytest.fixture
def auditor(tenant_a, make_member):
    return token_client(tenant_a, make_member(tenant_a, "pager-auditor", ["auditor"]))


@pytest.fixture
def thirty_records(in_tenant_a):
    with transaction.atomic():
        ids = [record(actor=None, action="test.paged", data={"n": n}).pk for n in range(30)]
    connection.set_schema_to_public()
    return ids


def cursor_of(link: str) -> str:
    return parse_qs(urlparse(link).query)["cursor"][0]


def walk(client, url: str, params: dict) -> tuple[list[int], list[dict]]:
    """Follow `next` from the first page; return the ids seen and the pages."""
    pages = [client.get(url, params).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    return [row["id"] for page in pages for row in page["results"]], pages


def test_a_forged_cursor_is_refused_with_the_parameter_named(auditor, thirty_records):
    forged = [
        "not-base64!",
        base64.urlsafe_b64encode(b'["n", ["1; DROP TABLE"]]').decode(),
        base64.urlsafe_b64encode(b'["x", [5]]').decode(),
        base64.urlsafe_b64encode(b'["n", [5, 6]]').decode(),
        "A" * 600,
    ]
    for cursor in forged:
        response = auditor.get("/api/v1/audit/records/", {"cursor": cursor})
        assert response.status_code == 400, cursor
        error = response.json()["error"]
        assert error["code"] == "invalid_query"
        assert error["details"][0]["field"] == "cursor"
        assert error["message"] == INVALID_CURSOR.format(value=cursor[:80])


def test_records_page_by_cursor_newest_first_each_row_once(auditor, thirty_records):
    ids, pages = walk(auditor, "/api/v1/audit/records/", {"action": "test.paged", "limit": 7})
    assert ids == sorted(thirty_records, reverse=True)
    assert [len(page["results"]) for page in pages] == [7, 7, 7, 7, 2]
    assert all(page["count"] == 30 and page["count_exact"] for page in pages)
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    assert "offset" not in pages[1]["next"] and "cursor=" in pages[1]["next"]


def test_previous_walks_back_to_the_first_page(auditor, thirty_records):
    _, pages = walk(auditor, "/api/v1/audit/records/", {"action": "test.paged", "limit": 7})
    back = [auditor.get(pages[-1]["previous"]).json()]
    while back[-1]["previous"]:
        back.append(auditor.get(back[-1]["previous"]).json())
    assert [page["results"] for page in back] == [page["results"] for page in reversed(pages[:-1])]


def test_rows_written_while_paging_do_not_shift_the_pages(auditor, thirty_records, in_tenant, tenant_a):
    first = auditor.get("/api/v1/audit/records/", {"action": "test.paged", "limit": 10}).json()
    in_tenant(tenant_a)
    with transaction.atomic():
        record(actor=None, action="test.paged", data={"n": "late"})
    connection.set_schema_to_public()
    second = auditor.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == sorted(thirty_records, reverse=True)[10:20]


def test_an_offset_still_works_and_links_onwards_by_cursor(auditor, thirty_records):
    page = auditor.get("/api/v1/audit/records/", {"action": "test.paged", "limit": 5, "offset": 5}).json()
    assert [row["id"] for row in page["results"]] == sorted(thirty_records, reverse=True)[5:10]
    following = auditor.get(page["next"]).json()
    assert [row["id"] for row in following["results"]] == sorted(thirty_records, reverse=True)[10:15]


def test_decisions_page_by_time_then_id_even_when_times_tie(in_tenant_a, tenant_a, make_member):
    moment = timezone.now() - timedelta(hours=1)
    rows = [
        Record(
            created_at=moment + timedelta(seconds=n // 3),
            actor_kind=ActorKind.SYSTEM,
            action=DECISION,
            data={"bundle": "paged", "status": "allowed"},
            record_hash="0" * 64,
        )
        for n in range(12)
    ]
    with transaction.atomic():
        created = Record.objects.bulk_create(rows)
    connection.set_schema_to_public()
    viewer = token_client(tenant_a, make_member(tenant_a, "pager-viewer", ["operator"]))
    ids, pages = walk(viewer, "/api/v1/decisions/", {"bundle": "paged", "limit": 5})
    expected = [row.pk for row in sorted(created, key=lambda row: (row.created_at, row.pk), reverse=True)]
    assert ids == expected
    assert len(pages) == 3


def test_a_deep_cursor_page_runs_no_count_of_the_whole_list_and_no_offset(auditor, thirty_records):
    deep = base64.urlsafe_b64encode(json.dumps(["n", [thirty_records[3]]]).encode()).decode().rstrip("=")
    with CaptureQueriesContext(connection) as queries:
        response = auditor.get("/api/v1/audit/records/", {"cursor": deep, "limit": 2})
    assert [row["id"] for row in response.json()["results"]] == [thirty_records[2], thirty_records[1]]
    statements = [query["sql"] for query in queries.captured_queries if "audit_record" in query["sql"]]
    assert not any("OFFSET" in sql for sql in statements), statements
    counts = [sql for sql in statements if "COUNT(" in sql]
    assert counts and all(f"LIMIT {COUNT_EXACT_LIMIT + 1}" in sql for sql in counts), counts


def test_a_count_past_the_exact_limit_is_the_planners_estimate_and_says_so(in_tenant_a, monkeypatch):
    with transaction.atomic():
        for n in range(6):
            record(actor=None, action="test.counted", data={"n": n})
    monkeypatch.setattr("core.pagination.COUNT_EXACT_LIMIT", 3)
    count, exact = bounded_count(Record.objects.filter(action="test.counted"))
    assert exact is False and count >= 4
    monkeypatch.setattr("core.pagination.COUNT_EXACT_LIMIT", 100)
    assert bounded_count(Record.objects.filter(action="test.counted")) == (6, True)


def test_only_orders_ending_with_the_primary_key_page_by_cursor(db):
    assert Keyset.of(Record.objects.order_by("-id")) == Keyset(fields=("id",), descending=True)
    assert Keyset.of(Record.objects.order_by("-created_at", "-id")).fields == ("created_at", "id")
    assert Keyset.of(Record.objects.order_by("created_at")) is None
    assert Keyset.of(Record.objects.order_by("-created_at", "id")) is None
    assert Keyset.of(Record.objects.all()) is None
