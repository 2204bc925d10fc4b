"""Governance changes through the services: no retroactive effect, attribution, stale changes, bootstrap,
separation of duties and group approval rules."""

import pytest
from django.contrib.auth import get_user_model
from guardian.shortcuts import assign_perm

from audit.models import Record
from governance.exceptions import BeneficiaryApproval, SelfApprovalOfChange, StaleChange
from governance.models import GovernanceChangeRequest
from governance.services import change_approve, change_cancel, change_reject
from promotions.exceptions import SeparationOfDuties
from promotions.models import Deployment
from promotions.services.environments import environment_approval_grant, environment_update
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.models import Membership
from tenancy.services import membership_groups_set, membership_set
from tests.promotions.promotion_factories import atomic, environment, push_version, run_gates


def request(team, version, name):
    return atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment(name),
        justification="release",
    )


@pytest.fixture
def in_staging(team):
    version = push_version(team.author)
    run_gates(team.author, version)
    assert request(team, version, "staging").status == "promoted"
    return version


# No retroactive effect --------------------------------------------------------------------------------------


def test_a_rule_change_never_decides_requests_already_pending(team, in_staging, tenant_a):
    pending = request(team, in_staging, "current")
    change = environment_update(actor=team.admin, environment=environment("current"), required_approvals=0)
    assert isinstance(change, GovernanceChangeRequest)
    applied = change_approve(actor=team.admin2, change=change)
    assert applied.status == "applied"
    assert environment("current").required_approvals == 0
    pending.refresh_from_db()
    assert pending.status == "pending"  # made under "one approval": it still needs one
    assert not Deployment.objects.filter(request=pending).exists()
    assert not Record.objects.filter(action="deployment.created", actor_kind="system").exists()
    atomic(promotion_approve, actor=team.reviewer, request=pending)
    pending.refresh_from_db()
    assert pending.status == "promoted"


def test_a_deployment_names_the_reviewers_whose_approvals_made_it(team, in_staging):
    pending = request(team, in_staging, "current")
    atomic(promotion_approve, actor=team.reviewer, request=pending, comment="ok")
    deployment = Deployment.objects.get(request=pending)
    assert deployment.approved_by == [team.reviewer.username]
    assert deployment.actor == team.reviewer
    record = Record.objects.get(action="deployment.created", target_id=str(deployment.pk))
    assert record.actor_name == team.reviewer.username
    assert record.data["approved_by"] == [team.reviewer.username]


def test_a_change_whose_before_state_no_longer_holds_is_superseded(team):
    loosen = environment_update(actor=team.admin, environment=environment("current"), required_approvals=0)
    environment_update(actor=team.admin, environment=environment("current"), required_approvals=3)  # tightens
    with pytest.raises(StaleChange) as refused:
        change_approve(actor=team.admin2, change=loosen)
    assert refused.value.code == "stale_change"
    assert refused.value.status == 409
    loosen.refresh_from_db()
    assert loosen.status == "superseded"
    assert environment("current").required_approvals == 3


# Who may decide ---------------------------------------------------------------------------------------------


def test_the_beneficiary_cannot_approve_a_role_for_themselves(team, tenant_a):
    change = membership_set(actor=team.admin, tenant=tenant_a, user=team.admin2, roles=["admin", "reviewer"])
    with pytest.raises(BeneficiaryApproval):
        change_approve(actor=team.admin2, change=change)
    with pytest.raises(SelfApprovalOfChange):
        change_approve(actor=team.admin, change=change)
    assert Membership.objects.get(user=team.admin2).roles == ["admin"]


def test_a_rejection_ends_a_change_and_only_the_requester_cancels(team):
    first = environment_update(actor=team.admin, environment=environment("current"), requires_gates=False)
    change_reject(actor=team.admin2, change=first, comment="Gates stay.")
    first.refresh_from_db()
    assert (first.status, first.status_reason) == ("rejected", "Gates stay.")
    second = environment_update(actor=team.admin, environment=environment("current"), requires_gates=False)
    from governance.exceptions import NotTheChangeRequester

    with pytest.raises(NotTheChangeRequester):
        change_cancel(actor=team.admin2, change=second)
    change_cancel(actor=team.admin, change=second)
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert environment("current").requires_gates is True


def test_taking_the_admin_role_from_one_of_two_admins_is_a_loosening(team, tenant_a):
    """Otherwise one admin could demote the other and be back to acting alone."""
    change = membership_set(actor=team.admin, tenant=tenant_a, user=team.admin2, roles=["auditor"])
    assert isinstance(change, GovernanceChangeRequest)
    assert Membership.objects.get(user=team.admin2).roles == ["admin"]


# Bootstrap --------------------------------------------------------------------------------------------------


def test_a_tenant_with_a_single_admin_acts_alone_until_it_has_a_second(in_tenant_a, make_member, tenant_a):
    alone = make_member(tenant_a, "solo-admin", ["admin"])
    from promotions.services.environments import environments_ensure_defaults

    environments_ensure_defaults()
    applied = environment_update(actor=alone, environment=environment("current"), required_approvals=0)
    assert applied == environment("current")
    assert Record.objects.filter(action="governance.bootstrap_change").count() == 1
    second = get_user_model().objects.create_user(username="second-admin", password="pw-for-tests-1")
    membership_set(actor=alone, tenant=tenant_a, user=second, roles=["admin"])  # still alone: applies
    pending = environment_update(actor=alone, environment=environment("current"), requires_gates=False)
    assert isinstance(pending, GovernanceChangeRequest)
    assert environment("current").requires_gates is True


# Separation of duties ---------------------------------------------------------------------------------------


def test_an_author_cannot_be_granted_approval_where_duties_are_separated(team):
    with pytest.raises(SeparationOfDuties):
        environment_approval_grant(
            actor=team.admin, environment=environment("current"), user=team.author, granted=True
        )
    # staging does not separate duties by default: the grant is a governed change like any other
    change = environment_approval_grant(
        actor=team.admin, environment=environment("staging"), user=team.author, granted=True
    )
    assert isinstance(change, GovernanceChangeRequest)


def test_an_approver_of_current_cannot_be_given_the_author_role(team, tenant_a):
    with pytest.raises(SeparationOfDuties):
        membership_set(actor=team.admin, tenant=tenant_a, user=team.reviewer, roles=["author", "reviewer"])


def test_a_member_holding_the_author_role_cannot_approve_in_current_even_with_an_old_grant(
    team, in_staging, tenant_a, make_member
):
    pending = request(team, in_staging, "current")
    # A grant from before the rule (written directly, as an old database would have it).
    assign_perm("approve_promotion", team.author, environment("current"))
    both = Membership.objects.get(user=team.reviewer2)
    both.roles = ["author", "reviewer"]
    both.save(update_fields=["roles"])
    with pytest.raises(SeparationOfDuties) as refused:
        atomic(promotion_approve, actor=team.reviewer2, request=pending)
    assert refused.value.code == "separation_of_duties"


# Group rules ------------------------------------------------------------------------------------------------


def set_groups(user, groups):
    membership = Membership.objects.get(user=user)
    membership.groups = groups
    membership.save(update_fields=["groups"])


def test_group_rules_need_one_distinct_approver_from_each_group(team, in_staging, make_member, tenant_a):
    environment_update(
        actor=team.admin,
        environment=environment("current"),
        required_approvals=2,
        required_groups=["risk", "engineering"],
    )
    set_groups(team.reviewer, ["risk", "engineering"])  # one person in both groups
    set_groups(team.reviewer2, ["risk"])
    pending = request(team, in_staging, "current")
    atomic(promotion_approve, actor=team.reviewer, request=pending)
    atomic(promotion_approve, actor=team.reviewer2, request=pending)
    pending.refresh_from_db()
    # reviewer stands for engineering, reviewer2 for risk: both groups have their own approver.
    assert pending.status == "promoted"


def test_one_person_cannot_satisfy_two_groups(team, in_staging):
    environment_update(
        actor=team.admin,
        environment=environment("current"),
        required_approvals=1,
        required_groups=["risk", "engineering"],
    )
    set_groups(team.reviewer, ["risk", "engineering"])
    set_groups(team.reviewer2, ["risk"])
    pending = request(team, in_staging, "current")
    atomic(promotion_approve, actor=team.reviewer, request=pending)
    pending.refresh_from_db()
    assert pending.status == "pending"  # one approval, two groups
    atomic(promotion_approve, actor=team.reviewer2, request=pending)
    pending.refresh_from_db()
    assert pending.status == "promoted"


def test_two_approvers_of_the_same_group_do_not_cover_another(team, in_staging):
    environment_update(actor=team.admin, environment=environment("current"), required_groups=["risk", "eng"])
    set_groups(team.reviewer, ["risk"])
    set_groups(team.reviewer2, ["risk"])
    pending = request(team, in_staging, "current")
    atomic(promotion_approve, actor=team.reviewer, request=pending)
    atomic(promotion_approve, actor=team.reviewer2, request=pending)
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_assigning_a_group_is_a_governed_change_and_removing_one_applies_at_once(team, tenant_a):
    change = membership_groups_set(actor=team.admin, tenant=tenant_a, user=team.reviewer, groups=["risk"])
    assert isinstance(change, GovernanceChangeRequest)
    assert Membership.objects.get(user=team.reviewer).groups == []
    change_approve(actor=team.admin2, change=change)
    assert Membership.objects.get(user=team.reviewer).groups == ["risk"]
    removed = membership_groups_set(actor=team.admin, tenant=tenant_a, user=team.reviewer, groups=[])
    assert isinstance(removed, Membership)
    assert removed.groups == []
    changed = Record.objects.filter(action="membership.groups_changed").order_by("id")
    assert [record.data["groups_after"] for record in changed] == [["risk"], []]
    assert changed.first().data["approved_by"] == [team.admin2.username]


def test_the_console_offers_no_approve_button_to_an_author_where_duties_are_separated(
    team, in_staging, tenant_a
):
    from promotions.exceptions import AUTHORS_MAY_NOT_APPROVE
    from promotions.selectors import approval_eligibility
    from tests.conftest import session_client

    pending = request(team, in_staging, "current")
    both = Membership.objects.get(user=team.reviewer2)
    both.roles = ["author", "reviewer"]
    both.save(update_fields=["roles"])
    assert approval_eligibility(team.reviewer2, pending) == (False, "separation_of_duties")
    assert approval_eligibility(team.reviewer, pending) == (True, "")
    page = session_client(tenant_a, team.reviewer2).get(f"/promotions/{pending.pk}/").content.decode()
    assert 'data-testid="approve"' not in page
    assert AUTHORS_MAY_NOT_APPROVE.format(environment="current").replace("'", "&#x27;") in page
