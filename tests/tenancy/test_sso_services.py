"""Single sign-on configuration and sign-in outcomes, without a browser: who may change it, what is refused,
what is audited, what the API shows, and why a provider cannot take over an account it did not create."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from audit.models import Record
from tenancy.actions import TenancyAction
from tenancy.models import Membership, SsoConfig
from tenancy.roles import Role
from tenancy.sso.exceptions import (
    InvalidSsoConfig,
    NotPlatformOperator,
    SsoNoAccount,
    SsoNoRole,
    SsoProviderUnavailable,
    SsoSecretUnavailable,
)
from tenancy.sso.provider import clear_caches, provider_metadata
from tenancy.sso.selectors import client_secret_of
from tenancy.sso.services import sso_config_apply, sso_config_loosens, sso_sign_in
from tests.conftest import host_of, session_client

ISSUER = "http://127.0.0.1:9/issuer"
VALID = {
    "issuer": ISSUER,
    "client_id": "contractor-alpha",
    "client_secret_env": "ALPHA_SSO_CLIENT_SECRET",
    "role_mapping": {"eng": ["author"], "admins": ["admin"]},
    "group_mapping": {"eng": ["engineering"]},
}


@pytest.fixture
def config(tenant_a):
    return sso_config_apply(actor=None, tenant=tenant_a, changes=VALID)


def invalid_fields(tenant, changes) -> dict[str, str]:
    with pytest.raises(InvalidSsoConfig) as raised:
        sso_config_apply(actor=None, tenant=tenant, changes=changes)
    return {detail["field"]: detail["message"] for detail in raised.value.details}


def test_a_tenant_admin_cannot_change_the_sso_configuration(tenant_a, make_member):
    admin = make_member(tenant_a, "sso-tenant-admin", [Role.ADMIN])
    with pytest.raises(NotPlatformOperator):
        sso_config_apply(actor=admin, tenant=tenant_a, changes=VALID)
    assert not SsoConfig.objects.filter(tenant=tenant_a).exists()


def test_a_secret_is_never_accepted_only_the_name_of_an_allowed_variable(tenant_a):
    errors = invalid_fields(tenant_a, {**VALID, "client_secret": "hunter2"})
    assert "never stored" in errors["client_secret"]
    errors = invalid_fields(tenant_a, {**VALID, "client_secret_env": "SECRET_KEY"})
    assert "SSO_CLIENT_SECRET_ENV_PATTERN" in errors["client_secret_env"]


def test_unknown_roles_bad_scopes_and_missing_fields_are_named(tenant_a):
    errors = invalid_fields(tenant_a, {"role_mapping": {"eng": ["superuser"]}, "scopes": ["email"]})
    assert "roles are" in errors["role_mapping"]
    assert errors["scopes"] == "must include openid"
    assert errors["issuer"] == "required"
    assert errors["client_id"] == "required"


def test_an_issuer_on_the_private_network_or_over_http_is_refused_in_production(tenant_a, settings):
    settings.CONTRACTOR = {**settings.CONTRACTOR, "EGRESS_ALLOW": [], "SSO_REQUIRE_HTTPS": True}
    assert "https URL" in invalid_fields(tenant_a, {**VALID, "issuer": "http://idp.example.com"})["issuer"]
    refusal = invalid_fields(tenant_a, {**VALID, "issuer": "https://10.1.2.3/realms/x"})["issuer"]
    assert "refused by egress policy" in refusal
    assert "private" in refusal


def test_discovery_goes_through_the_egress_policy(settings):
    settings.CONTRACTOR = {**settings.CONTRACTOR, "EGRESS_ALLOW": []}
    clear_caches()
    with pytest.raises(SsoProviderUnavailable, match="egress policy"):
        provider_metadata("https://169.254.169.254/latest")


def test_applying_a_change_is_audited_in_the_tenants_log_without_secrets(config, tenant_a, in_tenant):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"sso_only": True})
    in_tenant(tenant_a)
    records = list(Record.objects.filter(action=TenancyAction.SSO_CONFIG_CHANGED).order_by("id"))
    assert records[-1].data["changed"] == ["sso_only"]
    assert records[-2].data["after"]["issuer"] == ISSUER
    assert records[-1].data["before"]["sso_only"] is False
    assert records[-1].data["after"]["client_secret_env"] == "ALPHA_SSO_CLIENT_SECRET"


def test_loosening_changes_are_told_apart_from_tightening_ones(config):
    config.sso_only = True
    assert sso_config_loosens(config, {"sso_only": False, "auto_provision": False}) == ["sso_only"]
    assert sso_config_loosens(config, {"role_mapping": {"eng": ["author", "admin"]}}) == ["role_mapping"]
    assert sso_config_loosens(config, {"role_mapping": {"eng": ["author"]}}) == []


def test_a_stored_variable_name_outside_the_pattern_is_never_read(config, monkeypatch):
    SsoConfig.objects.filter(pk=config.pk).update(client_secret_env="SECRET_KEY")  # straight into the DB
    config.refresh_from_db()
    monkeypatch.setenv("SECRET_KEY", "the-process-secret")
    with pytest.raises(SsoSecretUnavailable):
        client_secret_of(config)


def test_a_provider_cannot_take_over_an_existing_account_by_naming_it(config, tenant_a, make_member):
    existing = make_member(tenant_a, "victor", [Role.AUDITOR])
    claims = {"sub": "idp-subject-1", "preferred_username": "victor", "groups": ["eng"]}
    outcome = sso_sign_in(tenant=tenant_a, config=config, claims=claims)
    assert outcome.user.pk != existing.pk
    assert outcome.user.username == "victor@alpha"
    assert not outcome.user.has_usable_password()
    assert (outcome.roles, outcome.groups) == (["author"], ["engineering"])
    # The same subject signs in as the same user next time, with roles recomputed.
    again = sso_sign_in(tenant=tenant_a, config=config, claims={**claims, "groups": ["eng", "admins"]})
    assert again.user.pk == outcome.user.pk
    assert Membership.objects.get(user=outcome.user, tenant=tenant_a).roles == ["admin", "author"]


def test_without_provisioning_an_unknown_subject_is_refused_and_audited(config, tenant_a, in_tenant):
    sso_config_apply(actor=None, tenant=tenant_a, changes={"auto_provision": False})
    config.refresh_from_db()
    with pytest.raises(SsoNoAccount):
        sso_sign_in(tenant=tenant_a, config=config, claims={"sub": "stranger", "groups": ["eng"]})
    assert not get_user_model().objects.filter(username__startswith="stranger").exists()
    in_tenant(tenant_a)
    assert Record.objects.filter(action=TenancyAction.SSO_REFUSED, data__reason="sso_no_account").exists()


def test_claims_mapping_to_no_role_create_nobody(config, tenant_a):
    with pytest.raises(SsoNoRole):
        sso_sign_in(
            tenant=tenant_a, config=config, claims={"sub": "s-2", "preferred_username": "x", "groups": []}
        )
    assert not get_user_model().objects.filter(username="x@alpha").exists()


def test_the_sso_api_is_for_tenant_admins_and_never_shows_the_secret(config, tenant_a, make_member):
    author = make_member(tenant_a, "sso-api-author", [Role.AUTHOR])
    assert session_client(tenant_a, author).get("/api/v1/sso/").status_code == 403
    admin = make_member(tenant_a, "sso-api-admin", [Role.ADMIN])
    body = session_client(tenant_a, admin).get("/api/v1/sso/").json()
    assert body["configured"] is True
    assert body["issuer"] == ISSUER
    assert body["client_secret_configured"] is True
    assert body["role_mapping"] == {"admins": ["admin"], "eng": ["author"]}
    assert body["redirect_uri"] == f"http://{host_of(tenant_a)}/sso/callback/"
    assert "ALPHA_SSO_CLIENT_SECRET" not in str(body)


def test_the_sso_api_says_when_nothing_is_configured(tenant_b, make_member):
    admin = make_member(tenant_b, "sso-api-admin-b", [Role.ADMIN])
    assert session_client(tenant_b, admin).get("/api/v1/sso/").json() == {"configured": False}


def test_sso_only_refuses_password_tokens_for_members(config, tenant_a, make_member):
    make_member(tenant_a, "sso-token-member", [Role.AUTHOR], password="pw-for-tests-1")
    sso_config_apply(actor=None, tenant=tenant_a, changes={"sso_only": True})
    client = APIClient(HTTP_HOST=host_of(tenant_a))
    response = client.post(
        "/api/v1/auth/token/", {"username": "sso-token-member", "password": "pw-for-tests-1"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sso_only"


def test_a_user_deactivated_by_the_platform_stays_out_whatever_the_provider_says(config, tenant_a):
    claims = {"sub": "idp-subject-9", "preferred_username": "dora", "groups": ["eng"]}
    user = sso_sign_in(tenant=tenant_a, config=config, claims=claims).user
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(SsoNoAccount):
        sso_sign_in(tenant=tenant_a, config=config, claims={**claims, "groups": ["admins"]})
    assert Membership.objects.get(user=user, tenant=tenant_a).roles == ["author"]
