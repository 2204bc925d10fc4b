"""The sign-in pages' failures are console pages (never a stack trace), and operators configure SSO from the
admin and the command line."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import Record
from tenancy.actions import TenancyAction
from tenancy.middleware import SESSION_TENANT_KEY
from tenancy.models import SsoConfig
from tenancy.signin import AUTHENTICATED_AT_KEY
from tenancy.sso.exceptions import SSO_NOT_CONFIGURED, SSO_STATE_INVALID
from tenancy.sso.provider import clear_caches
from tenancy.sso.services import sso_config_apply
from tests.conftest import host_of, session_client
from tests.live import free_port


def browser_on(tenant) -> Client:
    return Client(HTTP_HOST=host_of(tenant))


def test_sign_in_through_sso_where_none_is_configured_says_so(tenant_b):
    response = browser_on(tenant_b).get("/sso/login/")
    assert response.status_code == 404
    assert SSO_NOT_CONFIGURED in response.content.decode()


def test_a_provider_that_is_down_gives_a_clear_page_and_an_audit_record(tenant_a, in_tenant):
    clear_caches()
    issuer = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    sso_config_apply(actor=None, tenant=tenant_a, changes={"issuer": issuer, "client_id": "contractor-alpha"})
    response = browser_on(tenant_a).get("/sso/login/")
    page = response.content.decode()
    assert response.status_code == 502
    assert 'data-code="sso_provider_unavailable"' in page
    assert "could not be reached" in page
    assert "Traceback" not in page
    in_tenant(tenant_a)
    assert Record.objects.filter(
        action=TenancyAction.SSO_REFUSED, data__reason="sso_provider_unavailable"
    ).exists()


def test_a_callback_without_a_sign_in_in_progress_is_refused(tenant_a):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"issuer": "http://127.0.0.1:9", "client_id": "c"})
    response = browser_on(tenant_a).get("/sso/callback/", {"code": "stolen", "state": "guessed"})
    assert response.status_code == 400
    assert SSO_STATE_INVALID in response.content.decode()


def test_the_login_page_offers_sso_where_it_is_enabled(tenant_a, tenant_b):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"issuer": "http://127.0.0.1:9", "client_id": "c"})
    assert 'data-testid="sso-sign-in"' in browser_on(tenant_a).get("/login/").content.decode()
    assert 'data-testid="sso-sign-in"' not in browser_on(tenant_b).get("/login/").content.decode()


def test_the_command_configures_and_refuses_with_the_fields_named(tenant_a, capsys):
    with pytest.raises(CommandError, match="role_mapping"):
        call_command(
            "sso_config", "alpha", "--issuer", "http://127.0.0.1:9", "--client-id", "c", "--role-map", "x=god"
        )
    call_command(
        "sso_config",
        "alpha",
        "--issuer",
        "http://127.0.0.1:9",
        "--client-id",
        "contractor-alpha",
        "--scopes",
        "openid email groups",
        "--role-map",
        "eng=author,reviewer",
        "--group-map",
        "eng=engineering",
        "--sso-only",
        "on",
    )
    shown = capsys.readouterr().out
    assert json.loads(shown[shown.index("{") :])["role_mapping"] == {"eng": ["author", "reviewer"]}
    config = SsoConfig.objects.get(tenant=tenant_a)
    assert (config.sso_only, config.scopes) == (True, ["openid", "email", "groups"])


def test_platform_operators_configure_sso_in_the_admin_through_the_service(tenant_a, in_tenant):
    staff = get_user_model().objects.create_superuser("sso-operator", password="pw-for-tests-1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    session = client.session
    session[SESSION_TENANT_KEY] = "public"  # signed in on the public host
    session.save()
    form = {
        "tenant": tenant_a.pk,
        "enabled": "on",
        "issuer": "http://127.0.0.1:9",
        "client_id": "contractor-alpha",
        "client_secret_env": "SECRET_KEY",
        "scopes": "openid,email",
        "username_claim": "preferred_username",
        "email_claim": "email",
        "groups_claim": "groups",
        "role_mapping": '{"eng": ["author"]}',
        "group_mapping": "{}",
        "auto_provision": "on",
    }
    refused = client.post("/admin/tenancy/ssoconfig/add/", form)
    assert refused.status_code == 200
    assert "SSO_CLIENT_SECRET_ENV_PATTERN" in refused.content.decode()
    assert not SsoConfig.objects.filter(tenant=tenant_a).exists()
    saved = client.post("/admin/tenancy/ssoconfig/add/", {**form, "client_secret_env": "ALPHA_CLIENT_SECRET"})
    assert saved.status_code == 302
    assert SsoConfig.objects.get(tenant=tenant_a).role_mapping == {"eng": ["author"]}
    in_tenant(tenant_a)
    changed = Record.objects.filter(action=TenancyAction.SSO_CONFIG_CHANGED).latest("id")
    assert changed.actor_name == "sso-operator"


def test_a_decisive_action_offers_sso_members_to_sign_in_again(tenant_a, make_member):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"issuer": "http://127.0.0.1:9", "client_id": "c"})
    admin = make_member(tenant_a, "sso-reauth-admin", ["admin"])
    client = session_client(tenant_a, admin)
    session = client.session
    session.pop(AUTHENTICATED_AT_KEY, None)  # signed in, but not recently
    session.save()
    response = client.post("/members/", {"username": "someone", "roles": ["author"]})
    assert response.status_code == 401
    assert 'href="/sso/login/?next=/members/"' in response.content.decode()
