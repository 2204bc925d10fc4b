"""Single sign-on as people click through it: headless Chromium, the real control plane, real providers.

Two tenants, each with its own provider (devtools/oidc/provider.js, npm's oidc-provider, started here with
the machine's Node.js): alpha's signs RS256 for a confidential client, beta's ES256 for a public client; both
require PKCE. Screenshots: test-artifacts/browser/sso-*.png.
"""

import os
import re
import uuid
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model

from audit.models import Record
from tenancy.actions import TenancyAction
from tenancy.models import Membership
from tenancy.services import membership_set, tenant_create, user_create
from tenancy.sso.exceptions import SSO_ONLY
from tenancy.sso.services import sso_config_apply
from tests.browser.conftest import SSO_CLIENT_SECRET_ENV
from tests.conftest import drop_committed_tenant, run_committed
from tests.oidc import require_provider_installed, start_provider

pytestmark = [pytest.mark.browser]

IDP_PASSWORD = "idp-password-1"
LOCAL_PASSWORD = "pw-for-sso-e2e-1"
ALPHA_ROLES = {"eng": ["author"], "reviewers": ["reviewer"], "admins": ["admin"]}
ALPHA_GROUPS = {"eng": ["engineering"], "admins": ["platform-admins"]}


def test_the_scenario_starts_from_a_migrated_test_database(db):
    from tenancy.models import Tenant

    assert Tenant.objects.filter(schema_name="public").exists()


@pytest.fixture(autouse=True)
def committed_database_access(django_db_blocker):
    """Let the tests read and write committed data, which they do only through run_committed (own thread)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="module")
def beta_tenant(django_db_setup, django_db_blocker):
    """A second committed tenant, with its own provider."""
    with django_db_blocker.unblock():
        tenant = tenant_create(actor=None, slug=f"sso-{uuid.uuid4().hex[:8]}", name="Beta")
    yield tenant
    with django_db_blocker.unblock():
        drop_committed_tenant(tenant)


@pytest.fixture(scope="module")
def sso(control_plane_server, committed_tenant, beta_tenant, django_db_blocker, tmp_path_factory):
    """Start both providers and configure both tenants; return what the tests need."""
    require_provider_installed()
    port = control_plane_server.port
    with django_db_blocker.unblock():
        alpha_host = committed_tenant.domains.get(is_primary=True).domain
        beta_host = beta_tenant.domains.get(is_primary=True).domain
    directory = tmp_path_factory.mktemp("oidc")
    alpha_users = {
        name: {"password": IDP_PASSWORD, "groups": groups, "email": f"{name}@alpha.example.test"}
        for name, groups in (("alice", ["eng", "reviewers"]), ("carol", ["sales"]))
    }
    alpha_idp = start_provider(
        directory,
        name="alpha",
        alg="RS256",
        clients=[
            {
                "client_id": "contractor-alpha",
                "client_secret": os.environ[SSO_CLIENT_SECRET_ENV],
                "redirect_uris": [f"http://{alpha_host}:{port}/sso/callback/"],
            }
        ],
        users=alpha_users,
    )
    beta_idp = start_provider(
        directory,
        name="beta",
        alg="ES256",
        clients=[
            {"client_id": "contractor-beta", "redirect_uris": [f"http://{beta_host}:{port}/sso/callback/"]}
        ],
        users={"mallory": {"password": IDP_PASSWORD, "groups": ["eng"]}},
    )

    def configure():
        sso_config_apply(
            actor=None,
            tenant=committed_tenant,
            changes={
                "issuer": alpha_idp.issuer,
                "client_id": "contractor-alpha",
                "client_secret_env": SSO_CLIENT_SECRET_ENV,
                "scopes": ["openid", "email", "profile", "groups"],
                "role_mapping": ALPHA_ROLES,
                "group_mapping": ALPHA_GROUPS,
            },
        )
        sso_config_apply(
            actor=None,
            tenant=beta_tenant,
            changes={
                "issuer": beta_idp.issuer,
                "client_id": "contractor-beta",
                "scopes": ["openid", "profile", "groups"],
                "role_mapping": {"eng": ["author", "admin"]},
            },
        )

    with django_db_blocker.unblock():
        run_committed(configure)
    yield {
        "alpha": lambda path: f"http://{alpha_host}:{port}{path}",
        "beta": lambda path: f"http://{beta_host}:{port}{path}",
        "alpha_idp": alpha_idp,
        "beta_idp": beta_idp,
        "alpha_tenant": committed_tenant,
        "beta_tenant": beta_tenant,
    }
    alpha_idp.stop()
    beta_idp.stop()


def sso_sign_in(page, url_of, username: str, password: str = IDP_PASSWORD) -> None:
    """Click "Sign in with single sign-on" and sign in at the provider as `username`."""
    page.goto(url_of("/login/"))
    page.click('[data-testid="sso-sign-in"]')
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def membership_in(tenant, username_prefix: str):
    """Return (username, roles, groups, is_active) of the provisioned user `<prefix>@<slug>` in `tenant`."""
    membership = (
        Membership.objects.select_related("user")
        .filter(tenant=tenant, user__username__startswith=f"{username_prefix}@")
        .first()
    )
    if membership is None:
        return None
    return membership.user.username, sorted(membership.roles), sorted(membership.groups), membership.is_active


def records_of(action: str) -> list[dict]:
    """Return the data of the current tenant's audit records of `action`, oldest first."""
    return [r.data for r in Record.objects.filter(action=action).order_by("id")]


def test_a_member_signs_in_through_the_provider_and_sees_the_mapped_roles(sso, new_page, screenshot):
    page = new_page()
    sso_sign_in(page, sso["alpha"], "alice")
    page.wait_for_selector('[data-testid="dashboard-roles"]')
    screenshot(page, "alice-signed-in")
    assert page.locator('[data-testid="dashboard-roles"]').inner_text().strip() == "author, reviewer"
    assert page.locator('[data-testid="dashboard-groups"]').inner_text().strip() == "engineering"
    tenant = sso["alpha_tenant"]
    username, roles, groups, active = run_committed(membership_in, tenant, "alice")
    assert (roles, groups, active) == (["author", "reviewer"], ["engineering"], True)
    signed_in = run_committed(records_of, TenancyAction.SSO_SIGNED_IN, tenant=tenant)
    assert signed_in[-1]["user"] == username
    assert signed_in[-1]["roles"] == ["author", "reviewer"]
    assert signed_in[-1]["groups"] == ["engineering"]
    email = run_committed(lambda: get_user_model().objects.get(username=username).email)
    assert email == "alice@alpha.example.test"
    # The provisioned user has no password: the password form cannot be used for it.
    assert not run_committed(lambda: get_user_model().objects.get(username=username).has_usable_password())


def test_groups_changed_between_logins_change_the_roles_and_no_group_ends_access(sso, new_page, screenshot):
    tenant = sso["alpha_tenant"]
    first = new_page()
    sso_sign_in(first, sso["alpha"], "alice")
    first.wait_for_selector('[data-testid="dashboard-roles"]')

    sso["alpha_idp"].set_groups("alice", ["admins"])
    second = new_page()
    sso_sign_in(second, sso["alpha"], "alice")
    second.wait_for_selector('[data-testid="dashboard-roles"]')
    screenshot(second, "alice-now-admin")
    assert second.locator('[data-testid="dashboard-roles"]').inner_text().strip() == "admin"
    assert second.locator('[data-testid="dashboard-groups"]').inner_text().strip() == "platform-admins"
    changes = run_committed(records_of, TenancyAction.MEMBERSHIP_CHANGED, tenant=tenant)
    assert changes[-1]["source"] == "sso"
    assert (changes[-1]["roles_before"], changes[-1]["roles_after"]) == (["author", "reviewer"], ["admin"])
    assert changes[-1]["groups_after"] == ["platform-admins"]

    sso["alpha_idp"].set_groups("alice", ["sales"])  # mapped to nothing
    third = new_page()
    sso_sign_in(third, sso["alpha"], "alice")
    error = third.locator('[data-testid="sso-error"]')
    error.wait_for()
    screenshot(third, "alice-no-role")
    assert error.get_attribute("data-code") == "sso_no_role"
    assert "grants you no role" in error.inner_text()
    _, roles, _, active = run_committed(membership_in, tenant, "alice")
    assert (roles, active) == ([], False)
    # The session signed in before the change no longer opens the console: the membership is gone.
    first.goto(sso["alpha"]("/"))
    assert "dashboard-roles" not in first.content()
    refused = run_committed(records_of, TenancyAction.SSO_REFUSED, tenant=tenant)
    assert refused[-1]["reason"] == "sso_no_role"
    sso["alpha_idp"].set_groups("alice", ["eng", "reviewers"])


def test_an_unmapped_user_is_refused_and_gets_no_account(sso, new_page):
    page = new_page()
    sso_sign_in(page, sso["alpha"], "carol")
    error = page.locator('[data-testid="sso-error"]')
    error.wait_for()
    assert error.get_attribute("data-code") == "sso_no_role"
    assert run_committed(membership_in, sso["alpha_tenant"], "carol") is None


def test_sso_only_refuses_password_sign_in_except_platform_staff_break_glass(sso, new_page, screenshot):
    tenant = sso["alpha_tenant"]

    def members():
        for username, staff in (("sso-local-pat", False), ("sso-staff-sam", True)):
            user = get_user_model().objects.filter(username=username).first() or user_create(
                username=username, password=LOCAL_PASSWORD, is_staff=staff
            )
            membership_set(actor=None, tenant=tenant, user=user, roles=["auditor"])
        sso_config_apply(actor=None, tenant=tenant, changes={"sso_only": True})

    run_committed(members)
    try:
        page = new_page()
        page.goto(sso["alpha"]("/login/"))
        assert page.locator('[data-testid="sso-only-note"]').is_visible()
        page.fill("input[name=username]", "sso-local-pat")
        page.fill("input[name=password]", LOCAL_PASSWORD)
        page.click("form.card button[type=submit]")
        alert = page.locator('[role="alert"]')
        alert.wait_for()
        screenshot(page, "sso-only-refuses-password")
        assert alert.inner_text().strip() == SSO_ONLY
        assert "dashboard-roles" not in page.content()

        staff = new_page()
        staff.goto(sso["alpha"]("/login/"))
        staff.fill("input[name=username]", "sso-staff-sam")
        staff.fill("input[name=password]", LOCAL_PASSWORD)
        staff.click("form.card button[type=submit]")
        staff.wait_for_selector('[data-testid="dashboard-roles"]')
        break_glass = run_committed(records_of, TenancyAction.BREAK_GLASS_SIGN_IN, tenant=tenant)
        assert break_glass[-1]["user"] == "sso-staff-sam"
    finally:
        run_committed(lambda: sso_config_apply(actor=None, tenant=tenant, changes={"sso_only": False}))


CALLBACK = "/sso/callback/"
STOPPED = "stopped before the callback"


def callback_url_of_sign_in(page, url_of, username: str) -> str:
    """Sign in at the provider as `username` but stop before the browser reaches the callback: return the
    callback URL (code and state) the provider sent it to.

    Playwright routes see only the first request of a redirect chain (here the login form's POST), so that
    request is fetched by hand and its redirects followed with the context's cookies up to the callback.
    """
    captured = {}

    def follow(route):
        response = route.fetch(max_redirects=0)
        url = urljoin(route.request.url, response.headers["location"])
        while CALLBACK not in urlsplit(url).path:
            response = page.context.request.get(url, max_redirects=0)
            url = urljoin(url, response.headers["location"])
        captured["url"] = url
        route.fulfill(status=200, body=STOPPED, content_type="text/plain")

    login_post = re.compile(r".*/interaction/[^/]+/login$")
    page.route(login_post, follow)
    sso_sign_in(page, url_of, username)
    page.wait_for_selector(f"text={STOPPED}")
    page.unroute(login_post)
    return captured["url"]


def with_state(url: str, state: str) -> str:
    """Return callback `url` with its state replaced."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query["state"] = state
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


def test_a_tampered_state_is_refused(sso, new_page, screenshot):
    page = new_page()
    callback = callback_url_of_sign_in(page, sso["alpha"], "alice")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    page.goto(with_state(callback, state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")))
    error = page.locator('[data-testid="sso-error"]')
    error.wait_for()
    screenshot(page, "tampered-state")
    assert error.get_attribute("data-code") == "sso_state_invalid"
    # The sign-in is used up: the untouched answer is refused too, and nobody is signed in.
    page.goto(callback)
    assert page.locator('[data-testid="sso-error"]').get_attribute("data-code") == "sso_state_invalid"
    page.goto(sso["alpha"]("/"))
    assert "dashboard-roles" not in page.content()
    refused = run_committed(records_of, TenancyAction.SSO_REFUSED, tenant=sso["alpha_tenant"])
    assert refused[-1]["reason"] == "sso_state_invalid"


def test_a_user_of_another_tenants_provider_cannot_get_into_this_tenant(sso, new_page, screenshot):
    page = new_page()
    # mallory signs in to beta through beta's provider (ES256, public client): fine there.
    sso_sign_in(page, sso["beta"], "mallory")
    page.wait_for_selector('[data-testid="dashboard-roles"]')
    assert page.locator('[data-testid="dashboard-roles"]').inner_text().strip() == "admin, author"
    # The beta session opens nothing on alpha's host.
    page.goto(sso["alpha"]("/"))
    page.wait_for_url(re.compile(r"/login/"))
    # Alpha's provider does not know mallory.
    page.click('[data-testid="sso-sign-in"]')
    page.fill("input[name=username]", "mallory")
    page.fill("input[name=password]", IDP_PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("#idp-error").inner_text() == "Unknown user or wrong password."

    # A code issued by beta's provider, brought to alpha's callback with alpha's own valid state: alpha's
    # provider never issued it, so the exchange fails and nobody is signed in.
    other = new_page()
    beta_code = parse_qs(urlsplit(callback_url_of_sign_in(other, sso["beta"], "mallory")).query)["code"][0]
    arrived = other.goto(sso["alpha"]("/sso/login/"))
    hops = [arrived.request]
    while hops[-1].redirected_from is not None:
        hops.append(hops[-1].redirected_from)
    authorization = next(hop.url for hop in hops if hop.url.startswith(sso["alpha_idp"].issuer + "/auth?"))
    alpha_state = parse_qs(urlsplit(authorization).query)["state"][0]
    query = urlencode({"code": beta_code, "state": alpha_state})
    other.goto(sso["alpha"](f"{CALLBACK}?{query}"))
    error = other.locator('[data-testid="sso-error"]')
    error.wait_for()
    screenshot(other, "foreign-code-refused")
    assert error.get_attribute("data-code") == "sso_provider_error"
    other.goto(sso["alpha"]("/"))
    assert "dashboard-roles" not in other.content()
    assert run_committed(membership_in, sso["alpha_tenant"], "mallory") is None
