"""Promotion requests: every rule of DESIGN §6 refused with its code, and the transitions they allow."""

import pytest
from guardian.shortcuts import assign_perm

from audit.models import Record
from promotions.exceptions import (
    ALREADY_DECIDED,
    ALREADY_LIVE,
    NOT_AN_APPROVER,
    NOT_IN_STAGING,
    NOT_LIVE_IN_REQUIRED_ENVIRONMENT,
    NOT_THE_REQUESTER,
    REQUEST_EXISTS,
    REQUEST_NOT_PENDING,
    SELF_APPROVAL,
    AlreadyDecided,
    AlreadyLive,
    CommentRequired,
    GatesNotPassed,
    JustificationRequired,
    NotAnApprover,
    NotInStaging,
    NotLiveInRequiredEnvironment,
    NotTheRequester,
    RequestExists,
    RequestNotPending,
    SelfApproval,
)
from promotions.models import Approval, Deployment, DeploymentKind, Environment, GateRun, OutboxEvent
from promotions.selectors import approval_eligibility, live_version, pending_approvals_for
from promotions.services.environments import environment_update
from promotions.services.promotion_requests import (
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request_create,
)
from tenancy.exceptions import MissingCapability
from tests.promotions.promotion_factories import environment, failing_files, push_version, run_gates


@pytest.fixture
def gated(team):
    """claims-triage 1.2.0 with passed gates."""
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    return version


def request(team, version, name: str, justification: str = "Ready for review."):
    return promotion_request_create(
        actor=team.author, version=version, environment=environment(name), justification=justification
    )


def in_staging(team, version):
    """Promote `version` to staging (no approvals needed there) and return the request."""
    created = request(team, version, "staging")
    assert created.status == "promoted"
    return created


def actions_for(target_type: str, target_id) -> list[str]:
    return list(
        Record.objects.filter(target_type=target_type, target_id=str(target_id))
        .order_by("id")
        .values_list("action", flat=True)
    )


# Creating a request ---------------------------------------------------------------------------------------


def test_a_member_without_request_promotion_cannot_request(team, gated):
    with pytest.raises(MissingCapability) as refused:
        promotion_request_create(
            actor=team.reviewer, version=gated, environment=environment("staging"), justification="Please."
        )
    assert refused.value.code == "missing_role"
    assert not gated.promotion_requests.exists()


def test_a_request_needs_a_justification(team, gated):
    with pytest.raises(JustificationRequired) as refused:
        request(team, gated, "staging", justification="   ")
    assert refused.value.code == "justification_required"


def test_a_version_whose_gates_failed_cannot_be_requested(team):
    version = push_version(team.author, "1.2.0", failing_files())
    run = run_gates(team.author, version)
    assert run.status == "failed"
    with pytest.raises(GatesNotPassed) as refused:
        request(team, version, "staging")
    assert refused.value.code == "gates_not_passed"
    assert refused.value.status == 409
    assert f"gate run {run.pk}" in refused.value.message


def test_current_refuses_a_version_never_live_in_staging(team, gated):
    with pytest.raises(NotInStaging) as refused:
        request(team, gated, "current")
    assert refused.value.code == "not_in_staging"
    assert refused.value.message == NOT_IN_STAGING.format(version=gated)


def test_another_required_environment_is_named_in_the_generic_code(team, gated):
    Environment.objects.create(
        name="eu-prod", position=30, required_approvals=0, requires_live_in=environment("current")
    )
    with pytest.raises(NotLiveInRequiredEnvironment) as refused:
        request(team, gated, "eu-prod")
    assert refused.value.code == "not_live_in_required_environment"
    assert refused.value.message == NOT_LIVE_IN_REQUIRED_ENVIRONMENT.format(version=gated, required="current")


def test_the_live_version_cannot_be_requested_again(team, gated):
    in_staging(team, gated)
    with pytest.raises(AlreadyLive) as refused:
        request(team, gated, "staging")
    assert refused.value.code == "already_live"
    assert refused.value.message == ALREADY_LIVE.format(version=gated, environment="staging")


def test_a_second_pending_request_for_the_same_bundle_and_environment_is_refused(team, gated):
    in_staging(team, gated)
    first = request(team, gated, "current")
    newer = push_version(team.author, "1.3.0")
    run_gates(team.author, newer)
    in_staging(team, newer)
    with pytest.raises(RequestExists) as refused:
        request(team, newer, "current")
    assert refused.value.code == "request_exists"
    assert refused.value.message == REQUEST_EXISTS.format(
        id=first.pk, bundle="claims-triage", environment="current"
    )


def test_staging_promotes_at_once_when_gates_passed(team, gated):
    created = request(team, gated, "staging")
    assert created.status == "promoted"
    deployment = Deployment.objects.get(request=created)
    assert deployment.kind == DeploymentKind.PROMOTE
    assert deployment.previous is None
    assert live_version(gated.bundle, environment("staging")) == gated
    assert actions_for("promotions.promotionrequest", created.pk) == ["promotion.requested"]
    assert actions_for("promotions.deployment", deployment.pk) == ["deployment.created"]
    assert set(OutboxEvent.objects.values_list("event", flat=True)) >= {
        "promotion.requested",
        "promotion.promoted",
    }


def test_a_request_for_a_version_never_gated_starts_the_gates_and_waits(team):
    version = push_version(team.author, "1.2.0")
    created = request(team, version, "staging")
    assert created.status == "pending"
    run = GateRun.objects.get(digest=version.digest)
    assert run.status == "queued"
    assert created.status_reason == f"Waiting for gate run {run.pk}."
    from promotions.services.gate_execution import gate_run_execute

    gate_run_execute(gate_run_id=run.pk)
    created.refresh_from_db()
    assert created.status == "promoted"
    assert live_version(version.bundle, environment("staging")) == version


def test_a_waiting_request_fails_with_the_reason_when_its_gates_fail(team):
    version = push_version(team.author, "1.2.0", failing_files())
    created = request(team, version, "staging")
    run = GateRun.objects.get(digest=version.digest)
    from promotions.services.gate_execution import gate_run_execute

    gate_run_execute(gate_run_id=run.pk)
    created.refresh_from_db()
    assert created.status == "failed"
    assert created.status_reason.startswith(f"Gate run {run.pk} failed: failing suite(s): golden")
    assert actions_for("promotions.promotionrequest", created.pk) == [
        "promotion.requested",
        "promotion.failed",
    ]
    assert not Deployment.objects.exists()


def test_an_environment_without_gates_promotes_a_version_never_gated(team, admin_of_team):
    environment_update(actor=team.admin, environment=environment("staging"), requires_gates=False)
    version = push_version(team.author, "1.2.0")
    created = request(team, version, "staging")
    assert created.status == "promoted"
    assert not GateRun.objects.exists()


@pytest.fixture
def admin_of_team(team):
    return team.admin


# Approving ------------------------------------------------------------------------------------------------


@pytest.fixture
def pending(team, gated):
    in_staging(team, gated)
    return request(team, gated, "current")


@pytest.fixture
def pending_needing_two(team, gated):
    """A request to current made while current needs two approvals (raising the rule applies at once)."""
    in_staging(team, gated)
    environment_update(actor=team.admin, environment=environment("current"), required_approvals=2)
    return request(team, gated, "current")


def test_a_member_without_approve_promotion_cannot_approve(team, pending):
    with pytest.raises(MissingCapability) as refused:
        promotion_approve(actor=team.operator, request=pending)
    assert refused.value.code == "missing_role"
    assert not Approval.objects.exists()


def test_the_requester_can_never_approve_even_as_admin_holding_the_grant(
    in_tenant_a, make_member, team, gated
):
    everything = make_member(in_tenant_a, "p-everything", ["author", "reviewer", "admin"])
    assign_perm("approve_promotion", everything, environment("current"))
    in_staging(team, gated)
    own = promotion_request_create(
        actor=everything, version=gated, environment=environment("current"), justification="Mine."
    )
    with pytest.raises(SelfApproval) as refused:
        promotion_approve(actor=everything, request=own)
    assert refused.value.code == "self_approval"
    assert refused.value.message == SELF_APPROVAL
    assert refused.value.status == 403
    assert approval_eligibility(everything, own) == (False, "self_approval")


def test_a_reviewer_without_the_environment_grant_cannot_approve(team, pending):
    with pytest.raises(NotAnApprover) as refused:
        promotion_approve(actor=team.outsider_reviewer, request=pending)
    assert refused.value.code == "not_an_approver"
    assert refused.value.message == NOT_AN_APPROVER.format(environment="current")
    assert approval_eligibility(team.outsider_reviewer, pending) == (False, "not_an_approver")


def test_a_platform_superuser_reviewer_approves_only_where_granted(team, pending):
    staff = team.outsider_reviewer
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    assert pending_approvals_for(staff) == []
    assert approval_eligibility(staff, pending) == (False, "not_an_approver")
    with pytest.raises(NotAnApprover):
        promotion_approve(actor=staff, request=pending)
    assert not Approval.objects.filter(reviewer=staff).exists()
    assign_perm("approve_promotion", staff, environment("current"))
    assert promotion_approve(actor=staff, request=pending).status == "promoted"


def test_an_approval_deploys_once_approvals_suffice(team, pending, gated):
    assert pending_approvals_for(team.reviewer) == [pending]
    assert approval_eligibility(team.reviewer, pending) == (True, "")
    promotion_approve(actor=team.reviewer, request=pending, comment="Looks right.")
    pending.refresh_from_db()
    assert pending.status == "promoted"
    assert pending.decided_at is not None
    deployment = Deployment.objects.get(request=pending)
    assert deployment.actor == team.reviewer
    assert live_version(gated.bundle, environment("current")) == gated
    assert actions_for("promotions.promotionrequest", pending.pk) == [
        "promotion.requested",
        "promotion.approved",
    ]
    approved = Record.objects.get(action="promotion.approved")
    assert approved.actor_name == team.reviewer.username
    assert approved.data["comment"] == "Looks right."
    assert pending_approvals_for(team.reviewer) == []


def test_one_reviewer_counts_once(team, pending_needing_two):
    pending = pending_needing_two
    promotion_approve(actor=team.reviewer, request=pending)
    with pytest.raises(AlreadyDecided) as refused:
        promotion_approve(actor=team.reviewer, request=pending)
    assert refused.value.code == "already_decided"
    assert refused.value.message == ALREADY_DECIDED.format(id=pending.pk)
    pending.refresh_from_db()
    assert pending.status == "pending"
    promotion_approve(actor=team.reviewer2, request=pending)
    pending.refresh_from_db()
    assert pending.status == "promoted"
    assert Approval.objects.filter(request=pending).count() == 2


def test_deciding_a_request_that_is_no_longer_pending_is_a_conflict(team, pending):
    promotion_approve(actor=team.reviewer, request=pending)
    with pytest.raises(RequestNotPending) as refused:
        promotion_approve(actor=team.reviewer2, request=pending)
    assert refused.value.code == "request_not_pending"
    assert refused.value.status == 409
    assert refused.value.message == REQUEST_NOT_PENDING.format(id=pending.pk, status="promoted")


# Rejecting and cancelling ---------------------------------------------------------------------------------


def test_a_member_without_approve_promotion_cannot_reject(team, pending):
    with pytest.raises(MissingCapability):
        promotion_reject(actor=team.author, request=pending, comment="No.")


def test_a_rejection_needs_a_comment(team, pending):
    with pytest.raises(CommentRequired) as refused:
        promotion_reject(actor=team.reviewer, request=pending, comment=" ")
    assert refused.value.code == "comment_required"


def test_one_rejection_ends_the_request(team, pending_needing_two):
    pending = pending_needing_two
    promotion_approve(actor=team.reviewer, request=pending)
    promotion_reject(actor=team.reviewer2, request=pending, comment="The 1.3 fix is needed first.")
    pending.refresh_from_db()
    assert pending.status == "rejected"
    assert pending.status_reason == "The 1.3 fix is needed first."
    with pytest.raises(RequestNotPending):
        promotion_approve(actor=team.reviewer2, request=pending)
    assert not Deployment.objects.filter(request=pending).exists()
    assert actions_for("promotions.promotionrequest", pending.pk) == [
        "promotion.requested",
        "promotion.approved",
        "promotion.rejected",
    ]


def test_only_the_requester_may_cancel(team, pending):
    with pytest.raises(NotTheRequester) as refused:
        promotion_cancel(actor=team.reviewer, request=pending)
    assert refused.value.code == "not_the_requester"
    assert refused.value.message == NOT_THE_REQUESTER.format(id=pending.pk)


def test_the_requester_cancels_a_pending_request_once(team, pending):
    promotion_cancel(actor=team.author, request=pending, comment="Wrong version.")
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    with pytest.raises(RequestNotPending):
        promotion_cancel(actor=team.author, request=pending)
    with pytest.raises(RequestNotPending):
        promotion_approve(actor=team.reviewer, request=pending)
    assert actions_for("promotions.promotionrequest", pending.pk) == [
        "promotion.requested",
        "promotion.cancelled",
    ]
    assert pending.history.count() == 2


def test_a_cancelled_request_frees_the_slot_for_a_new_one(team, pending, gated):
    promotion_cancel(actor=team.author, request=pending)
    again = request(team, gated, "current")
    assert again.status == "pending"


def test_lowering_the_required_approvals_decides_no_pending_request(team, pending_needing_two):
    pending = pending_needing_two
    promotion_approve(actor=team.reviewer, request=pending)
    environment_update(actor=team.admin, environment=environment("current"), required_approvals=1)
    pending.refresh_from_db()
    assert pending.status == "pending"  # decided under the rules it was made with: two approvals
    assert pending.rules["required_approvals"] == 2
    assert not Deployment.objects.filter(request=pending).exists()
    promotion_approve(actor=team.reviewer2, request=pending)
    pending.refresh_from_db()
    assert pending.status == "promoted"
    deployment = Deployment.objects.get(request=pending)
    assert deployment.approved_by == [team.reviewer.username, team.reviewer2.username]
    assert deployment.actor == team.reviewer2
    created = Record.objects.get(action="deployment.created", target_id=str(deployment.pk))
    assert created.data["approved_by"] == [team.reviewer.username, team.reviewer2.username]
