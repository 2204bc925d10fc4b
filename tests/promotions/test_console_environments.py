"""Console pages of environments: live versions, the timeline, Rollback for operators, rules for admins."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from promotions.exceptions import (
    ENVIRONMENT_NOT_FOUND,
    JUSTIFICATION_REQUIRED,
    NOT_PREVIOUSLY_LIVE,
    REQUIREMENT_CYCLE,
    USER_NOT_FOUND,
)
from promotions.models import Deployment, DeploymentKind, PromotionStatus
from promotions.selectors import environment_approvers, live_version
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.exceptions import MISSING_CAPABILITY, NOT_A_MEMBER
from tenancy.roles import Capability
from tests.conftest import session_client
from tests.promotions.promotion_factories import atomic, environment, make_team, push_version, run_gates


@pytest.fixture
def team(in_tenant_a, make_member):
    return make_team(make_member, in_tenant_a, prefix="envs")


def promote(team, version, name: str):
    """Promote `version` to environment `name` (approving it when the environment needs approvals)."""
    request = atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment(name),
        justification=f"{version.version} to {name}",
    )
    if request.status == PromotionStatus.PENDING:
        request = atomic(promotion_approve, actor=team.reviewer, request=request)
    assert request.status == PromotionStatus.PROMOTED, request.status_reason
    return request


@pytest.fixture
def two_live_in_staging(team):
    """Return (1.1.0, 1.2.0) of claims-triage, both promoted to staging in that order (1.2.0 is live)."""
    versions = []
    for label in ("1.1.0", "1.2.0"):
        version = push_version(team.author, label)
        run_gates(team.author, version)
        promote(team, version, "staging")
        versions.append(version)
    return tuple(versions)


def missing(capability: str) -> str:
    """Return the escaped refusal for a member whose roles lack `capability`."""
    return escape(MISSING_CAPABILITY.format(capability=capability))


def page(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


STAGING = reverse("promotions-environment", args=["staging"])
ROLLBACK = reverse("promotions-environment-rollback", args=["staging"])


def test_a_non_member_is_refused_the_environment_pages(tenant_a, tenant_b, make_member, in_tenant):
    stranger = make_member(tenant_b, "envs-stranger", ["admin"])
    in_tenant(tenant_a)
    client = session_client(tenant_a, stranger)
    assert escape(NOT_A_MEMBER) in page(client, reverse("promotions-environments"), 403)
    assert escape(NOT_A_MEMBER) in page(client, STAGING, 403)


def test_an_unknown_environment_is_not_found(team, tenant_a):
    response = session_client(tenant_a, team.auditor).get(reverse("promotions-environment", args=["nowhere"]))
    assert response.status_code == 404
    assert escape(ENVIRONMENT_NOT_FOUND.format(name="nowhere")) in response.content.decode()


def test_the_environments_page_lists_rules_and_live_versions(two_live_in_staging, team, tenant_a):
    text = page(session_client(tenant_a, team.auditor), reverse("promotions-environments"))
    assert "must have been live in staging" in text
    assert "1 approval" in text
    assert ">1.2.0</" in text
    assert team.reviewer.username in text  # an approver of staging and current


def test_the_environment_page_shows_live_versions_and_the_timeline(two_live_in_staging, team, tenant_a):
    text = page(session_client(tenant_a, team.auditor), STAGING)
    live = text.split('data-testid="live-versions"')[1].split("</table>")[0]
    assert ">1.2.0</" in live
    timeline = text.split('data-testid="timeline"')[1].split("</table>")[0]
    assert timeline.count("<tr>") == 3  # header and two deployments
    assert "1.2.0 to staging" in timeline  # the justification of the request that deployed it
    request_ids = [d.request_id for d in Deployment.objects.filter(environment__name="staging")]
    for request_id in request_ids:
        assert reverse("promotions-detail", args=[request_id]) in timeline


def test_the_rollback_form_is_shown_only_to_operators(two_live_in_staging, team, tenant_a):
    for member in (team.author, team.reviewer, team.auditor, team.admin):
        assert 'data-testid="rollback"' not in page(session_client(tenant_a, member), STAGING)
    text = page(session_client(tenant_a, team.operator), STAGING)
    assert 'data-testid="rollback"' in text
    assert '<option value="1.1.0">1.1.0</option>' in text
    assert '<option value="1.2.0">' not in text  # the live version is no rollback target


def test_rollback_by_an_author_is_refused_with_the_reason(two_live_in_staging, team, tenant_a):
    response = session_client(tenant_a, team.author).post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.1.0", "justification": "broken"}
    )
    assert response.status_code == 403
    assert missing(Capability.ROLLBACK) in response.content.decode()
    assert live_version(two_live_in_staging[0].bundle, environment("staging")).version == "1.2.0"


def test_rollback_needs_a_justification(two_live_in_staging, team, tenant_a):
    response = session_client(tenant_a, team.operator).post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.1.0", "justification": ""}
    )
    assert response.status_code == 400
    assert escape(JUSTIFICATION_REQUIRED) in response.content.decode()


def test_rollback_to_a_version_never_live_there_is_refused(two_live_in_staging, team, tenant_a):
    push_version(team.author, "1.3.0")
    response = session_client(tenant_a, team.operator).post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.3.0", "justification": "x"}
    )
    assert response.status_code == 409
    message = NOT_PREVIOUSLY_LIVE.format(bundle="claims-triage", version="1.3.0", environment="staging")
    assert escape(message) in response.content.decode()


def test_an_operator_rolls_back_and_the_previous_version_is_live_again(two_live_in_staging, team, tenant_a):
    older, _ = two_live_in_staging
    client = session_client(tenant_a, team.operator)
    response = client.post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.1.0", "justification": "1.2.0 misroutes"}
    )
    assert response.status_code == 302
    assert response["Location"] == STAGING
    assert live_version(older.bundle, environment("staging")) == older
    rollback = Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).get()
    assert (rollback.actor, rollback.justification) == (team.operator, "1.2.0 misroutes")
    text = page(client, STAGING)
    assert "1.2.0 misroutes" in text


def test_a_rollback_form_without_csrf_token_is_refused(two_live_in_staging, team, tenant_a):
    response = session_client(tenant_a, team.operator, enforce_csrf=True).post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.1.0", "justification": "x"}
    )
    assert response.status_code == 403
    assert not Deployment.objects.filter(kind=DeploymentKind.ROLLBACK).exists()


def test_rollback_is_not_found_on_another_tenants_host(two_live_in_staging, team, tenant_b, make_member):
    make_member(tenant_b, team.operator.username, ["operator"])
    response = session_client(tenant_b, team.operator).post(
        ROLLBACK, {"bundle": "claims-triage", "to_version": "1.1.0", "justification": "x"}
    )
    assert response.status_code == 404


def test_rules_and_approvers_forms_are_shown_only_to_admins(team, tenant_a):
    for member in (team.author, team.operator, team.reviewer, team.auditor):
        text = page(session_client(tenant_a, member), STAGING)
        assert 'data-testid="rules"' not in text
        assert 'data-testid="grant-approver"' not in text
    text = page(session_client(tenant_a, team.admin), STAGING)
    assert 'data-testid="rules"' in text
    assert 'data-testid="grant-approver"' in text


def test_changing_rules_by_an_operator_is_refused(team, tenant_a):
    response = session_client(tenant_a, team.operator).post(
        reverse("promotions-environment-rules", args=["staging"]),
        {"requires_gates": "on", "required_approvals": "2", "requires_live_in": ""},
    )
    assert response.status_code == 403
    assert missing(Capability.MANAGE_ENVIRONMENTS) in response.content.decode()
    assert environment("staging").required_approvals == 0


def test_an_admin_changes_the_rules(team, tenant_a):
    response = session_client(tenant_a, team.admin).post(
        reverse("promotions-environment-rules", args=["staging"]),
        {"required_approvals": "2", "requires_live_in": "", "description": "Two pairs of eyes"},
    )
    assert response.status_code == 302
    staging = environment("staging")
    assert (staging.required_approvals, staging.requires_gates, staging.description) == (
        2,
        False,
        "Two pairs of eyes",
    )


def test_a_rule_that_would_make_a_requirement_cycle_is_refused(team, tenant_a):
    response = session_client(tenant_a, team.admin).post(
        reverse("promotions-environment-rules", args=["staging"]),
        {"requires_gates": "on", "required_approvals": "0", "requires_live_in": "current"},
    )
    assert response.status_code == 400
    message = REQUIREMENT_CYCLE.format(required="current", environment="staging")
    assert escape(message) in response.content.decode()
    assert environment("staging").requires_live_in is None


def test_granting_approval_by_a_reviewer_is_refused(team, tenant_a):
    response = session_client(tenant_a, team.reviewer).post(
        reverse("promotions-environment-approvers", args=["current"]),
        {"username": team.operator.username, "granted": "1"},
    )
    assert response.status_code == 403
    assert team.operator not in environment_approvers(environment("current"))


def test_granting_approval_to_an_unknown_member_shows_why(team, tenant_a):
    response = session_client(tenant_a, team.admin).post(
        reverse("promotions-environment-approvers", args=["current"]), {"username": "nobody", "granted": "1"}
    )
    assert response.status_code == 404
    assert escape(USER_NOT_FOUND.format(username="nobody")) in response.content.decode()


def test_an_admin_grants_and_revokes_approval_on_an_environment(team, tenant_a):
    client = session_client(tenant_a, team.admin)
    url = reverse("promotions-environment-approvers", args=["current"])
    assert client.post(url, {"username": team.outsider_reviewer.username, "granted": "1"}).status_code == 302
    assert team.outsider_reviewer in environment_approvers(environment("current"))
    assert client.post(url, {"username": team.outsider_reviewer.username, "granted": "0"}).status_code == 302
    assert team.outsider_reviewer not in environment_approvers(environment("current"))


def test_an_approver_form_without_csrf_token_is_refused(team, tenant_a):
    response = session_client(tenant_a, team.admin, enforce_csrf=True).post(
        reverse("promotions-environment-approvers", args=["current"]),
        {"username": team.outsider_reviewer.username, "granted": "1"},
    )
    assert response.status_code == 403
    assert team.outsider_reviewer not in environment_approvers(environment("current"))
