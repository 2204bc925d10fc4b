"""Reading bundles through the API: list, detail, versions, files, diff, schemas, extension facts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bundles import extensions
from bundles.exceptions import BUNDLE_NOT_FOUND, FILE_NOT_FOUND, VERSION_NOT_FOUND
from bundles.extensions import FactCollision
from bundles.language.schemas import KINDS
from tenancy.roles import Role
from tests.bundles.bundle_factories import (
    CLAIMS,
    SUPPORT,
    example_files,
    push,
    with_description,
    with_version,
)
from tests.conftest import token_client


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


@pytest.fixture
def auditor(tenant_a, make_member):
    return make_member(tenant_a, "aldo-auditor", [Role.AUDITOR])


@pytest.fixture
def api(tenant_a, auditor):
    return token_client(tenant_a, auditor)


@pytest.fixture
def two_versions(in_tenant_a, author):
    """claims-triage 1.2.0 and 1.3.0 (another description, a changed policy)."""
    first = push(author).version
    files = with_description(with_version(example_files(), "1.3.0"), "Route claims, stricter")
    policy = "policies/amount-limit.yaml"
    files[policy] = files[policy].replace("input.amount > 100000", "input.amount > 50000")
    second = push(author, files).version
    return first, second


@pytest.fixture
def restore_extensions():
    """Undo extension registrations made by a test."""
    saved = {
        name: list(getattr(extensions, name))
        for name in ("_version_facts", "_bundle_facts", "_version_panels", "_bundle_panels")
    }
    yield
    for name, registry in saved.items():
        getattr(extensions, name)[:] = registry


def test_a_non_member_cannot_list_bundles(tenant_a, tenant_b, make_member):
    outsider = make_member(tenant_b, "bea-beta", [Role.ADMIN])
    response = token_client(tenant_a, outsider).get("/api/v1/bundles/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_member"


def test_the_list_gives_name_description_latest_version_and_count(api, two_versions, author):
    push(author, name=SUPPORT)
    response = api.get("/api/v1/bundles/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    rows = {row["name"]: row for row in body["results"]}
    assert list(rows) == [CLAIMS, SUPPORT]
    assert rows[CLAIMS]["latest_version"] == "1.3.0"
    assert rows[CLAIMS]["latest_digest"] == two_versions[1].digest
    assert rows[CLAIMS]["version_count"] == 2
    assert rows[CLAIMS]["description"] == "Route claims, stricter"  # the latest version's
    assert rows[SUPPORT]["version_count"] == 1


def test_the_list_costs_the_same_queries_for_one_bundle_or_many(api, author, in_tenant_a):
    push(author)
    with CaptureQueriesContext(connection) as one:
        api.get("/api/v1/bundles/")
    push(author, name=SUPPORT)
    push(author, with_version(example_files(), "1.3.0"))
    push(author, with_version(example_files(), "1.4.0"))
    with CaptureQueriesContext(connection) as many:
        api.get("/api/v1/bundles/")
    assert len(many) == len(one)


def test_the_list_stays_within_a_fixed_query_budget(api, author, in_tenant_a, django_assert_max_num_queries):
    push(author)
    push(author, name=SUPPORT)
    # 12 are the request's plumbing (tenant, token and membership lookups, search_path switches); the list
    # itself is a count and one page query.
    with django_assert_max_num_queries(14):
        assert api.get("/api/v1/bundles/").status_code == 200


def test_the_detail_lists_versions_highest_first_with_parents(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == CLAIMS
    assert body["created_by"] == "ada-author"
    assert body["latest_version"] == "1.3.0"
    assert body["version_count"] == 2
    assert [(v["version"], v["parent"]) for v in body["versions"]] == [("1.3.0", "1.2.0"), ("1.2.0", None)]
    assert body["versions"][0]["digest"] == two_versions[1].digest
    assert body["versions"][0]["author"] == "ada-author"


def test_an_unknown_bundle_is_404_bundle_not_found(api):
    response = api.get("/api/v1/bundles/nope/")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "bundle_not_found",
        "message": BUNDLE_NOT_FOUND.format(name="nope"),
        "details": [],
    }


def test_the_version_detail_gives_manifest_digest_parent_author_and_file_sizes(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/versions/1.3.0/")
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "1.3.0"
    assert body["digest"] == two_versions[1].digest
    assert body["parent"] == "1.2.0"
    assert body["author"] == "ada-author"
    assert body["manifest"]["name"] == CLAIMS
    assert body["manifest"]["description"] == "Route claims, stricter"
    assert body["validation"] == "valid"
    sizes = {entry["path"]: entry["size"] for entry in body["files"]}
    assert sizes["bundle.yaml"] == len(two_versions[1].files["bundle.yaml"].encode())
    assert list(sizes) == sorted(sizes)


def test_an_unknown_version_is_404_version_not_found(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/versions/9.9.9/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "version_not_found"
    assert response.json()["error"]["message"] == VERSION_NOT_FOUND.format(name=CLAIMS, version="9.9.9")


def test_one_file_is_served_as_path_and_text(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/versions/1.3.0/files/policies/amount-limit.yaml")
    assert response.status_code == 200
    assert response.json() == {
        "path": "policies/amount-limit.yaml",
        "text": two_versions[1].files["policies/amount-limit.yaml"],
    }
    assert "input.amount > 50000" in response.json()["text"]


def test_an_unknown_file_is_404_file_not_found(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/versions/1.3.0/files/policies/nope.yaml")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "file_not_found",
        "message": FILE_NOT_FOUND.format(name=CLAIMS, version="1.3.0", path="policies/nope.yaml"),
        "details": [],
    }


def test_the_diff_gives_unified_file_diffs_and_a_semantic_summary(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/diff/", {"from": "1.2.0", "to": "1.3.0"})
    assert response.status_code == 200
    body = response.json()
    assert (body["bundle"], body["from"], body["to"], body["identical"]) == (CLAIMS, "1.2.0", "1.3.0", False)
    by_path = {entry["path"]: entry for entry in body["files"]}
    assert set(by_path) == {"bundle.yaml", "policies/amount-limit.yaml"}
    policy_diff = by_path["policies/amount-limit.yaml"]
    assert policy_diff["status"] == "changed"
    assert "-when: input.amount > 100000" in policy_diff["diff"]
    assert "+when: input.amount > 50000" in policy_diff["diff"]
    assert body["summary"]["version"] == {"from": "1.2.0", "to": "1.3.0"}
    assert body["summary"]["policies"]["changed"] == [{"name": "amount-limit", "keys": ["when"]}]


def test_a_diff_of_a_version_with_itself_is_identical(api, two_versions):
    body = api.get(f"/api/v1/bundles/{CLAIMS}/diff/", {"from": "1.3.0", "to": "1.3.0"}).json()
    assert body["identical"] is True
    assert body["files"] == []


def test_a_diff_without_versions_names_each_missing_parameter(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/diff/", {"to": "1.3.0"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert response.json()["error"]["details"] == [
        {"field": "from", "code": "required", "message": "This field is required."}
    ]


def test_a_diff_with_an_unknown_version_is_404_version_not_found(api, two_versions):
    response = api.get(f"/api/v1/bundles/{CLAIMS}/diff/", {"from": "0.0.1", "to": "1.3.0"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == VERSION_NOT_FOUND.format(name=CLAIMS, version="0.0.1")


def test_a_diff_of_an_unknown_bundle_is_404_even_without_parameters(api):
    response = api.get("/api/v1/bundles/nope/diff/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bundle_not_found"


def test_the_schema_endpoint_publishes_every_file_kind(api):
    response = api.get("/api/v1/bundle-schema/")
    assert response.status_code == 200
    body = response.json()
    assert set(body["schemas"]) == set(KINDS)
    assert body["schemas"]["policy"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert body["files"]["bundle.yaml"] == "manifest"
    assert body["files"]["policies/*.yaml"] == "policy"


def test_extension_facts_are_merged_into_both_details(api, two_versions, restore_extensions):
    extensions.register_version_facts(lambda version: {"test_checks": {"digest": version.digest, "ok": True}})
    extensions.register_bundle_facts(lambda bundle: {"test_owners": [bundle.name]})
    version = api.get(f"/api/v1/bundles/{CLAIMS}/versions/1.3.0/").json()
    bundle = api.get(f"/api/v1/bundles/{CLAIMS}/").json()
    assert version["test_checks"] == {"digest": two_versions[1].digest, "ok": True}
    assert bundle["test_owners"] == [CLAIMS]


def test_an_extension_may_not_overwrite_a_core_field(two_versions, restore_extensions):
    def sneaky(version):
        return {"digest": "sha256:forged"}

    extensions.register_version_facts(sneaky)
    with pytest.raises(FactCollision, match="digest"):
        extensions.version_facts(two_versions[1], reserved={"digest"})


def test_the_openapi_schema_documents_the_bundle_routes(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/bundles/{name}/versions/" in paths
    assert "/api/v1/bundles/{name}/diff/" in paths
    assert "/api/v1/bundle-schema/" in paths
