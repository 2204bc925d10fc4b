"""A verification run asked for over the API is carried out by a real Celery worker."""

import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from audit.services import record
from tenancy.services import membership_set
from tests.conftest import run_committed, token_client

pytestmark = pytest.mark.worker


def test_the_worker_verifies_the_whole_log_of_a_committed_tenant(db, celery_worker_process, committed_tenant):
    username = f"verify-auditor-{uuid.uuid4().hex[:6]}"

    def set_up():
        with transaction.atomic():
            for n in range(25):
                record(actor=None, action="test.worker", data={"n": n})
        user = get_user_model().objects.create_user(username=username, password="pw-for-tests-1")
        membership_set(actor=None, tenant=committed_tenant, user=user, roles=["auditor"])
        return user

    auditor = run_committed(set_up, tenant=committed_tenant)
    client = run_committed(token_client, committed_tenant, auditor)
    # Through a connection of its own, so the request commits and its task is sent (the test's doesn't).
    started = run_committed(client.post, "/api/v1/audit/verify/")
    assert started.status_code in (200, 202)
    deadline = time.monotonic() + 60
    report = started.json()
    while report["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.3)
        report = run_committed(client.get, "/api/v1/audit/verify/").json()
    assert report["status"] == "finished", report
    assert report["intact"] is True
    assert report["checked"] >= 25
