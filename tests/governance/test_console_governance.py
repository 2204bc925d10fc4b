"""The console's governance page: Approve / Reject for another admin only, CSRF, fresh authentication, and the
single-admin banner."""

import re
import time

import pytest
from django.urls import reverse

from governance.models import GovernanceChangeRequest
from governance.views import SINGLE_ADMIN_BANNER
from promotions.services.environments import environment_update
from tenancy.signin import AUTHENTICATED_AT_KEY
from tests.conftest import session_client
from tests.promotions.promotion_factories import environment

PAGE = reverse("governance-changes")


@pytest.fixture
def loosening(team):
    """A pending change by `admin`: current needs no approval."""
    change = environment_update(actor=team.admin, environment=environment("current"), required_approvals=0)
    assert isinstance(change, GovernanceChangeRequest)
    return change


def csrf_token_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_requester_sees_no_approve_button_and_another_admin_does(team, tenant_a, loosening):
    own = session_client(tenant_a, team.admin).get(PAGE).content.decode()
    assert f'data-testid="change-{loosening.pk}"' in own
    assert f'data-testid="approve-{loosening.pk}"' not in own
    assert f'data-testid="cancel-{loosening.pk}"' in own
    other = session_client(tenant_a, team.admin2).get(PAGE).content.decode()
    assert f'data-testid="approve-{loosening.pk}"' in other
    reviewer = session_client(tenant_a, team.reviewer).get(PAGE).content.decode()
    assert f'data-testid="approve-{loosening.pk}"' not in reviewer


def test_approving_without_the_csrf_token_is_refused_and_with_it_applies(team, tenant_a, loosening):
    client = session_client(tenant_a, team.admin2, enforce_csrf=True)
    approve = reverse("governance-approve", args=[loosening.pk])
    refused = client.post(approve, {"comment": "ok"})
    assert refused.status_code == 403
    loosening.refresh_from_db()
    assert loosening.status == "pending"
    token = csrf_token_of(client.get(PAGE).content.decode())
    done = client.post(approve, {"comment": "ok", "csrfmiddlewaretoken": token})
    assert done.status_code == 302
    loosening.refresh_from_db()
    assert loosening.status == "applied"
    assert environment("current").required_approvals == 0


def test_a_stale_session_must_give_its_password_again(team, tenant_a, loosening):
    client = session_client(tenant_a, team.admin2)
    session = client.session
    session[AUTHENTICATED_AT_KEY] = int(time.time()) - 16 * 60
    session.save()
    response = client.post(reverse("governance-approve", args=[loosening.pk]), {"comment": "ok"})
    assert response.status_code == 401
    assert 'data-testid="reauthenticate"' in response.content.decode()
    loosening.refresh_from_db()
    assert loosening.status == "pending"


def test_the_requester_posting_approve_gets_the_refusal_page(team, tenant_a, loosening):
    response = session_client(tenant_a, team.admin).post(reverse("governance-approve", args=[loosening.pk]))
    assert response.status_code == 403
    loosening.refresh_from_db()
    assert loosening.status == "pending"


def test_a_rejection_from_the_console_needs_a_comment(team, tenant_a, loosening):
    client = session_client(tenant_a, team.admin2)
    response = client.post(reverse("governance-reject", args=[loosening.pk]), {"comment": ""})
    assert response.status_code == 400
    client.post(reverse("governance-reject", args=[loosening.pk]), {"comment": "No."})
    loosening.refresh_from_db()
    assert loosening.status == "rejected"


def test_a_single_admin_tenant_shows_the_banner_until_it_has_a_second_admin(
    in_tenant_a, make_member, tenant_a
):
    alone = make_member(tenant_a, "banner-admin", ["admin"])
    member = make_member(tenant_a, "banner-author", ["author"])
    page = session_client(tenant_a, alone).get("/").content.decode()
    assert 'data-testid="single-admin-banner"' in page
    assert SINGLE_ADMIN_BANNER in page
    assert (
        'data-testid="single-admin-banner"' not in session_client(tenant_a, member).get("/").content.decode()
    )
    make_member(tenant_a, "banner-admin2", ["admin"])
    assert (
        'data-testid="single-admin-banner"' not in session_client(tenant_a, alone).get("/").content.decode()
    )


def test_a_loosening_from_the_console_says_it_waits_for_approval(team, tenant_a):
    client = session_client(tenant_a, team.admin)
    rules = {
        "description": "",
        "requires_gates": "on",
        "required_approvals": "0",
        "requires_live_in": "staging",
    }
    response = client.post(reverse("promotions-environment-rules", args=["current"]), rules, follow=True)
    assert "waits for another admin" in response.content.decode()
    assert environment("current").required_approvals == 1
    assert GovernanceChangeRequest.objects.filter(status="pending").count() == 1


def test_groups_are_set_on_the_members_page_and_adding_one_waits_for_another_admin(team, tenant_a):
    from tenancy.models import Membership

    client = session_client(tenant_a, team.admin, enforce_csrf=True)
    token = csrf_token_of(client.get(reverse("memberships")).content.decode())
    response = client.post(
        reverse("membership-groups"),
        {"username": team.reviewer.username, "groups": "risk, engineering", "csrfmiddlewaretoken": token},
        follow=True,
    )
    assert "waits for another admin" in response.content.decode()
    assert Membership.objects.get(user=team.reviewer).groups == []
    change = GovernanceChangeRequest.objects.get(status="pending")
    assert change.proposed == {"groups": ["engineering", "risk"]}
    assert change.beneficiary == team.reviewer
    other = session_client(tenant_a, team.admin2)
    other.post(reverse("governance-approve", args=[change.pk]), {"comment": "ok"})
    assert Membership.objects.get(user=team.reviewer).groups == ["engineering", "risk"]
    page = other.get(reverse("memberships")).content.decode()
    assert f'data-testid="groups-{team.reviewer.username}">engineering, risk<' in page
    refused = session_client(tenant_a, team.reviewer).post(
        reverse("membership-groups"), {"username": team.reviewer.username, "groups": "x"}
    )
    assert refused.status_code == 302
    assert Membership.objects.get(user=team.reviewer).groups == ["engineering", "risk"]
