"""The audit log in the API and the console: browse, verify, history of changes."""

import html
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.exceptions import UNKNOWN_HISTORY_MODEL
from audit.models import Record, VerificationRun
from audit.services import record
from audit.tasks import verify_log
from audit.verification import (
    verification_run_execute,
    verification_run_request,
    verification_run_step,
    verification_runs_redispatch_stale,
)
from tenancy.roles import Role
from tests.conftest import session_client, token_client


@pytest.fixture
def auditor(tenant_a, make_member):
    return make_member(tenant_a, "the-auditor", [Role.AUDITOR])


@pytest.fixture
def recorded(in_tenant_a):
    with transaction.atomic():
        entries = [
            record(actor=None, action="test.step", target=("thing", str(n)), data={"n": n}) for n in range(3)
        ]
    connection.set_schema_to_public()
    return entries


def test_a_member_without_view_audit_is_refused_the_records(tenant_a, make_member):
    author = make_member(tenant_a, "just-author", [Role.AUTHOR])
    response = token_client(tenant_a, author).get("/api/v1/audit/records/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_role"
    assert session_client(tenant_a, author).get("/audit/").status_code == 403


def test_an_auditor_lists_records_newest_first_filtered_by_action(tenant_a, auditor, recorded):
    body = token_client(tenant_a, auditor).get("/api/v1/audit/records/?action=test.step").json()
    assert body["count"] == 3
    assert [row["target_id"] for row in body["results"]] == ["2", "1", "0"]
    assert all(len(row["record_hash"]) == 64 for row in body["results"])


def test_a_malformed_time_filter_is_a_precise_400(tenant_a, auditor):
    response = token_client(tenant_a, auditor).get("/api/v1/audit/records/?since=yesterday")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_time"


def tamper(tenant, record_id: int) -> None:
    """Rewrite one record as a database owner would, its trigger turned off."""
    connection.set_tenant(tenant)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_record DISABLE TRIGGER audit_record_refuse_update_delete")
        cursor.execute("UPDATE audit_record SET actor_name = 'mallory' WHERE id = %s", [record_id])
        cursor.execute("ALTER TABLE audit_record ENABLE TRIGGER audit_record_refuse_update_delete")
    connection.set_schema_to_public()


def run_queued(tenant, run_id: int) -> None:
    """Do what the worker does with a queued run (the test's transaction never commits to send it)."""
    connection.set_tenant(tenant)
    verification_run_execute(run_id=run_id)
    connection.set_schema_to_public()


def test_verification_runs_on_request_and_reports_every_tampered_record(tenant_a, auditor, recorded):
    client = token_client(tenant_a, auditor)
    assert client.get("/api/v1/audit/verify/").json()["status"] == "never_run"
    started = client.post("/api/v1/audit/verify/")
    assert started.status_code == 202
    assert (started.json()["status"], started.json()["intact"]) == ("queued", None)
    again = client.post("/api/v1/audit/verify/")
    assert (again.status_code, again.json()["run"]) == (200, started.json()["run"])
    run_queued(tenant_a, started.json()["run"])
    report = client.get("/api/v1/audit/verify/").json()
    assert (report["status"], report["intact"], report["bad_records"]) == ("finished", True, 0)
    assert report["checked"] >= 3 and report["requested_by"] == "the-auditor"
    tamper(tenant_a, recorded[1].pk)
    tamper(tenant_a, recorded[2].pk)
    second = client.post("/api/v1/audit/verify/").json()
    run_queued(tenant_a, second["run"])
    report = client.get("/api/v1/audit/verify/").json()
    assert (report["intact"], report["first_bad_record"], report["bad_records"]) == (False, recorded[1].pk, 2)
    assert report["findings"] == [
        {"kind": "record_modified", "record": recorded[1].pk},
        {"kind": "record_modified", "record": recorded[2].pk},
    ]
    assert client.get(f"/api/v1/audit/records/{recorded[1].pk}/").json()["intact"] is False
    page = session_client(tenant_a, auditor).get("/audit/verify/").content.decode()
    assert f"#{recorded[1].pk}" in page and f"#{recorded[2].pk}" in page
    assert 'data-testid="verify-start"' in page


def test_the_console_starts_a_run_by_post_with_csrf_and_shows_its_progress(tenant_a, auditor, recorded):
    browser = session_client(tenant_a, auditor, enforce_csrf=True)
    assert browser.post("/audit/verify/").status_code == 403  # no CSRF token
    page = browser.get("/audit/verify/")
    token = page.cookies["csrftoken"].value
    answer = browser.post("/audit/verify/", {"csrfmiddlewaretoken": token})
    assert (answer.status_code, answer["Location"]) == (302, "/audit/verify/")
    waiting = browser.get("/audit/verify/").content.decode()
    assert "is queued" in waiting and 'http-equiv="refresh"' in waiting


def test_a_run_whose_worker_stopped_goes_on_from_where_it_was(tenant_a, auditor, in_tenant, monkeypatch):
    in_tenant(tenant_a)
    with transaction.atomic():
        for n in range(7):
            record(actor=None, action="test.step", target=("thing", str(n)), data={"n": n})
    run, _ = verification_run_request(actor=None)
    first = verification_run_step(run_id=run.pk, rows=3)
    assert (first.status, first.checked) == ("running", 3)
    VerificationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    sent = []
    monkeypatch.setattr(verify_log, "delay", lambda **kwargs: sent.append(kwargs))
    assert verification_runs_redispatch_stale() == [run.pk]
    assert sent == [{"run_id": run.pk}]
    finished = verification_run_execute(run_id=sent[0]["run_id"], rows=3)
    assert finished.status == "finished"
    assert finished.checked == Record.objects.filter(id__lte=finished.upto_id).count()  # each once
    assert verification_run_step(run_id=run.pk) is None  # a late duplicate delivery does nothing


def test_the_history_api_lists_changes_of_a_tracked_model_and_refuses_others(tenant_a, auditor, make_member):
    admin = make_member(tenant_a, "env-admin", [Role.ADMIN])
    token_client(tenant_a, admin).patch(
        "/api/v1/environments/current/", {"required_approvals": 2}, format="json"
    )
    client = token_client(tenant_a, auditor)
    changes = client.get("/api/v1/audit/history/?model=promotions.environment").json()
    latest = changes[0]
    assert latest["type"] == "changed"
    assert latest["user"] == "env-admin"
    assert {"field": "required_approvals", "old": "1", "new": "2"} in latest["changes"]
    refused = client.get("/api/v1/audit/history/?model=auth.user")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith(UNKNOWN_HISTORY_MODEL.split("{")[0])


def test_the_console_pages_render_records_and_history_for_an_auditor(tenant_a, auditor, recorded):
    client = session_client(tenant_a, auditor)
    listing = client.get("/audit/?action=test.step").content.decode()
    assert "test.step" in listing
    assert "3 records" in listing
    detail = client.get(f"/audit/records/{recorded[0].pk}/").content.decode()
    assert 'data-testid="record-intact"' in detail
    assert client.get("/audit/history/").status_code == 200
    assert client.get("/audit/history/promotions.environment/").status_code == 200
    assert client.get("/audit/history/auth.user/").status_code == 404


def test_the_console_answers_400_for_an_impossible_time_and_404_for_a_non_numeric_object(tenant_a, auditor):
    client = session_client(tenant_a, auditor)
    response = client.get("/audit/?since=2024-13-45T00:00")
    assert response.status_code == 400
    assert "since must be an ISO 8601 date or date-time" in response.content.decode()
    assert client.get("/audit/?until=yesterday").status_code == 400
    assert client.get("/audit/history/promotions.environment/?object_id=abc").status_code == 404


def test_the_console_records_page_by_cursor_and_refuses_a_forged_one(tenant_a, auditor, in_tenant_a):
    with transaction.atomic():
        ids = [record(actor=None, action="test.paged", data={"n": n}).pk for n in range(55)]
    connection.set_schema_to_public()
    client = session_client(tenant_a, auditor)
    first = client.get("/audit/", {"action": "test.paged"}).content.decode()
    assert "55 records" in first
    older = html.unescape(re.search(r'href="\?([^"]*cursor=[^"]*)">Older', first).group(1))
    second = client.get(f"/audit/?{older}").content.decode()
    assert {int(found) for found in re.findall(r'href="/audit/records/(\d+)/"', second)} == set(
        sorted(ids)[:5]
    )
    forged = client.get("/audit/", {"cursor": "bm90LWEtY3Vyc29y"})
    assert forged.status_code == 400
    assert "cursor is not one this list gave out" in forged.content.decode()
