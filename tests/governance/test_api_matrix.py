"""Every governance-changing endpoint: a loosening needs a second admin, and neither the requester nor the
member it benefits can approve it; the tightening counterpart applies at once (200)."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from guardian.shortcuts import get_user_perms

from bundles.models import Bundle
from governance.models import GovernanceChangeRequest
from tenancy.models import Membership
from tests.bundles.bundle_factories import CLAIMS
from tests.conftest import token_client
from tests.promotions.promotion_factories import environment, error_code, push_version


@dataclass(frozen=True)
class Case:
    """One loosening call, how to read the state it would change, and whether it names a beneficiary."""

    name: str
    method: str
    path: str
    body: dict | None
    state: Callable
    benefits_target: bool


def roles_of(username):
    return sorted(Membership.objects.get(user__username=username, tenant__schema_name="alpha").roles)


def groups_of(username):
    return sorted(Membership.objects.get(user__username=username, tenant__schema_name="alpha").groups)


def rules_of(name):
    env = environment(name)
    return (env.required_approvals, env.requires_gates, env.requires_live_in_id, env.forbid_author_approval)


def approver_grants(username):
    return sorted(
        name
        for name in ("staging", "current")
        if "approve_promotion"
        in get_user_perms(Membership.objects.get(user__username=username).user, environment(name))
    )


def push_grants(username):
    user = Membership.objects.get(user__username=username).user
    return "push_version" in get_user_perms(user, Bundle.objects.get(name=CLAIMS))


TARGET = "g-admin2"  # the member the loosening benefits: an admin, so that we can show they cannot approve it
CASES = [
    Case(
        "add roles",
        "put",
        f"/api/v1/memberships/{TARGET}/",
        {"roles": ["admin", "auditor"]},
        lambda: roles_of(TARGET),
        True,
    ),
    Case(
        "add a group",
        "put",
        f"/api/v1/memberships/{TARGET}/groups/",
        {"groups": ["risk"]},
        lambda: groups_of(TARGET),
        True,
    ),
    Case(
        "fewer approvals",
        "patch",
        "/api/v1/environments/current/",
        {"required_approvals": 0},
        lambda: rules_of("current"),
        False,
    ),
    Case(
        "no gates",
        "patch",
        "/api/v1/environments/current/",
        {"requires_gates": False},
        lambda: rules_of("current"),
        False,
    ),
    Case(
        "no prerequisite",
        "patch",
        "/api/v1/environments/current/",
        {"requires_live_in": None},
        lambda: rules_of("current"),
        False,
    ),
    Case(
        "authors may approve",
        "patch",
        "/api/v1/environments/current/",
        {"forbid_author_approval": False},
        lambda: rules_of("current"),
        False,
    ),
    Case(
        "grant an approver",
        "put",
        f"/api/v1/environments/current/approvers/{TARGET}/",
        None,
        lambda: approver_grants(TARGET),
        True,
    ),
    Case(
        "grant a pusher",
        "put",
        f"/api/v1/bundles/{CLAIMS}/push-grants/{TARGET}/",
        None,
        lambda: push_grants(TARGET),
        True,
    ),
]


@pytest.fixture
def third_admin(team, in_tenant_a, tenant_a):
    """A third admin (added through a governed change the second admin approves)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="g-admin3", password="pw-for-tests-1")
    from governance.services import change_approve
    from tenancy.services import membership_set

    change = membership_set(actor=team.admin, tenant=tenant_a, user=user, roles=["admin"])
    change_approve(actor=team.admin2, change=change)
    return user


@pytest.fixture
def bundle(team):
    return push_version(team.author)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_loosening_waits_for_another_admin_who_is_neither_requester_nor_beneficiary(
    case, team, clients, tenant_a, third_admin, bundle
):
    before = case.state()
    response = getattr(clients["admin"], case.method)(case.path, case.body, format="json")
    assert response.status_code == 202, response.content
    change = response.json()["governance_change"]
    assert change["status"] == "pending"
    assert change["requested_by"] == team.admin.username
    assert case.state() == before
    approve = f"/api/v1/governance/changes/{change['id']}/approve/"

    by_requester = clients["admin"].post(approve, {}, format="json")
    assert (by_requester.status_code, error_code(by_requester)) == (403, "self_approval")
    if case.benefits_target:
        assert change["beneficiary"] == TARGET
        by_beneficiary = clients["admin2"].post(approve, {}, format="json")
        assert (by_beneficiary.status_code, error_code(by_beneficiary)) == (403, "beneficiary_approval")
    by_reviewer = clients["reviewer"].post(approve, {}, format="json")
    assert (by_reviewer.status_code, error_code(by_reviewer)) == (403, "missing_role")
    assert case.state() == before

    approver = token_client(tenant_a, third_admin)
    applied = approver.post(approve, {"comment": "Checked."}, format="json")
    assert applied.status_code == 200, applied.content
    assert applied.json()["status"] == "applied"
    assert case.state() != before
    assert GovernanceChangeRequest.objects.get(pk=change["id"]).approvals.get().approver == third_admin


TIGHTENING = [
    ("remove a role", "put", "/api/v1/memberships/g-author/", {"roles": []}),
    ("more approvals", "patch", "/api/v1/environments/current/", {"required_approvals": 2}),
    ("a required group", "patch", "/api/v1/environments/current/", {"required_groups": ["risk"]}),
    ("revoke an approver", "delete", "/api/v1/environments/current/approvers/g-reviewer/", None),
    ("revoke a pusher", "delete", f"/api/v1/bundles/{CLAIMS}/push-grants/g-author/", None),
]


@pytest.mark.parametrize("name,method,path,body", TIGHTENING, ids=[row[0] for row in TIGHTENING])
def test_a_tightening_applies_at_once(name, method, path, body, team, clients, bundle):
    response = getattr(clients["admin"], method)(path, body, format="json")
    assert response.status_code == 200, response.content
    assert not GovernanceChangeRequest.objects.exists()


def test_an_admin_token_without_the_approve_scope_cannot_approve(team, clients, tenant_a, third_admin):
    change = clients["admin"].patch("/api/v1/environments/current/", {"required_approvals": 0}, format="json")
    path = f"/api/v1/governance/changes/{change.json()['governance_change']['id']}/approve/"
    admin_only = token_client(tenant_a, team.admin2, scopes=["admin"])
    refused = admin_only.post(path, {}, format="json")
    assert (refused.status_code, error_code(refused)) == (403, "missing_scope")
    approve_only = token_client(tenant_a, team.admin2, scopes=["approve"])
    assert approve_only.post(path, {}, format="json").status_code == 403
    both = token_client(tenant_a, team.admin2, scopes=["admin", "approve"])
    assert both.post(path, {}, format="json").json()["status"] == "applied"
    assert environment("current").required_approvals == 0
