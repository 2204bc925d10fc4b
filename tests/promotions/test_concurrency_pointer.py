"""Concurrent decisions on one environment leave one consistent pointer history and exactly one live version.

Eight threads, each with its own database connection, act on committed data at the same instant: four
reviewers approve the same request (two approvals needed) while four operators roll the environment back.
"""

import itertools
import threading
import uuid

from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from guardian.shortcuts import assign_perm

from audit.models import Record
from bundles.models import Bundle
from bundles.services import bundle_version_push
from core.errors import DomainError
from promotions.models import Deployment, DeploymentKind, Environment, PromotionRequest
from promotions.selectors import live_rows, live_version
from promotions.services.deployments import deployment_rollback
from promotions.services.gate_execution import gate_run_execute
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.models import Tenant
from tenancy.selectors import current_tenant
from tenancy.services import membership_set
from tests.bundles.bundle_factories import example_files, with_version
from tests.conftest import run_committed

REVIEWERS = 4
OPERATORS = 4


def renamed(name: str, version: str) -> dict[str, str]:
    files = with_version(example_files(), version)
    return {**files, "bundle.yaml": files["bundle.yaml"].replace("name: claims-triage", f"name: {name}", 1)}


def set_up(prefix: str) -> dict:
    """Commit: an environment needing two approvals, 1.2.0 then 1.3.0 live there, a request for 1.4.0."""
    tenant = Tenant.objects.get(schema_name=current_tenant().schema_name)

    def member(role: str, index: int = 0):
        user = get_user_model().objects.create_user(
            username=f"{prefix}-{role}-{index}", password="pw-for-tests-1"
        )
        membership_set(actor=None, tenant=tenant, user=user, roles=[role])
        return user

    author = member("author")
    reviewers = [member("reviewer", index) for index in range(REVIEWERS)]
    operators = [member("operator", index) for index in range(OPERATORS)]
    environment = Environment.objects.create(name=prefix, position=99, required_approvals=0)
    for reviewer in reviewers:
        assign_perm("approve_promotion", reviewer, environment)
    versions = []
    for label in ("1.2.0", "1.3.0", "1.4.0"):
        with transaction.atomic():
            version = bundle_version_push(
                actor=author, name=prefix, files=renamed(prefix, label), can_create=True
            ).version
        gate_run_execute(gate_run_id=gate_run_start(actor=author, version=version, enqueue=False).pk)
        versions.append(version)
    for version in versions[:2]:
        promotion_request_create(
            actor=author, version=version, environment=environment, justification="Setup."
        )
    Environment.objects.filter(pk=environment.pk).update(required_approvals=2)
    environment.refresh_from_db()
    pending = promotion_request_create(
        actor=author, version=versions[2], environment=environment, justification="The race."
    )
    assert pending.status == "pending"
    return {
        "environment": environment.pk,
        "bundle": versions[0].bundle_id,
        "request": pending.pk,
        "reviewers": [user.pk for user in reviewers],
        "operators": [user.pk for user in operators],
    }


def race(tenant, ids: dict) -> list[tuple[str, str]]:
    """Run every approval and rollback at once, each on its own connection; return (kind, outcome)s."""
    barrier = threading.Barrier(REVIEWERS + OPERATORS)
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def act(kind: str, user_id: int):
        try:
            connection.set_tenant(tenant)
            user = get_user_model().objects.get(pk=user_id)
            environment = Environment.objects.get(pk=ids["environment"])
            bundle = Bundle.objects.get(pk=ids["bundle"])
            request = PromotionRequest.objects.select_related("environment", "version__bundle").get(
                pk=ids["request"]
            )
            barrier.wait(timeout=30)
            try:
                if kind == "approve":
                    promotion_approve(actor=user, request=request)
                else:
                    deployment_rollback(
                        actor=user, bundle=bundle, environment=environment, justification="Race."
                    )
                outcome = "ok"
            except DomainError as error:
                outcome = error.code
            except Exception as error:  # an unexpected failure must show in the assertion, not vanish
                outcome = f"{type(error).__name__}: {error}"
            with lock:
                outcomes.append((kind, outcome))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=act, args=("approve", user_id)) for user_id in ids["reviewers"]]
    threads += [threading.Thread(target=act, args=("rollback", user_id)) for user_id in ids["operators"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def pointer_state(ids: dict) -> dict:
    rows = list(
        Deployment.objects.filter(bundle_id=ids["bundle"], environment_id=ids["environment"])
        .select_related("version")
        .order_by("id")
    )
    audits = {
        int(entry.target_id): entry.data
        for entry in Record.objects.filter(
            target_type="promotions.deployment", target_id__in=[str(r.pk) for r in rows]
        )
    }
    bundle, environment = Bundle.objects.get(pk=ids["bundle"]), Environment.objects.get(pk=ids["environment"])
    live = list(live_rows().filter(bundle=bundle, environment=environment))
    return {
        "rows": [(row.pk, row.previous_id, row.version.version, row.kind) for row in rows],
        "audits": audits,
        "live": [row.pk for row in live],
        "live_version": live_version(bundle, environment).version,
        "request": PromotionRequest.objects.get(pk=ids["request"]).status,
        "approvals": PromotionRequest.objects.get(pk=ids["request"]).approvals.count(),
    }


def expected_rollback_target(history: list[tuple]) -> str:
    """Return the version a default rollback picks after `history`: the last one other than the live one."""
    live = history[-1][2]
    return next(version for _, _, version, _ in reversed(history[:-1]) if version != live)


def test_simultaneous_approvals_and_rollbacks_leave_one_consistent_pointer(committed_tenant, db):
    prefix = f"race-{uuid.uuid4().hex[:8]}"
    ids = run_committed(set_up, prefix, tenant=committed_tenant)
    outcomes = race(committed_tenant, ids)

    approvals = sorted(outcome for kind, outcome in outcomes if kind == "approve")
    rollbacks = [outcome for kind, outcome in outcomes if kind == "rollback"]
    assert approvals == ["ok", "ok", "request_not_pending", "request_not_pending"]
    assert rollbacks == ["ok"] * OPERATORS

    state = run_committed(pointer_state, ids, tenant=committed_tenant)
    rows = state["rows"]
    assert len(rows) == 2 + 1 + OPERATORS
    assert state["request"] == "promoted"
    assert state["approvals"] == 2
    # A single chain: every row replaced exactly the row before it.
    assert rows[0][1] is None
    for before, row in itertools.pairwise(rows):
        assert row[1] == before[0], f"deployment {row[0]} replaced {row[1]}, but {before[0]} was live"
    # Every transition saw the pointer its predecessor left, and rolled back to what that pointer implied.
    for index, (pk, _, version, kind) in enumerate(rows[2:], start=2):
        audit = state["audits"][pk]
        if kind == DeploymentKind.ROLLBACK:
            assert audit["from_version"] == rows[index - 1][2]
            assert version == expected_rollback_target(rows[:index])
        else:
            assert (version, audit["previous_version"]) == ("1.4.0", rows[index - 1][2])
    assert [row[3] for row in rows].count(DeploymentKind.PROMOTE) == 3
    # Exactly one live version: the last row.
    assert state["live"] == [rows[-1][0]]
    assert state["live_version"] == rows[-1][2]
