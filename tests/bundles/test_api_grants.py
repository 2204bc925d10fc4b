"""Push grants: admins grant and revoke push_version on a bundle; the grant decides who may push."""

import pytest

from audit.models import Record
from bundles.exceptions import MEMBER_NOT_FOUND
from tenancy.exceptions import MISSING_CAPABILITY
from tenancy.roles import Capability, Role
from tests.bundles.bundle_factories import CLAIMS, example_files, push, with_version
from tests.conftest import token_client

GRANT_URL = f"/api/v1/bundles/{CLAIMS}/push-grants/otto-author/"


@pytest.fixture
def owner(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


@pytest.fixture
def other(tenant_a, make_member):
    return make_member(tenant_a, "otto-author", [Role.AUTHOR])


@pytest.fixture
def admin(tenant_a, make_member):
    return make_member(tenant_a, "adam-admin", [Role.ADMIN])


@pytest.fixture
def bundle(in_tenant_a, owner):
    return push(owner).version.bundle


def push_as(tenant, user, version: str):
    files = with_version(example_files(), version)
    return token_client(tenant, user).post(
        f"/api/v1/bundles/{CLAIMS}/versions/", {"files": files}, format="json"
    )


def test_an_author_cannot_grant_push_rights(tenant_a, bundle, owner, other):
    response = token_client(tenant_a, owner).put(GRANT_URL)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "missing_role",
        "message": MISSING_CAPABILITY.format(capability=Capability.MANAGE_MEMBERSHIPS),
        "details": [],
    }
    assert not other.has_perm("bundles.push_version", bundle)


def test_an_admin_grant_lets_another_author_push_and_a_revocation_stops_it(tenant_a, bundle, admin, other):
    assert push_as(tenant_a, other, "1.3.0").json()["error"]["code"] == "push_not_allowed"
    granted = token_client(tenant_a, admin).put(GRANT_URL)
    assert granted.status_code == 200
    assert granted.json() == {"bundle": CLAIMS, "user": "otto-author", "granted": True, "changed": True}
    assert push_as(tenant_a, other, "1.3.0").status_code == 201
    revoked = token_client(tenant_a, admin).delete(GRANT_URL)
    assert revoked.json() == {"bundle": CLAIMS, "user": "otto-author", "granted": False, "changed": True}
    response = push_as(tenant_a, other, "1.4.0")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "push_not_allowed"


def test_grants_are_listed_and_each_change_is_audited_once(tenant_a, bundle, admin, other):
    client = token_client(tenant_a, admin)
    client.put(GRANT_URL)
    again = client.put(GRANT_URL)
    assert again.json()["changed"] is False
    listed = client.get(f"/api/v1/bundles/{CLAIMS}/push-grants/").json()
    assert listed == [{"user": "ada-author"}, {"user": "otto-author"}]
    client.delete(GRANT_URL)
    records = Record.objects.filter(action="bundle.push_grant_changed").order_by("id")
    assert [(r.actor_name, r.data["user"], r.data["granted"]) for r in records] == [
        ("adam-admin", "otto-author", True),
        ("adam-admin", "otto-author", False),
    ]


def test_the_creator_may_lose_the_grant_like_anyone_else(tenant_a, bundle, admin, owner):
    token_client(tenant_a, admin).delete(f"/api/v1/bundles/{CLAIMS}/push-grants/ada-author/")
    assert push_as(tenant_a, owner, "1.3.0").json()["error"]["code"] == "push_not_allowed"


def test_a_grant_to_someone_who_is_not_a_member_is_404(tenant_a, tenant_b, bundle, admin, make_member):
    make_member(tenant_b, "bea-beta", [Role.AUTHOR])
    response = token_client(tenant_a, admin).put(f"/api/v1/bundles/{CLAIMS}/push-grants/bea-beta/")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "member_not_found",
        "message": MEMBER_NOT_FOUND.format(username="bea-beta"),
        "details": [],
    }


def test_a_grant_on_an_unknown_bundle_is_404(tenant_a, admin, other):
    response = token_client(tenant_a, admin).put("/api/v1/bundles/nope/push-grants/otto-author/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bundle_not_found"
