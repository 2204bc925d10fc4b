"""Console pages of promotion requests: who sees which button, and the buttons' POSTs."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from promotions.exceptions import (
    COMMENT_REQUIRED,
    GATES_NOT_PASSED,
    JUSTIFICATION_REQUIRED,
    NOT_AN_APPROVER,
    NOT_THE_REQUESTER,
    SELF_APPROVAL,
)
from promotions.models import GateRun, PromotionRequest, PromotionStatus
from promotions.selectors import live_version
from promotions.services.promotion_requests import promotion_request_create
from promotions.views import NOTHING_LIVE_YET
from tenancy.exceptions import MISSING_CAPABILITY, NOT_A_MEMBER
from tenancy.roles import Capability
from tests.conftest import session_client
from tests.promotions.promotion_factories import (
    atomic,
    environment,
    failing_files,
    make_team,
    push_version,
    run_gates,
)


@pytest.fixture
def team(in_tenant_a, make_member):
    return make_team(make_member, in_tenant_a, prefix="console")


@pytest.fixture
def pending_current(team, in_tenant_a):
    """Return a request of claims-triage 1.2.0 to current, pending one approval (1.1.0 is live there)."""
    older = push_version(team.author, "1.1.0")
    run_gates(team.author, older)
    for name in ("staging", "current"):
        request = atomic(
            promotion_request_create,
            actor=team.author,
            version=older,
            environment=environment(name),
            justification=f"first to {name}",
        )
        if request.status == PromotionStatus.PENDING:
            atomic(_approve, team.reviewer, request)
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment("staging"),
        justification="to staging",
    )
    return atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment("current"),
        justification="Fixes the amount limit",
    )


def _approve(reviewer, request):
    from promotions.services.promotion_requests import promotion_approve

    return promotion_approve(actor=reviewer, request=request)


def missing(capability: str) -> str:
    """Return the escaped refusal for a member whose roles lack `capability`."""
    return escape(MISSING_CAPABILITY.format(capability=capability))


def page(client, url: str, status: int = 200) -> str:
    """GET `url` and return the page's text, asserting its status."""
    response = client.get(url)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def detail_url(request: PromotionRequest) -> str:
    return reverse("promotions-detail", args=[request.pk])


def test_a_non_member_is_refused_the_promotion_pages(tenant_a, tenant_b, make_member, in_tenant):
    stranger = make_member(tenant_b, "console-stranger", ["reviewer"])
    in_tenant(tenant_a)
    client = session_client(tenant_a, stranger)
    assert escape(NOT_A_MEMBER) in page(client, reverse("promotions-list"), 403)


def test_the_request_page_is_not_found_on_another_tenants_host(pending_current, tenant_b, make_member, team):
    make_member(tenant_b, team.reviewer.username, ["reviewer"])
    client = session_client(tenant_b, team.reviewer)
    page(client, detail_url(pending_current), 404)
    response = client.post(reverse("promotions-approve", args=[pending_current.pk]), {"comment": "x"})
    assert response.status_code == 404


def test_the_requester_sees_why_they_cannot_decide_and_a_cancel_button(pending_current, tenant_a, team):
    text = page(session_client(tenant_a, team.author), detail_url(pending_current))
    assert escape(SELF_APPROVAL) in text
    assert 'data-testid="approve"' not in text
    assert 'data-testid="reject"' not in text
    assert 'data-testid="cancel"' in text


def test_a_reviewer_without_the_environment_grant_sees_no_decision_buttons(pending_current, tenant_a, team):
    text = page(session_client(tenant_a, team.outsider_reviewer), detail_url(pending_current))
    assert escape(NOT_AN_APPROVER.format(environment="current")) in text
    assert 'data-testid="approve"' not in text
    assert 'data-testid="cancel"' not in text


def test_an_author_sees_that_their_roles_do_not_allow_deciding(pending_current, tenant_a, make_member):
    other_author = make_member(tenant_a, "console-author2", ["author"])
    text = page(session_client(tenant_a, other_author), detail_url(pending_current))
    assert missing(Capability.APPROVE_PROMOTION) in text
    assert 'data-testid="approve"' not in text


def test_an_eligible_reviewer_sees_approve_and_reject_with_a_comment_box(pending_current, tenant_a, team):
    text = page(session_client(tenant_a, team.reviewer), detail_url(pending_current))
    assert 'data-testid="approve"' in text
    assert 'data-testid="reject"' in text
    assert 'name="comment"' in text
    assert 'data-testid="cancel"' not in text


def test_the_request_page_shows_version_justification_gates_and_the_diff_against_live(
    pending_current, tenant_a, team
):
    text = page(session_client(tenant_a, team.reviewer), detail_url(pending_current))
    assert "claims-triage@1.2.0" in text
    assert "Fixes the amount limit" in text
    assert team.author.username in text
    assert 'data-testid="gate-status"' in text
    assert "small-collision" in text  # a case of the golden suite
    assert "claims-triage@1.1.0" in text  # compared with what is live in current
    assert "version: 1.1.0 → 1.2.0" in text
    assert '<span class="diff-add">+version: 1.2.0</span>' in text


def test_the_request_page_says_nothing_is_live_yet_for_a_first_promotion(team, tenant_a):
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    request = atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment("staging"),
        justification="first",
    )
    # promoted at once: the page says what it replaced, which is nothing
    assert request.status == PromotionStatus.PROMOTED
    text = page(session_client(tenant_a, team.author), detail_url(request))
    assert "this is the first version there" in text
    environment_current = environment("current")
    request = atomic(
        promotion_request_create,
        actor=team.author,
        version=version,
        environment=environment_current,
        justification="to prod",
    )
    text = page(session_client(tenant_a, team.author), detail_url(request))
    assert escape(NOTHING_LIVE_YET.format(environment="current")) in text


def test_approving_ones_own_request_is_refused_with_the_reason(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.author)
    response = client.post(reverse("promotions-approve", args=[pending_current.pk]), {"comment": "me"})
    assert response.status_code == 403
    assert escape(SELF_APPROVAL) in response.content.decode()
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING


def test_approving_without_the_environment_grant_is_refused(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.outsider_reviewer)
    response = client.post(reverse("promotions-approve", args=[pending_current.pk]), {})
    assert response.status_code == 403
    assert escape(NOT_AN_APPROVER.format(environment="current")) in response.content.decode()
    assert pending_current.approvals.count() == 0


def test_an_eligible_reviewer_approves_and_the_version_goes_live(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.reviewer)
    response = client.post(reverse("promotions-approve", args=[pending_current.pk]), {"comment": "LGTM"})
    assert response.status_code == 302
    assert response["Location"] == detail_url(pending_current)
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PROMOTED
    assert live_version(pending_current.version.bundle, environment("current")) == pending_current.version
    text = page(client, detail_url(pending_current))
    assert "LGTM" in text
    assert "is live in current" in text


def test_a_rejection_needs_a_comment(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.reviewer)
    response = client.post(reverse("promotions-reject", args=[pending_current.pk]), {"comment": " "})
    assert response.status_code == 400
    assert escape(COMMENT_REQUIRED) in response.content.decode()
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING


def test_a_reviewer_rejects_with_a_comment_and_the_request_ends(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.reviewer)
    response = client.post(reverse("promotions-reject", args=[pending_current.pk]), {"comment": "Not now"})
    assert response.status_code == 302
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.REJECTED
    assert pending_current.status_reason == "Not now"
    assert live_version(pending_current.version.bundle, environment("current")).version == "1.1.0"


def test_cancelling_someone_elses_request_is_refused(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.operator)
    response = client.post(reverse("promotions-cancel", args=[pending_current.pk]), {})
    assert response.status_code == 403
    assert escape(NOT_THE_REQUESTER.format(id=pending_current.pk)) in response.content.decode()
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING


def test_the_requester_cancels_their_request(pending_current, tenant_a, team):
    response = session_client(tenant_a, team.author).post(
        reverse("promotions-cancel", args=[pending_current.pk]), {}
    )
    assert response.status_code == 302
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.CANCELLED


@pytest.mark.parametrize("action", ["promotions-approve", "promotions-reject", "promotions-cancel"])
def test_decision_forms_without_a_csrf_token_are_refused(pending_current, tenant_a, team, action):
    actor = team.author if action == "promotions-cancel" else team.reviewer
    client = session_client(tenant_a, actor, enforce_csrf=True)
    response = client.post(reverse(action, args=[pending_current.pk]), {"comment": "no token"})
    assert response.status_code == 403
    pending_current.refresh_from_db()
    assert pending_current.status == PromotionStatus.PENDING
    assert pending_current.approvals.count() == 0


def test_decisions_are_posts_only(pending_current, tenant_a, team):
    response = session_client(tenant_a, team.reviewer).get(
        reverse("promotions-approve", args=[pending_current.pk])
    )
    assert response.status_code == 405


def test_the_list_filters_by_status_and_environment(pending_current, tenant_a, team):
    client = session_client(tenant_a, team.auditor)
    pending = page(client, reverse("promotions-list") + "?status=pending")
    assert detail_url(pending_current) in pending
    promoted = page(client, reverse("promotions-list") + "?status=promoted&environment=current")
    assert detail_url(pending_current) not in promoted
    assert promoted.count('class="status-promoted"') == 1


def test_the_list_shows_a_reviewer_what_awaits_their_decision(pending_current, tenant_a, team):
    text = page(session_client(tenant_a, team.reviewer), reverse("promotions-list"))
    assert 'data-testid="awaiting-you"' in text
    text = page(session_client(tenant_a, team.author), reverse("promotions-list"))
    assert 'data-testid="awaiting-you"' not in text


def test_requesting_a_promotion_from_the_console_creates_the_request(team, tenant_a):
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    client = session_client(tenant_a, team.author)
    response = client.post(
        reverse("promotions-request"),
        {"bundle": "claims-triage", "version": "1.2.0", "environment": "staging", "justification": "try it"},
    )
    assert response.status_code == 302
    request = PromotionRequest.objects.get(version=version)
    assert response["Location"] == detail_url(request)
    assert request.status == PromotionStatus.PROMOTED
    assert request.requested_by == team.author


def test_requesting_a_promotion_is_refused_for_a_reviewer(team, tenant_a):
    push_version(team.author, "1.2.0")
    response = session_client(tenant_a, team.reviewer).post(
        reverse("promotions-request"),
        {"bundle": "claims-triage", "version": "1.2.0", "environment": "staging", "justification": "x"},
    )
    assert response.status_code == 403
    assert missing(Capability.REQUEST_PROMOTION) in response.content.decode()
    assert not PromotionRequest.objects.exists()


def test_requesting_a_promotion_of_a_version_whose_gates_failed_shows_why(team, tenant_a):
    version = push_version(team.author, "1.2.0", failing_files())
    run = run_gates(team.author, version)
    assert run.status == "failed"
    response = session_client(tenant_a, team.author).post(
        reverse("promotions-request"),
        {"bundle": "claims-triage", "version": "1.2.0", "environment": "staging", "justification": "x"},
    )
    assert response.status_code == 409
    message = GATES_NOT_PASSED.format(version=version, run_id=run.pk, status="failed")
    assert escape(message) in response.content.decode()


def test_requesting_a_promotion_without_a_justification_shows_why(team, tenant_a):
    push_version(team.author, "1.2.0")
    response = session_client(tenant_a, team.author).post(
        reverse("promotions-request"),
        {"bundle": "claims-triage", "version": "1.2.0", "environment": "staging", "justification": "  "},
    )
    assert response.status_code == 400
    assert escape(JUSTIFICATION_REQUIRED) in response.content.decode()
    assert not PromotionRequest.objects.exists()


def test_a_promotion_request_form_without_csrf_token_is_refused(team, tenant_a):
    push_version(team.author, "1.2.0")
    response = session_client(tenant_a, team.author, enforce_csrf=True).post(
        reverse("promotions-request"),
        {"bundle": "claims-triage", "version": "1.2.0", "environment": "staging", "justification": "x"},
    )
    assert response.status_code == 403
    assert not PromotionRequest.objects.exists()


def test_run_gates_starts_a_gate_run_of_the_version(team, tenant_a):
    version = push_version(team.author, "1.2.0")
    response = session_client(tenant_a, team.author).post(
        reverse("promotions-gates-run"), {"bundle": "claims-triage", "version": "1.2.0"}
    )
    assert response.status_code == 302
    assert GateRun.objects.filter(version=version, status="queued").count() == 1


def test_run_gates_is_refused_for_an_auditor(team, tenant_a):
    push_version(team.author, "1.2.0")
    response = session_client(tenant_a, team.auditor).post(
        reverse("promotions-gates-run"), {"bundle": "claims-triage", "version": "1.2.0"}
    )
    assert response.status_code == 403
    assert not GateRun.objects.exists()


def test_the_version_page_offers_run_gates_and_request_promotion_to_an_author(team, tenant_a):
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    url = reverse("bundles-version", args=["claims-triage", "1.2.0"])
    text = page(session_client(tenant_a, team.author), url)
    assert 'data-testid="promotions-panel"' in text
    assert 'data-testid="run-gates"' in text
    assert 'data-testid="request-promotion"' in text
    assert "small-collision" in text  # the per-case gate results
    assert '<option value="staging">staging</option>' in text


def test_the_version_page_offers_an_auditor_no_promotion_forms(team, tenant_a):
    push_version(team.author, "1.2.0")
    url = reverse("bundles-version", args=["claims-triage", "1.2.0"])
    text = page(session_client(tenant_a, team.auditor), url)
    assert 'data-testid="promotions-panel"' in text
    assert 'data-testid="run-gates"' not in text
    assert 'data-testid="request-promotion"' not in text
