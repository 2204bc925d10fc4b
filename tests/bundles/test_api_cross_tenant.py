"""A bundle of tenant A does not exist for members of tenant B: 404 (never 403) on every bundle route."""

import pytest
from django.db import connection

from bundles.models import BundleVersion
from tenancy.roles import Role
from tests.bundles.bundle_factories import CLAIMS, example_files, push
from tests.conftest import token_client

ROUTES = [
    ("get", f"/api/v1/bundles/{CLAIMS}/", "bundle_not_found"),
    ("get", f"/api/v1/bundles/{CLAIMS}/versions/1.2.0/", "bundle_not_found"),
    ("get", f"/api/v1/bundles/{CLAIMS}/versions/1.2.0/files/bundle.yaml", "bundle_not_found"),
    ("get", f"/api/v1/bundles/{CLAIMS}/diff/?from=1.2.0&to=1.2.0", "bundle_not_found"),
    ("get", f"/api/v1/bundles/{CLAIMS}/push-grants/", "bundle_not_found"),
    ("put", f"/api/v1/bundles/{CLAIMS}/push-grants/bea-beta/", "bundle_not_found"),
    ("delete", f"/api/v1/bundles/{CLAIMS}/push-grants/bea-beta/", "bundle_not_found"),
]


@pytest.fixture
def bundle_in_a(tenant_a, make_member, in_tenant):
    in_tenant(tenant_a)
    version = push(make_member(tenant_a, "ada-author", [Role.AUTHOR])).version
    connection.set_schema_to_public()
    return version


@pytest.fixture
def member_of_b(tenant_b, make_member):
    return make_member(tenant_b, "bea-beta", [Role.ADMIN, Role.AUTHOR, Role.AUDITOR])


@pytest.mark.parametrize(("method", "path", "code"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_a_bundle_of_tenant_a_is_not_found_for_a_member_of_tenant_b(
    method, path, code, bundle_in_a, tenant_b, member_of_b
):
    response = getattr(token_client(tenant_b, member_of_b), method)(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == code


def test_tenant_b_lists_none_of_tenant_a_bundles(bundle_in_a, tenant_b, member_of_b):
    body = token_client(tenant_b, member_of_b).get("/api/v1/bundles/").json()
    assert body["count"] == 0
    assert body["results"] == []


def test_the_same_name_pushed_in_tenant_b_is_another_bundle(
    bundle_in_a, tenant_a, tenant_b, member_of_b, in_tenant
):
    response = token_client(tenant_b, member_of_b).post(
        f"/api/v1/bundles/{CLAIMS}/versions/", {"files": example_files()}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["created"] is True
    assert response.json()["author"] == "bea-beta"
    in_tenant(tenant_a)
    assert BundleVersion.objects.get(bundle__name=CLAIMS).author.username == "ada-author"
