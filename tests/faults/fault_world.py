"""Committed set-ups and read-backs of the fault tests (run through tests.conftest.run_committed)."""

import time
import uuid

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from guardian.shortcuts import assign_perm

from audit.models import Record
from bundles.models import BundleVersion
from promotions.models import Approval, Deployment, GateRun, PromotionRequest
from promotions.selectors import access_environment
from promotions.services.environments import environments_ensure_defaults
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.models import Tenant
from tenancy.selectors import current_tenant
from tenancy.services import membership_set
from tests.bundles.bundle_factories import example_files
from tests.conftest import run_committed

EXTRA_CASE = """
  - name: repeat-{index}
    input: {{claim_id: C1, amount: 1200, description: rear-ended at a stop light}}
    model_output: '{{"queue": "auto", "reason": "collision"}}'
    expect: {{status: allowed, output: {{queue: auto}}}}
"""


def fault_files(name: str, extra_cases: int) -> dict[str, str]:
    """Return claims-triage as bundle `name`, its golden suite grown by `extra_cases` passing cases."""
    files = example_files()
    suite = "suites/golden.yaml"
    return {
        **files,
        "bundle.yaml": files["bundle.yaml"].replace("name: claims-triage", f"name: {name}", 1),
        suite: files[suite].rstrip("\n")
        + "\n"
        + "".join(EXTRA_CASE.format(index=i) for i in range(extra_cases)),
    }


def set_up_team() -> dict[str, int]:
    """Create an author and a reviewer (approver of current) in the current tenant; return their ids."""
    tenant = Tenant.objects.get(schema_name=current_tenant().schema_name)
    environments_ensure_defaults()
    team = {}
    for role in ("author", "reviewer"):
        user = get_user_model().objects.create_user(username=f"fault-{role}-{uuid.uuid4().hex[:6]}")
        membership_set(actor=None, tenant=tenant, user=user, roles=[role])
        team[role] = user.pk
    assign_perm(
        "approve_promotion",
        get_user_model().objects.get(pk=team["reviewer"]),
        access_environment(None, "current"),
    )
    return team


def push(author_id: int, name: str, extra_cases: int = 0) -> int:
    from bundles.services import bundle_version_push

    author = get_user_model().objects.get(pk=author_id)
    files = fault_files(name, extra_cases)
    with transaction.atomic():
        return bundle_version_push(actor=author, name=name, files=files, can_create=True).version.pk


def start_gates(author_id: int, version_id: int) -> int:
    author = get_user_model().objects.get(pk=author_id)
    return gate_run_start(actor=author, version=BundleVersion.objects.get(pk=version_id)).pk


def request(author_id: int, version_id: int, environment: str) -> int:
    return promotion_request_create(
        actor=get_user_model().objects.get(pk=author_id),
        version=BundleVersion.objects.select_related("bundle").get(pk=version_id),
        environment=access_environment(None, environment),
        justification="Fault test.",
    ).pk


def approve(reviewer_id: int, request_id: int, pids: list[int]) -> None:
    """Approve the request, first telling the caller this connection's backend PID."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    promotion_approve(
        actor=get_user_model().objects.get(pk=reviewer_id),
        request=PromotionRequest.objects.select_related("environment").get(pk=request_id),
        comment="Fault test approval.",
    )


def run_state(run_id: int) -> dict:
    run = GateRun.objects.get(pk=run_id)
    records = Record.objects.filter(target_id=str(run_id), target_type__icontains="gate")
    return {
        "status": run.status,
        "attempts": run.attempts,
        "finished_records": records.filter(action="gate.finished").count(),
        "redispatched_records": records.filter(action="gate.redispatched").count(),
    }


def request_state(request_id: int) -> dict:
    found = PromotionRequest.objects.select_related("version__bundle").get(pk=request_id)
    deployments = Deployment.objects.filter(request=found)
    return {
        "status": found.status,
        "approvals": Approval.objects.filter(request=found).count(),
        "approved_records": Record.objects.filter(
            action="promotion.approved", target_id=str(request_id)
        ).count(),
        "deployments": deployments.count(),
        "deployment_records": Record.objects.filter(
            action="deployment.created",
            target_id__in=[str(pk) for pk in deployments.values_list("pk", flat=True)],
        ).count(),
    }


def pointer_chain_intact(bundle_name: str) -> bool:
    """Return whether, per environment, the bundle's deployments form one unbroken chain of `previous`."""
    deployments = Deployment.objects.filter(bundle__name=bundle_name).order_by("id")
    by_environment: dict[int, list[Deployment]] = {}
    for deployment in deployments:
        by_environment.setdefault(deployment.environment_id, []).append(deployment)
    for chain in by_environment.values():
        expected_previous = None
        for deployment in chain:
            if deployment.previous_id != expected_previous:
                return False
            expected_previous = deployment.pk
    return True


def wait_for(read, tenant, done, timeout: float, what: str):
    """Poll `read` (committed) until `done(state)`; return the state, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = run_committed(read, tenant=tenant)
        if done(state):
            return state
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout} s; last state: {state}")


def terminate_backends(application_name: str) -> int:
    """Terminate the backends of this test database with `application_name`; return how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def waiting_on_a_lock(*, application_name: str | None = None, pid: int | None = None) -> bool:
    """Return whether a backend of this test database (by name or PID) waits on a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND (application_name = %s OR pid = %s)",
            [application_name or "", pid or 0],
        )
        return cursor.fetchone()[0] > 0


class DeploymentTableLock:
    """Hold an EXCLUSIVE lock on a tenant's deployment table from a connection of its own (writes block)."""

    def __init__(self, database_url: str, schema: str):
        self.connection = psycopg.connect(database_url, application_name="contractor-fault-locker")
        self.connection.execute(f'LOCK TABLE "{schema}".promotions_deployment IN EXCLUSIVE MODE')

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def latest_run_of(version_id: int) -> int:
    """Return the id of the latest gate run of the version's digest."""
    digest = BundleVersion.objects.get(pk=version_id).digest
    return GateRun.objects.filter(digest=digest).order_by("-id").values_list("pk", flat=True).first()


def terminate_pid(pid: int) -> bool:
    """Terminate backend `pid` if it belongs to this test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid = %s",
            [pid],
        )
        row = cursor.fetchone()
        return bool(row and row[0])
