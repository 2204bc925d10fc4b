"""The demo seeder: default environments, approvers, gates queued (never run inline), live versions."""

import io

import pytest

from audit.models import Record
from promotions.demo import seed_promotions
from promotions.models import Deployment, GateRun, PromotionRequest
from promotions.selectors import (
    access_environment,
    environment_approvers,
    live_version,
    pending_approvals_for,
)
from promotions.services.gate_execution import gate_run_execute
from tests.bundles.bundle_factories import CLAIMS, SUPPORT, push


@pytest.fixture
def users(in_tenant_a, make_member):
    roles = {"author": ["author"], "reviewer": ["reviewer"], "operator": ["operator"], "admin": ["admin"]}
    return {name: make_member(in_tenant_a, f"demo-{name}", role) for name, role in roles.items()}


def run_queued_gates() -> None:
    """Do what the worker does with the gate runs the seeder queued."""
    for run_id in GateRun.objects.filter(status="queued").values_list("pk", flat=True):
        gate_run_execute(gate_run_id=run_id)


def seed(tenant, users) -> bool:
    return seed_promotions(tenant=tenant, users=users, stdout=io.StringIO())


def test_the_seeder_queues_the_gates_for_the_worker_as_the_system_and_runs_none(in_tenant_a, users):
    push(users["author"], name=CLAIMS)
    push(users["author"], name=SUPPORT)
    assert seed(in_tenant_a, users) is False
    assert set(GateRun.objects.values_list("status", "requested_by")) == {("queued", None)}
    assert not Deployment.objects.exists()
    assert {record.actor_kind for record in Record.objects.filter(action="gate.started")} == {"system"}


def test_the_seeder_makes_versions_live_and_leaves_one_approval_waiting(in_tenant_a, users):
    claims = push(users["author"], name=CLAIMS).version
    support = push(users["author"], name=SUPPORT).version
    seed(in_tenant_a, users)
    run_queued_gates()
    assert seed(in_tenant_a, users) is True
    staging, current = access_environment(None, "staging"), access_environment(None, "current")
    assert users["reviewer"] in environment_approvers(current)
    assert users["reviewer"] in environment_approvers(staging)
    assert set(GateRun.objects.values_list("status", flat=True)) == {"passed"}
    assert live_version(claims.bundle, staging) == claims
    assert live_version(claims.bundle, current) == claims
    assert live_version(support.bundle, staging) == support
    assert live_version(support.bundle, current) is None
    waiting = pending_approvals_for(users["reviewer"])
    assert [(item.version, item.environment.name) for item in waiting] == [(support, "current")]
    approved = Record.objects.get(action="promotion.approved")
    assert approved.actor_name == users["reviewer"].username


def test_seeding_twice_changes_nothing(in_tenant_a, users):
    push(users["author"], name=CLAIMS)
    push(users["author"], name=SUPPORT)
    seed(in_tenant_a, users)
    run_queued_gates()
    seed(in_tenant_a, users)
    counts = (
        GateRun.objects.count(),
        PromotionRequest.objects.count(),
        Deployment.objects.count(),
        Record.objects.count(),
    )
    seed(in_tenant_a, users)
    assert (
        GateRun.objects.count(),
        PromotionRequest.objects.count(),
        Deployment.objects.count(),
        Record.objects.count(),
    ) == counts


def test_after_the_bundle_seeder_every_claims_release_went_live_in_order_so_rollback_has_a_target(
    in_tenant_a, users
):
    from bundles.demo import seed_bundles
    from promotions.selectors import rollback_candidates

    seed_bundles(tenant=in_tenant_a, users=users, stdout=io.StringIO())
    seed(in_tenant_a, users)
    run_queued_gates()
    seed(in_tenant_a, users)
    current = access_environment(None, "current")
    history = Deployment.objects.filter(bundle__name=CLAIMS, environment=current).order_by("id")
    assert [deployment.version.version for deployment in history] == ["1.1.0", "1.2.0"]
    bundle = history[0].bundle
    assert [version.version for version in rollback_candidates(bundle, current)] == ["1.1.0"]


def test_the_seeder_grants_no_approval_an_admin_revoked(in_tenant_a, users):
    from promotions.services.environments import environment_approval_grant

    push(users["author"], name=CLAIMS)
    seed(in_tenant_a, users)
    staging = access_environment(None, "staging")
    environment_approval_grant(
        actor=users["admin"], environment=staging, user=users["reviewer"], granted=False
    )
    environment_approval_grant(
        actor=users["admin"], environment=staging, user=users["operator"], granted=True
    )
    seed(in_tenant_a, users)
    assert environment_approvers(staging) == [users["operator"]]
