"""Fresh authentication: approve, reject, rollback and governance changes in the console need a sign-in
within FRESH_AUTHENTICATION_MINUTES; otherwise the password is asked again and the typed text is kept.
Over the API a token needs the scope instead. Justifications and comments are bounded."""

import time

import pytest
from django.urls import reverse
from django.utils.html import escape

from core.text import MAX_REASON_LENGTH, TOO_LONG
from promotions.models import Deployment, DeploymentKind, PromotionStatus
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.console import REAUTH_PASSWORD_FIELD, WRONG_PASSWORD
from tenancy.exceptions import MISSING_SCOPE
from tenancy.models import SignInFailure
from tenancy.signin import AUTHENTICATED_AT_KEY
from tests.conftest import session_client, token_client
from tests.promotions.promotion_factories import atomic, environment, push_version, run_gates

PASSWORD = "pw-for-tests-1"
COMMENT = "Checked the amount limit <b>twice</b> & the diff"
ROLLBACK = reverse("promotions-environment-rollback", args=["staging"])


def request_promotion(team, version, name: str):
    """Request `version` to environment `name`; return the request (pending where approvals are needed)."""
    return atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment(name),
        justification=f"{version.version} to {name}",
    )


@pytest.fixture
def pending_current(team, in_tenant_a):
    """Return a pending request of claims-triage 1.2.0 to current; staging had 1.1.0, then has 1.2.0 live."""
    older = push_version(team.author, "1.1.0")
    run_gates(team.author, older)
    for name in ("staging", "current"):
        request = request_promotion(team, older, name)
        if request.status == PromotionStatus.PENDING:
            atomic(promotion_approve, actor=team.reviewer, request=request)
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    request_promotion(team, version, "staging")
    return request_promotion(team, version, "current")


def stale_session(tenant, user, minutes_ago: int = 16):
    """Return a console client whose sign-in happened `minutes_ago` minutes ago."""
    client = session_client(tenant, user)
    session = client.session
    session[AUTHENTICATED_AT_KEY] = int(time.time()) - minutes_ago * 60
    session.save()
    return client


def test_a_stale_session_is_asked_for_the_password_and_nothing_is_decided(pending_current, tenant_a, team):
    client = stale_session(tenant_a, team.reviewer)
    response = client.post(reverse("promotions-approve", args=[pending_current.pk]), {"comment": COMMENT})
    assert response.status_code == 401
    text = response.content.decode()
    assert 'data-testid="reauthenticate"' in text
    assert f'action="{reverse("promotions-approve", args=[pending_current.pk])}"' in text
    assert f'name="comment" value="{escape(COMMENT)}"' in text  # the typed comment is carried along
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING
    assert pending_current.approvals.count() == 0


def test_a_wrong_password_decides_nothing_and_counts_as_a_failed_sign_in(pending_current, tenant_a, team):
    client = stale_session(tenant_a, team.reviewer)
    response = client.post(
        reverse("promotions-reject", args=[pending_current.pk]),
        {"comment": "No", REAUTH_PASSWORD_FIELD: "not-it"},
    )
    assert response.status_code == 401
    assert escape(WRONG_PASSWORD) in response.content.decode()
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING
    assert SignInFailure.objects.filter(username=team.reviewer.username).count() == 1


def test_the_right_password_runs_the_action_with_the_kept_comment(pending_current, tenant_a, team):
    client = stale_session(tenant_a, team.reviewer)
    response = client.post(
        reverse("promotions-approve", args=[pending_current.pk]),
        {"comment": COMMENT, REAUTH_PASSWORD_FIELD: PASSWORD},
    )
    assert response.status_code == 302
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PROMOTED
    assert pending_current.approvals.get().comment == COMMENT
    assert time.time() - client.session[AUTHENTICATED_AT_KEY] < 60  # fresh again for the next action


def test_a_recent_sign_in_decides_without_asking(pending_current, tenant_a, team):
    client = stale_session(tenant_a, team.reviewer, minutes_ago=14)
    response = client.post(reverse("promotions-reject", args=[pending_current.pk]), {"comment": "Not now"})
    assert response.status_code == 302
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.REJECTED


def test_a_rollback_from_a_stale_session_asks_first(pending_current, tenant_a, team):
    client = stale_session(tenant_a, team.operator)
    form = {"bundle": "claims-triage", "to_version": "1.1.0", "justification": "misroutes"}
    assert client.post(ROLLBACK, form).status_code == 401
    assert not Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).exists()
    assert client.post(ROLLBACK, {**form, REAUTH_PASSWORD_FIELD: PASSWORD}).status_code == 302
    assert Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).get().justification == "misroutes"


def test_a_governance_change_from_a_stale_session_asks_first(tenant_a, team, make_member):
    client = stale_session(tenant_a, team.admin)
    make_member(tenant_a, "fresh-newcomer", ["author"])
    response = client.post(reverse("memberships"), {"username": "fresh-newcomer", "roles": ["reviewer"]})
    assert response.status_code == 401
    assert client.get(reverse("memberships")).status_code == 200  # reading needs no fresh sign-in


def test_an_api_token_without_the_scope_cannot_approve_or_roll_back(pending_current, tenant_a, team):
    reviewer = token_client(tenant_a, team.reviewer, scopes=["read", "push"])
    response = reviewer.post(f"/api/v1/promotions/{pending_current.pk}/approve/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == MISSING_SCOPE.format(
        capability="approve_promotion", scopes="read, push"
    )
    operator = token_client(tenant_a, team.operator, scopes=["read", "push", "promote"])
    rollback = operator.post(
        "/api/v1/environments/current/bundles/claims-triage/rollback/", {"justification": "x"}, format="json"
    )
    assert rollback.status_code == 403
    assert rollback.json()["error"]["code"] == "missing_scope"
    approver = token_client(tenant_a, team.reviewer, scopes=["approve"])
    assert (
        approver.post(f"/api/v1/promotions/{pending_current.pk}/approve/", {}, format="json").status_code
        == 200
    )


def test_an_overlong_comment_is_refused_naming_the_field(pending_current, tenant_a, team):
    too_long = "x" * (MAX_REASON_LENGTH + 1)
    api = token_client(tenant_a, team.reviewer)
    response = api.post(
        f"/api/v1/promotions/{pending_current.pk}/reject/", {"comment": too_long}, format="json"
    )
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["comment"]
    console = session_client(tenant_a, team.reviewer)
    page = console.post(reverse("promotions-approve", args=[pending_current.pk]), {"comment": too_long})
    assert page.status_code == 400
    assert TOO_LONG.format(limit=MAX_REASON_LENGTH, length=MAX_REASON_LENGTH + 1) in page.content.decode()
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING


def test_an_overlong_justification_is_refused_naming_the_field(team, tenant_a, in_tenant_a):
    api = token_client(tenant_a, team.author)
    response = api.post(
        "/api/v1/promotions/",
        {
            "bundle": "claims-triage",
            "version": "1.0.0",
            "environment": "staging",
            "justification": "j" * (MAX_REASON_LENGTH + 1),
        },
        format="json",
    )
    assert response.status_code == 400
    assert [d["field"] for d in response.json()["error"]["details"]] == ["justification"]
