"""Promotions and rollbacks through the real promotion services reach the live runtime within one second."""

import time
import uuid

import pytest
from django.contrib.auth import get_user_model

from bundles.models import Bundle, BundleVersion
from promotions.selectors import access_environment
from promotions.services.deployments import deployment_rollback
from tests.bundles.bundle_factories import with_description, with_version
from tests.conftest import run_committed
from tests.runtime.runtime_world import LAB, lab_files, pass_gates, promote, push

pytestmark = pytest.mark.django_db

# Allowed by 1.2.0 (limit 100k), denied by 1.3.0 (limit 50k).
MID_CLAIM = {"claim_id": "C40", "amount": 60000, "description": "rear-ended on the highway"}
PROPAGATION_SECONDS = 1.0


def rollback(bundle: str, to_version: str, operator_id: int) -> None:
    """Point `current` back to `to_version` of `bundle`, as the operator."""
    operator = get_user_model().objects.get(pk=operator_id)
    deployment_rollback(
        actor=operator,
        bundle=Bundle.objects.get(name=bundle),
        environment=access_environment(None, "current"),
        to_version=to_version,
        justification="runtime test",
    )


def push_lab(version: str, author_id: int) -> int:
    """Push claims-lab `version` and pass its gates; return the version's id."""
    author = get_user_model().objects.get(pk=author_id)
    stored = push(author, LAB, with_description(with_version(lab_files(), version), f"lab {version}"))
    pass_gates(author, stored)
    return stored.pk


def promote_lab(version_id: int, author_id: int, reviewer_id: int) -> None:
    """Promote a claims-lab version through staging to current."""
    users = get_user_model().objects
    author, reviewer = users.get(pk=author_id), users.get(pk=reviewer_id)
    stored = BundleVersion.objects.select_related("bundle").get(pk=version_id)
    promote(stored, "staging", author=author, reviewer=reviewer)
    promote(stored, "current", author=author, reviewer=reviewer)


def test_a_rollback_is_in_effect_within_one_second_and_old_decisions_stay_verifiable(client, world):
    idempotency_key = f"before-rollback-{uuid.uuid4()}"
    before = client.execute(
        "claims-triage", "triage", MID_CLAIM, headers={"Idempotency-Key": idempotency_key}
    )
    assert (before.json()["status"], before.json()["bundle"]["version"]) == ("denied", "1.3.0")
    operator_id = world.users["operator"].pk
    run_committed(rollback, "claims-triage", "1.2.0", operator_id, tenant=world.tenant)
    try:
        time.sleep(PROPAGATION_SECONDS)
        after = [client.execute("claims-triage", "triage", MID_CLAIM).json() for _ in range(4)]
        assert {(body["status"], body["bundle"]["version"]) for body in after} == {("allowed", "1.2.0")}
        replayed = client.execute(
            "claims-triage", "triage", MID_CLAIM, headers={"Idempotency-Key": idempotency_key}
        )
        assert replayed.json() == before.json()
        verified = client.post(
            f"/v1/decisions/{before.json()['decision_id']}/verify", json={"input": MID_CLAIM}
        )
        assert verified.status_code == 200, verified.text
        assert (verified.json()["reproduced"], verified.json()["bundle"]["version"]) == (True, "1.3.0")
    finally:
        run_committed(rollback, "claims-triage", "1.3.0", operator_id, tenant=world.tenant)
        time.sleep(PROPAGATION_SECONDS)
    restored = client.execute("claims-triage", "triage", MID_CLAIM).json()
    assert (restored["status"], restored["bundle"]["version"]) == ("denied", "1.3.0")


def test_a_pushed_version_is_served_only_once_promoted_and_then_within_one_second(client, world):
    assert client.execute(LAB, "triage", MID_CLAIM).json()["bundle"]["version"] == "1.0.0"
    users = world.users
    version_id = run_committed(push_lab, "1.1.0", users["author"].pk, tenant=world.tenant)
    time.sleep(PROPAGATION_SECONDS)
    assert client.execute(LAB, "triage", MID_CLAIM).json()["bundle"]["version"] == "1.0.0"
    run_committed(promote_lab, version_id, users["author"].pk, users["reviewer"].pk, tenant=world.tenant)
    try:
        time.sleep(PROPAGATION_SECONDS)
        versions = {client.execute(LAB, "triage", MID_CLAIM).json()["bundle"]["version"] for _ in range(4)}
        assert versions == {"1.1.0"}
    finally:
        run_committed(rollback, LAB, "1.0.0", users["operator"].pk, tenant=world.tenant)
        time.sleep(PROPAGATION_SECONDS)
