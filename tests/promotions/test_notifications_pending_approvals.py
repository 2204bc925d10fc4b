"""Pending approvals: the selector and the dashboard panel listing what a reviewer may approve now."""

import pytest

from promotions.selectors import pending_approvals_for
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tests.conftest import session_client
from tests.promotions.promotion_factories import environment, push_version, run_gates


@pytest.fixture
def waiting(team):
    version = push_version(team.author)
    run_gates(team.author, version)
    promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="x"
    )
    return promotion_request_create(
        actor=team.author, version=version, environment=environment("current"), justification="To production."
    )


def test_only_reviewers_holding_the_grant_who_have_not_decided_see_a_request(team):
    from promotions.services.environments import environment_update

    environment_update(actor=team.admin, environment=environment("current"), required_approvals=2)
    version = push_version(team.author)
    run_gates(team.author, version)
    promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="x"
    )
    waiting = promotion_request_create(
        actor=team.author, version=version, environment=environment("current"), justification="To production."
    )
    assert pending_approvals_for(team.author) == []
    assert pending_approvals_for(team.operator) == []
    assert pending_approvals_for(team.outsider_reviewer) == []
    assert pending_approvals_for(team.reviewer) == [waiting]
    promotion_approve(actor=team.reviewer, request=waiting)
    assert pending_approvals_for(team.reviewer) == []
    assert pending_approvals_for(team.reviewer2) == [waiting]


def test_the_dashboard_lists_the_pending_approvals_with_links(team, waiting, tenant_a):
    page = session_client(tenant_a, team.reviewer).get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="pending-approvals"' in html
    assert f'href="/promotions/{waiting.pk}/"' in html
    assert "claims-triage 1.2.0" in html


def test_the_dashboard_shows_no_panel_to_members_who_cannot_approve(team, waiting, tenant_a):
    html = session_client(tenant_a, team.author).get("/").content.decode()
    assert 'data-testid="pending-approvals"' not in html


def test_the_panel_says_when_nothing_waits(team, tenant_a):
    html = session_client(tenant_a, team.reviewer).get("/").content.decode()
    assert "Nothing waits for your approval." in html
