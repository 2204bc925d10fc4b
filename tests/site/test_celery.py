"""Tasks run on a real worker in the schema they were sent from; tenant tasks refuse the public schema."""

import pytest
from celery.exceptions import TaskError
from django.db import connection

from audit.tasks import verify_records

pytestmark = pytest.mark.worker

RESULT_TIMEOUT = 30


def test_tasks_sent_from_two_tenants_run_each_in_its_own_schema(
    celery_worker_process, in_tenant, tenant_a, tenant_b
):
    in_tenant(tenant_a)
    from_a = verify_records.apply_async()
    in_tenant(tenant_b)
    from_b = verify_records.apply_async()
    result_a = from_a.get(timeout=RESULT_TIMEOUT)
    result_b = from_b.get(timeout=RESULT_TIMEOUT)
    assert result_a["schema"] == "alpha"
    assert result_b["schema"] == "beta"
    assert result_a["first_tampered"] is None
    assert result_a["records"] >= 1


def test_a_tenant_task_sent_from_public_refuses_to_run(celery_worker_process, db):
    connection.set_schema_to_public()
    result = verify_records.apply_async()
    with pytest.raises(Exception) as raised:
        result.get(timeout=RESULT_TIMEOUT)
    assert "public schema" in str(raised.value)
    assert not isinstance(raised.value, TaskError)


def test_work_queued_on_commit_goes_to_the_tenant_current_when_it_was_queued(
    in_tenant, tenant_a, monkeypatch
):
    from django.db import transaction

    from core.tasks import enqueue_on_commit

    sent = []
    monkeypatch.setattr(verify_records, "apply_async", lambda **options: sent.append(options))
    in_tenant(tenant_a)
    with transaction.atomic():
        enqueue_on_commit(verify_records)
        connection.set_schema_to_public()  # the caller leaves the tenant before the commit
    # pytest-django's outer transaction never commits: run the callbacks the commit would run.
    for _, callback, _ in connection.run_on_commit:
        callback()
    assert sent == [{"kwargs": {}, "headers": {"_schema_name": "alpha"}}]
