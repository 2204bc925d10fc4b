"""Gate runs on the real Celery worker, against committed data; the periodic watch across tenants."""

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from bundles.models import BundleVersion
from promotions.models import GateRun, GateStatus, PromotionRequest
from promotions.selectors import access_environment, live_version
from promotions.services.environments import environments_ensure_defaults
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import promotion_request_create
from promotions.tasks import watch_gate_runs
from tenancy.models import Tenant
from tenancy.selectors import current_tenant
from tenancy.services import membership_set
from tests.bundles.bundle_factories import example_files
from tests.conftest import run_committed

pytestmark = pytest.mark.worker

TIMEOUT = 45


def renamed(name: str) -> dict[str, str]:
    """Return claims-triage's files as bundle `name` (a committed tenant is shared: names must not clash)."""
    files = example_files()
    return {**files, "bundle.yaml": files["bundle.yaml"].replace("name: claims-triage", f"name: {name}", 1)}


def set_up_author(username: str):
    user = get_user_model().objects.create_user(username=username, password="pw-for-tests-1")
    membership_set(
        actor=None,
        tenant=Tenant.objects.get(schema_name=current_tenant().schema_name),
        user=user,
        roles=["author"],
    )
    environments_ensure_defaults()
    return user.pk


def push_committed(author_id: int, name: str) -> int:
    from bundles.services import bundle_version_push

    author = get_user_model().objects.get(pk=author_id)
    with transaction.atomic():
        return bundle_version_push(actor=author, name=name, files=renamed(name), can_create=True).version.pk


def start_committed(author_id: int, version_id: int) -> int:
    author = get_user_model().objects.get(pk=author_id)
    return gate_run_start(actor=author, version=BundleVersion.objects.get(pk=version_id)).pk


def request_committed(author_id: int, version_id: int) -> int:
    author = get_user_model().objects.get(pk=author_id)
    created = promotion_request_create(
        actor=author,
        version=BundleVersion.objects.select_related("bundle").get(pk=version_id),
        environment=access_environment(None, "staging"),
        justification="Worker test.",
    )
    return created.pk


def run_state(run_id: int) -> dict:
    run = GateRun.objects.get(pk=run_id)
    return {"status": run.status, "attempts": run.attempts, "pass_rate": run.pass_rate, "report": run.report}


def wait_for_finish(run_id: int, tenant) -> dict:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        state = run_committed(run_state, run_id, tenant=tenant)
        if state["status"] in ("passed", "failed", "error"):
            return state
        time.sleep(0.2)
    pytest.fail(f"gate run {run_id} did not finish within {TIMEOUT} s")


@pytest.fixture
def author_id(committed_tenant, db):
    return run_committed(set_up_author, f"gates-{uuid.uuid4().hex[:8]}", tenant=committed_tenant)


def test_the_worker_runs_the_gates_of_a_committed_version(celery_worker_process, committed_tenant, author_id):
    name = f"gates-{uuid.uuid4().hex[:8]}"
    version_id = run_committed(push_committed, author_id, name, tenant=committed_tenant)
    run_id = run_committed(start_committed, author_id, version_id, tenant=committed_tenant)
    state = wait_for_finish(run_id, committed_tenant)
    assert (state["status"], state["attempts"], state["pass_rate"]) == ("passed", 1, 1.0)
    assert state["report"]["totals"]["cases"] == state["report"]["totals"]["cases_passed"] > 0
    assert run_committed(start_committed, author_id, version_id, tenant=committed_tenant) == run_id


def request_state(request_id: int) -> tuple[str, str | None]:
    found = PromotionRequest.objects.select_related("version__bundle", "environment").get(pk=request_id)
    live = live_version(found.version.bundle, found.environment)
    return found.status, live.version if live else None


def test_a_request_waiting_for_gates_is_promoted_when_the_worker_finishes_them(
    celery_worker_process, committed_tenant, author_id
):
    name = f"waits-{uuid.uuid4().hex[:8]}"
    version_id = run_committed(push_committed, author_id, name, tenant=committed_tenant)
    request_id = run_committed(request_committed, author_id, version_id, tenant=committed_tenant)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        state = run_committed(request_state, request_id, tenant=committed_tenant)
        if state[0] != "pending":
            break
        time.sleep(0.2)
    assert state == ("promoted", "1.2.0")


def stuck_run(author_id: int, name: str) -> int:
    version_id = push_committed(author_id, name)
    run = GateRun.objects.create(
        version_id=version_id,
        digest=BundleVersion.objects.get(pk=version_id).digest,
        status=GateStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=3),
        heartbeat_at=timezone.now() - timedelta(hours=3),
        attempts=1,
    )
    return run.pk


def test_the_beat_watch_visits_every_tenant_and_re_dispatches_runs_whose_worker_was_lost(
    celery_worker_process, committed_tenant, author_id
):
    run_id = run_committed(stuck_run, author_id, f"stuck-{uuid.uuid4().hex[:8]}", tenant=committed_tenant)
    connection.set_schema_to_public()
    watched = watch_gate_runs.apply_async().get(timeout=TIMEOUT)
    assert run_id in watched[committed_tenant.schema_name]["redispatched"]
    state = wait_for_finish(run_id, committed_tenant)
    assert (state["status"], state["attempts"]) == ("passed", 2)
