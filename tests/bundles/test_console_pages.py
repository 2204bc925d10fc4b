"""Console pages of bundles: they render for members, refuse what roles forbid, and every form needs CSRF."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from bundles import extensions
from bundles.exceptions import BUNDLE_NOT_FOUND
from bundles.models import BundleVersion
from tenancy.exceptions import MISSING_CAPABILITY
from tenancy.roles import Capability, Role
from tests.bundles.bundle_factories import (
    CLAIMS,
    broken_files,
    example_files,
    push,
    tar_gz,
    with_description,
    with_version,
)
from tests.conftest import session_client


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


@pytest.fixture
def auditor(tenant_a, make_member):
    return make_member(tenant_a, "aldo-auditor", [Role.AUDITOR])


@pytest.fixture
def admin(tenant_a, make_member):
    return make_member(tenant_a, "adam-admin", [Role.ADMIN])


@pytest.fixture
def two_versions(in_tenant_a, author):
    first = push(author).version
    files = with_description(with_version(example_files(), "1.3.0"), "Route claims, stricter")
    policy = "policies/amount-limit.yaml"
    files[policy] = files[policy].replace("input.amount > 100000", "input.amount > 50000")
    return first, push(author, files).version


@pytest.fixture
def restore_extensions():
    saved = {name: list(getattr(extensions, name)) for name in ("_version_facts", "_version_panels")}
    yield
    for name, registry in saved.items():
        getattr(extensions, name)[:] = registry


def text_of(response) -> str:
    return response.content.decode()


# --- refusals first ---


def test_a_reviewer_cannot_open_the_upload_page(tenant_a, make_member):
    reviewer = make_member(tenant_a, "rita-reviewer", [Role.REVIEWER])
    response = session_client(tenant_a, reviewer).get("/bundles/_upload/")
    assert response.status_code == 403
    assert MISSING_CAPABILITY.format(capability=Capability.PUSH_VERSION) in text_of(response)


def test_an_author_cannot_change_push_grants(tenant_a, two_versions, author, auditor):
    client = session_client(tenant_a, author)
    response = client.post(f"/bundles/{CLAIMS}/push-grants/", {"username": "aldo-auditor", "action": "grant"})
    assert response.status_code == 403
    assert not auditor.has_perm("bundles.push_version", two_versions[0].bundle)


def test_an_auditor_sees_no_draft_button_and_cannot_start_a_draft(tenant_a, two_versions, auditor):
    client = session_client(tenant_a, auditor)
    assert 'data-testid="new-draft"' not in text_of(client.get(f"/bundles/{CLAIMS}/"))
    assert client.post(f"/bundles/{CLAIMS}/drafts/").status_code == 403


def test_an_anonymous_visitor_is_sent_to_sign_in(tenant_a):
    from rest_framework.test import APIClient

    from tests.conftest import host_of

    response = APIClient(HTTP_HOST=host_of(tenant_a)).get("/bundles/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


CSRF_FORMS = [
    ("/bundles/_upload/", {}),
    (f"/bundles/{CLAIMS}/push-grants/", {"username": "ada-author", "action": "revoke"}),
    (f"/bundles/{CLAIMS}/drafts/", {}),
]


@pytest.mark.parametrize(("path", "data"), CSRF_FORMS, ids=[path for path, _ in CSRF_FORMS])
def test_every_form_is_refused_without_a_csrf_token(tenant_a, two_versions, make_member, path, data):
    everyone = make_member(tenant_a, "eve-all", [Role.ADMIN, Role.AUTHOR])
    response = session_client(tenant_a, everyone, enforce_csrf=True).post(path, data)
    assert response.status_code == 403
    assert "CSRF" in text_of(response)


def test_the_pages_render_their_forms_with_a_csrf_token(tenant_a, two_versions, make_member):
    everyone = make_member(tenant_a, "eve-all", [Role.ADMIN, Role.AUTHOR])
    client = session_client(tenant_a, everyone, enforce_csrf=True)
    for path in ("/bundles/_upload/", f"/bundles/{CLAIMS}/"):
        page = text_of(client.get(path))
        forms = re.findall(r"<form method=\"post\".*?</form>", page, flags=re.S)
        assert forms
        assert all("csrfmiddlewaretoken" in form for form in forms)


# --- pages ---


def test_the_list_shows_each_bundle_with_its_latest_version(tenant_a, two_versions, auditor):
    response = session_client(tenant_a, auditor).get("/bundles/")
    assert response.status_code == 200
    page = text_of(response)
    assert f'href="/bundles/{CLAIMS}/versions/1.3.0/"' in page
    assert "<td>Route claims, stricter</td>" in page


def test_the_navigation_links_to_bundles(tenant_a, auditor):
    page = text_of(session_client(tenant_a, auditor).get("/"))
    assert 'href="/bundles/"' in page


def test_the_bundle_page_lists_versions_highest_first(tenant_a, two_versions, auditor):
    page = text_of(session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/"))
    assert page.index(">1.3.0</a>") < page.index(">1.2.0</a>")
    assert f"/bundles/{CLAIMS}/diff/?from=1.2.0&amp;to=1.3.0" in page


def test_the_version_page_shows_digest_parent_author_validity_and_every_file(tenant_a, two_versions, auditor):
    version = two_versions[1]
    response = session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/versions/1.3.0/")
    assert response.status_code == 200
    page = text_of(response)
    assert f'<code data-testid="digest">{version.digest}</code>' in page
    assert f'href="/bundles/{CLAIMS}/versions/1.2.0/"' in page
    assert "ada-author" in page
    assert 'data-testid="validation">valid<' in page
    for path in version.files:
        assert f'data-testid="file-{path}"' in page
    assert "input.amount &gt; 50000" in page


def test_the_version_page_renders_extension_panels_and_facts(
    tenant_a, two_versions, auditor, restore_extensions
):
    extensions.register_version_facts(lambda version: {"test_owner": "team-claims"})
    extensions.register_version_panel(
        lambda request, version: ("bundles/panels/recent_versions.html", {"versions": [version]})
    )
    page = text_of(session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/versions/1.3.0/"))
    assert 'data-testid="fact-test-owner">team-claims<' in page
    assert 'data-testid="recent-versions"' in page


def test_the_diff_page_colours_lines_and_summarises_meaning(tenant_a, two_versions, auditor):
    response = session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/diff/?from=1.2.0&to=1.3.0")
    assert response.status_code == 200
    page = text_of(response)
    assert '<span class="diff-del">-when: input.amount &gt; 100000 ' in page
    assert '<span class="diff-add">+when: input.amount &gt; 50000 ' in page
    assert '<span class="diff-hunk">@@' in page
    assert "policies changed: amount-limit (when)" in page
    assert "version: 1.2.0 → 1.3.0" in page


def test_the_diff_page_defaults_to_the_latest_two_versions(tenant_a, two_versions, auditor):
    page = text_of(session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/diff/"))
    assert "policies changed: amount-limit (when)" in page


def test_the_diff_page_refuses_an_unknown_version_with_the_form_error(tenant_a, two_versions, auditor):
    response = session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/diff/?from=0.0.1&to=1.3.0")
    assert response.status_code == 400
    assert "Select a valid choice. 0.0.1 is not one of the available choices." in text_of(response)


def test_an_unknown_bundle_page_is_404_with_the_reason(tenant_a, auditor):
    response = session_client(tenant_a, auditor).get("/bundles/nope/")
    assert response.status_code == 404
    assert BUNDLE_NOT_FOUND.format(name="nope").replace("'", "&#x27;") in text_of(response)


def test_a_member_of_tenant_b_finds_none_of_tenant_a_bundle_pages(tenant_b, two_versions, make_member):
    connection.set_schema_to_public()
    member = make_member(tenant_b, "bea-beta", [Role.ADMIN, Role.AUTHOR])
    client = session_client(tenant_b, member)
    for path in (
        f"/bundles/{CLAIMS}/",
        f"/bundles/{CLAIMS}/versions/1.2.0/",
        f"/bundles/{CLAIMS}/diff/?from=1.2.0&to=1.3.0",
    ):
        assert client.get(path).status_code == 404, path
    for path in (f"/bundles/{CLAIMS}/drafts/", f"/bundles/{CLAIMS}/push-grants/"):
        assert client.post(path, {"username": "bea-beta", "action": "grant"}).status_code == 404, path


# --- upload and grants ---


def upload(client, data: bytes):
    return client.post("/bundles/_upload/", {"archive": SimpleUploadedFile("b.tar.gz", data)})


def test_uploading_an_archive_pushes_it_and_shows_the_version(tenant_a, author, in_tenant_a):
    response = upload(session_client(tenant_a, author), tar_gz(example_files()))
    assert response.status_code == 302
    assert response["Location"] == f"/bundles/{CLAIMS}/versions/1.2.0/"
    assert BundleVersion.objects.get(bundle__name=CLAIMS).author == author


def test_an_invalid_upload_lists_each_error_with_file_line_column_and_code(tenant_a, author, in_tenant_a):
    response = upload(session_client(tenant_a, author), tar_gz(broken_files()))
    assert response.status_code == 400
    page = text_of(response)
    assert "The bundle has 2 error(s)." in page
    assert '<code class="location">policies/amount-limit.yaml:4:21</code>' in page
    assert '<code class="code">cel_syntax</code>' in page
    assert '<code class="location">templates/triage.yaml:5:12</code>' in page
    assert not BundleVersion.objects.exists()


def test_an_upload_with_path_traversal_is_refused_with_its_code(tenant_a, author, in_tenant_a):
    data = tar_gz(example_files(), extra={"../evil.yaml": b"name: evil\n"})
    response = upload(session_client(tenant_a, author), data)
    assert response.status_code == 400
    assert '<code class="code">path_traversal</code>' in text_of(response)


def test_an_admin_grants_and_revokes_push_rights_from_the_bundle_page(
    tenant_a, two_versions, admin, make_member
):
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    bundle = two_versions[0].bundle
    client = session_client(tenant_a, admin)
    response = client.post(f"/bundles/{CLAIMS}/push-grants/", {"username": "otto-author", "action": "grant"})
    assert response.status_code == 302
    assert other.has_perm("bundles.push_version", bundle)
    page = text_of(client.get(f"/bundles/{CLAIMS}/"))
    assert "otto-author may now push versions of claims-triage." in page
    client.post(f"/bundles/{CLAIMS}/push-grants/", {"username": "otto-author", "action": "revoke"})
    assert not other.has_perm("bundles.push_version", bundle)


def test_granting_to_a_stranger_shows_the_reason(tenant_a, two_versions, admin):
    client = session_client(tenant_a, admin)
    client.post(f"/bundles/{CLAIMS}/push-grants/", {"username": "nobody", "action": "grant"})
    assert "No active member named &#x27;nobody&#x27; in this tenant." in text_of(
        client.get(f"/bundles/{CLAIMS}/")
    )
