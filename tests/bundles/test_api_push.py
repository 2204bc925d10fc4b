"""Pushing versions through the API: by JSON and by archive, idempotency, conflicts, validation, rights."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Record
from bundles.apis import NO_INPUT, ONE_INPUT
from bundles.exceptions import (
    ARCHIVE_INVALID,
    BUNDLE_INVALID,
    CREATE_NOT_ALLOWED,
    NAME_MISMATCH,
    PUSH_NOT_ALLOWED,
    VERSION_CONFLICT,
    VERSION_NOT_GREATER,
)
from bundles.language.archive import MAX_ARCHIVE_BYTES
from bundles.models import Bundle, BundleVersion
from tenancy.roles import Role
from tests.bundles.bundle_factories import (
    CLAIMS,
    broken_files,
    example_files,
    tar_gz,
    with_description,
    with_version,
)
from tests.conftest import token_client

PUSH_URL = f"/api/v1/bundles/{CLAIMS}/versions/"


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


@pytest.fixture
def api(tenant_a, author):
    return token_client(tenant_a, author)


def push_json(client, files, url=PUSH_URL):
    return client.post(url, {"files": files}, format="json")


def push_archive(client, data: bytes, url=PUSH_URL):
    upload = SimpleUploadedFile("bundle.tar.gz", data, content_type="application/gzip")
    return client.post(url, {"archive": upload}, format="multipart")


# --- permission denied first ---


def test_a_reviewer_cannot_create_a_bundle(tenant_a, make_member, in_tenant_a):
    reviewer = make_member(tenant_a, "rita-reviewer", [Role.REVIEWER])
    response = push_json(token_client(tenant_a, reviewer), example_files())
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "create_not_allowed",
        "message": CREATE_NOT_ALLOWED,
        "details": [],
    }
    assert not Bundle.objects.filter(name=CLAIMS).exists()


def test_a_reviewer_is_refused_before_the_files_are_validated(tenant_a, make_member):
    reviewer = make_member(tenant_a, "rita-reviewer", [Role.REVIEWER])
    response = push_json(token_client(tenant_a, reviewer), broken_files())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "create_not_allowed"


def test_an_author_without_the_grant_cannot_push_to_another_authors_bundle(tenant_a, make_member, api):
    assert push_json(api, example_files()).status_code == 201
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    response = push_json(token_client(tenant_a, other), with_version(example_files(), "1.3.0"))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "push_not_allowed",
        "message": PUSH_NOT_ALLOWED.format(name=CLAIMS),
        "details": [],
    }


def test_a_granted_member_who_lost_the_author_role_cannot_push(tenant_a, make_member, api, author):
    assert push_json(api, example_files()).status_code == 201
    make_member(tenant_a, "ada-author", [Role.REVIEWER])
    response = push_json(token_client(tenant_a, author), with_version(example_files(), "1.3.0"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "push_not_allowed"


def test_an_anonymous_push_is_401(tenant_a):
    from rest_framework.test import APIClient

    from tests.conftest import host_of

    response = push_json(APIClient(HTTP_HOST=host_of(tenant_a)), example_files())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- pushing ---


def test_pushing_json_files_creates_the_bundle_and_its_first_version(api, author, in_tenant_a):
    response = push_json(api, example_files())
    assert response.status_code == 201
    body = response.json()
    version = BundleVersion.objects.get(bundle__name=CLAIMS)
    assert body["bundle"] == CLAIMS
    assert body["version"] == "1.2.0"
    assert body["digest"] == version.digest
    assert body["digest"].startswith("sha256:")
    assert body["created"] is True
    assert body["parent"] is None
    assert body["author"] == "ada-author"
    assert body["validation"] == "valid"
    assert {entry["path"] for entry in body["files"]} == set(example_files())
    assert version.files == example_files()
    assert author.has_perm("bundles.push_version", version.bundle)


def test_pushing_an_archive_stores_the_same_digest_as_the_json_push(api, in_tenant_a):
    response = push_archive(api, tar_gz(example_files()))
    assert response.status_code == 201
    from bundles.language.checks import validate_files
    from bundles.language.digest import bundle_digest

    assert response.json()["digest"] == bundle_digest(validate_files(example_files()).content)
    assert BundleVersion.objects.get(bundle__name=CLAIMS).files == example_files()


def test_pushing_the_same_content_again_is_200_and_stores_nothing(api, in_tenant_a):
    first = push_json(api, example_files())
    again = push_archive(api, tar_gz(example_files()))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False
    assert again.json()["digest"] == first.json()["digest"]
    assert BundleVersion.objects.filter(bundle__name=CLAIMS).count() == 1
    assert Record.objects.filter(action="bundle.version_pushed").count() == 1


def test_the_same_version_with_other_content_is_409_version_conflict(api, in_tenant_a):
    first = push_json(api, example_files()).json()
    changed = with_description(example_files(), "Another description")
    response = push_json(api, changed)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "version_conflict"
    from bundles.language.checks import validate_files
    from bundles.language.digest import bundle_digest

    new_digest = bundle_digest(validate_files(changed).content)
    assert error["message"] == VERSION_CONFLICT.format(
        name=CLAIMS, version="1.2.0", existing=first["digest"], digest=new_digest
    )


def test_a_version_not_greater_than_the_latest_is_409(api):
    push_json(api, example_files())
    response = push_json(api, with_version(example_files(), "1.1.9"))
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "version_not_greater",
        "message": VERSION_NOT_GREATER.format(name=CLAIMS, version="1.1.9", latest="1.2.0"),
        "details": [],
    }


def test_a_pre_release_of_the_latest_version_is_not_greater(api):
    push_json(api, example_files())
    response = push_json(api, with_version(example_files(), "1.2.0-rc.1"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_not_greater"


def test_a_new_version_links_to_its_parent(api, in_tenant_a):
    push_json(api, example_files())
    response = push_json(api, with_version(example_files(), "1.3.0"))
    assert response.status_code == 201
    assert response.json()["parent"] == "1.2.0"
    child = BundleVersion.objects.get(bundle__name=CLAIMS, version="1.3.0")
    assert child.parent.version == "1.2.0"


def test_every_push_writes_one_audit_record_with_the_digest(api, author, in_tenant_a):
    push_json(api, example_files())
    body = push_json(api, with_version(example_files(), "1.3.0")).json()
    record = Record.objects.filter(action="bundle.version_pushed").order_by("-id").first()
    version = BundleVersion.objects.get(bundle__name=CLAIMS, version="1.3.0")
    assert record.actor_name == "ada-author"
    assert (record.target_type, record.target_id) == ("bundles.bundleversion", str(version.pk))
    assert record.data["digest"] == body["digest"]
    assert record.data["version"] == "1.3.0"
    assert record.data["parent"] == "1.2.0"
    assert Record.objects.filter(action="bundle.version_pushed").count() == 2


# --- refusals with details ---


def test_an_invalid_bundle_is_400_with_every_error_located(api, in_tenant_a):
    response = push_json(api, broken_files())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bundle_invalid"
    assert error["message"] == BUNDLE_INVALID.format(count=2)
    located = [(d["code"], d["file"], d["path"], d["line"], d["column"]) for d in error["details"]]
    assert located == [
        ("cel_syntax", "policies/amount-limit.yaml", "when", 4, 21),
        ("template_variable_undefined", "templates/triage.yaml", "prompt", 5, 12),
    ]
    assert all(detail["message"] for detail in error["details"])
    assert not Bundle.objects.filter(name=CLAIMS).exists()


def test_an_archive_with_path_traversal_is_400_archive_invalid(api, in_tenant_a):
    data = tar_gz(example_files(), extra={"../evil.yaml": b"name: evil\n"})
    response = push_archive(api, data)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "archive_invalid"
    assert error["message"] == ARCHIVE_INVALID.format(count=1)
    assert [(d["code"], d["file"]) for d in error["details"]] == [("path_traversal", "../evil.yaml")]
    assert not Bundle.objects.filter(name=CLAIMS).exists()


def test_a_json_push_with_a_traversing_path_is_400_bundle_invalid(api):
    response = push_json(api, {**example_files(), "../evil.yaml": "name: evil\n"})
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert {(d["code"], d["file"]) for d in details} >= {("path_traversal", "../evil.yaml")}


def test_a_file_that_is_not_a_gzip_is_400_bad_archive(api):
    response = push_archive(api, b"this is not gzip")
    assert response.status_code == 400
    assert [d["code"] for d in response.json()["error"]["details"]] == ["bad_archive"]


def test_an_oversized_archive_is_refused_without_reading_it_all(api):
    response = push_archive(api, b"\0" * (MAX_ARCHIVE_BYTES + 10))
    assert response.status_code == 400
    assert [d["code"] for d in response.json()["error"]["details"]] == ["archive_too_large"]


def test_a_manifest_naming_another_bundle_is_400_name_mismatch(api):
    response = push_json(api, example_files(), url="/api/v1/bundles/other-name/versions/")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "name_mismatch",
        "message": NAME_MISMATCH.format(manifest=CLAIMS, name="other-name"),
        "details": [],
    }


def test_a_push_without_files_or_archive_says_what_to_send(api):
    response = api.post(PUSH_URL, {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"field": "non_field_errors", "code": "missing_input", "message": NO_INPUT}
    ]


def test_a_push_with_both_files_and_archive_is_refused(api):
    upload = SimpleUploadedFile("b.tar.gz", tar_gz(example_files()), content_type="application/gzip")
    response = api.post(PUSH_URL, {"archive": upload, "files.README.md": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"field": "non_field_errors", "code": "ambiguous_input", "message": ONE_INPUT}
    ]


def test_file_texts_keep_their_whitespace(api, in_tenant_a):
    files = example_files()
    files["README.md"] = "  indented first line\n\n"
    assert push_json(api, files).status_code == 201
    assert BundleVersion.objects.get(bundle__name=CLAIMS).files["README.md"] == "  indented first line\n\n"


def test_a_non_text_file_value_is_a_field_error(api):
    response = push_json(api, {**example_files(), "README.md": None})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "files.README.md"
