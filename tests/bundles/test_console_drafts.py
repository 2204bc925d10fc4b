"""The draft editor: edit a copy of the latest version, validate it file by file, publish it as a version."""

import re

import pytest

from bundles.exceptions import DRAFT_NO_VERSION_BUMP, DRAFT_UNCHANGED
from bundles.forms import PATH_EXISTS
from bundles.models import BundleVersion, Draft
from tenancy.roles import Role
from tests.bundles.bundle_factories import CLAIMS, example_files, push, with_version
from tests.conftest import session_client

POLICY = "policies/amount-limit.yaml"


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


@pytest.fixture
def version(in_tenant_a, author):
    return push(author).version


@pytest.fixture
def client(tenant_a, author):
    return session_client(tenant_a, author)


@pytest.fixture
def draft(client, version):
    response = client.post(f"/bundles/{CLAIMS}/drafts/")
    assert response.status_code == 302
    return Draft.objects.get(author__username="ada-author")


def editor_url(draft) -> str:
    return f"/bundles/{CLAIMS}/drafts/{draft.pk}/"


def form_data(files: dict[str, str], action: str, *, remove=(), new_path="", new_text="") -> dict:
    """Return the editor's POST data: numbered fields in path order, as the page renders them."""
    data = {"action": action, "new_path": new_path, "new_text": new_text}
    for index, path in enumerate(sorted(files)):
        data[f"path_{index}"] = path
        data[f"text_{index}"] = files[path]
        if path in remove:
            data[f"remove_{index}"] = "on"
    return data


def section_of(page: str, path: str) -> str:
    """Return the editor section of one file."""
    match = re.search(
        rf'<section class="card draft-file[^"]*"[^>]*>\s*<h3><code>{re.escape(path)}</code>.*?</section>',
        page,
        re.S,
    )
    assert match, path
    return match.group(0)


def test_someone_elses_draft_is_not_found(tenant_a, draft, make_member):
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    other_client = session_client(tenant_a, other)
    assert other_client.get(editor_url(draft)).status_code == 404
    assert other_client.post(editor_url(draft), form_data(draft.files, "publish")).status_code == 404
    assert other_client.post(f"{editor_url(draft)}discard/").status_code == 404
    assert Draft.objects.filter(pk=draft.pk).exists()


def test_an_author_without_the_grant_cannot_start_a_draft(tenant_a, version, make_member):
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    response = session_client(tenant_a, other).post(f"/bundles/{CLAIMS}/drafts/")
    assert response.status_code == 403
    assert "needs the push_version grant" in response.content.decode()
    assert not Draft.objects.exists()


def test_a_new_draft_copies_the_latest_version_and_shows_one_textarea_per_file(client, draft, version):
    assert draft.files == version.files
    assert draft.base_version == version
    page = client.get(editor_url(draft)).content.decode()
    assert page.count("<textarea") == len(version.files) + 1  # + the new-file slot
    assert "input.amount &gt; 100000" in section_of(page, POLICY)


def test_validate_saves_and_shows_each_error_next_to_its_file_with_line_numbers(client, draft):
    files = {**draft.files, POLICY: draft.files[POLICY].replace("input.amount > 100000", "input.amount >")}
    response = client.post(editor_url(draft), form_data(files, "validate"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 error found. The draft was saved." in page
    section = section_of(page, POLICY)
    assert '<code class="location">policies/amount-limit.yaml:4:21</code>' in section
    assert '<code class="code">cel_syntax</code>' in section
    assert '<span class="ln">4</span>when: input.amount &gt;' in section
    assert "cel_syntax" not in section_of(page, "bundle.yaml")
    draft.refresh_from_db()
    assert draft.files[POLICY] == files[POLICY]


def test_a_valid_draft_validates_clean(client, draft):
    response = client.post(editor_url(draft), form_data(draft.files, "validate"))
    assert "Valid. The draft was saved." in response.content.decode()


def test_files_can_be_added_and_removed(client, draft):
    policy = "name: tiny-claims\nstage: pre\neffect: warn\nwhen: input.amount < 1\nmessage: Tiny claim\n"
    data = form_data(
        draft.files, "validate", remove={"README.md"}, new_path="policies/tiny-claims.yaml", new_text=policy
    )
    response = client.post(editor_url(draft), data)
    assert response.status_code == 200
    draft.refresh_from_db()
    assert "README.md" not in draft.files
    assert draft.files["policies/tiny-claims.yaml"] == policy
    assert "Valid. The draft was saved." in response.content.decode()


def test_adding_a_file_that_exists_is_refused_and_nothing_is_saved(client, draft):
    data = form_data(draft.files, "validate", new_path=POLICY, new_text="name: x\n")
    response = client.post(editor_url(draft), data)
    assert response.status_code == 400
    assert PATH_EXISTS.format(path=POLICY).replace("'", "&#x27;") in response.content.decode()
    draft.refresh_from_db()
    assert draft.files[POLICY] != "name: x\n"


def test_an_error_in_a_missing_file_is_shown_above_the_files(client, draft):
    response = client.post(editor_url(draft), form_data(draft.files, "validate", remove={"ontology.yaml"}))
    page = response.content.decode()
    alert = page[: page.index('data-testid="draft-form"')]
    assert '<code class="code">missing_file</code>' in alert


def test_publishing_without_bumping_the_version_is_refused_with_the_reason(client, draft):
    files = {**draft.files, POLICY: draft.files[POLICY].replace("100000", "50000")}
    response = client.post(editor_url(draft), form_data(files, "publish"))
    assert response.status_code == 400
    assert DRAFT_NO_VERSION_BUMP.format(version="1.2.0") in response.content.decode().replace("&#x27;", "'")
    assert BundleVersion.objects.count() == 1


def test_publishing_an_unchanged_draft_is_refused(client, draft):
    response = client.post(editor_url(draft), form_data(draft.files, "publish"))
    assert response.status_code == 400
    assert DRAFT_UNCHANGED.format(version="1.2.0") in response.content.decode()


def test_publishing_an_invalid_draft_shows_the_errors_by_file(client, draft):
    files = with_version(draft.files, "1.3.0")
    files[POLICY] = files[POLICY].replace("input.amount > 100000", "input.amount >")
    response = client.post(editor_url(draft), form_data(files, "publish"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "The bundle has 1 error(s); each is listed in details." in page
    assert '<code class="code">cel_syntax</code>' in section_of(page, POLICY)
    assert BundleVersion.objects.count() == 1


def test_publishing_a_bumped_draft_creates_the_version_and_redirects_to_it(client, draft, version):
    files = with_version(draft.files, "1.3.0")
    files[POLICY] = files[POLICY].replace("100000", "50000")
    response = client.post(editor_url(draft), form_data(files, "publish"))
    assert response.status_code == 302
    assert response["Location"] == f"/bundles/{CLAIMS}/versions/1.3.0/"
    published = BundleVersion.objects.get(bundle__name=CLAIMS, version="1.3.0")
    assert published.parent == version
    assert published.author.username == "ada-author"
    assert "50000" in published.files[POLICY]
    draft.refresh_from_db()
    assert draft.published_version == published
    page = client.get(editor_url(draft)).content.decode()
    assert 'data-testid="published"' in page
    assert 'data-testid="publish"' not in page
    again = client.post(editor_url(draft), form_data(files, "publish"))
    assert again.status_code == 400
    assert BundleVersion.objects.count() == 2


def test_a_draft_can_be_discarded(client, draft):
    response = client.post(f"{editor_url(draft)}discard/")
    assert response.status_code == 302
    assert not Draft.objects.filter(pk=draft.pk).exists()


def test_open_drafts_are_listed_on_the_bundle_page_for_their_author_only(
    tenant_a, client, draft, make_member
):
    assert f'href="{editor_url(draft)}"' in client.get(f"/bundles/{CLAIMS}/").content.decode()
    auditor = make_member(tenant_a, "aldo-auditor", [Role.AUDITOR])
    page = session_client(tenant_a, auditor).get(f"/bundles/{CLAIMS}/").content.decode()
    assert editor_url(draft) not in page


def test_the_editor_needs_a_csrf_token(tenant_a, author, draft):
    strict = session_client(tenant_a, author, enforce_csrf=True)
    response = strict.post(editor_url(draft), form_data(with_version(draft.files, "2.0.0"), "publish"))
    assert response.status_code == 403
    assert BundleVersion.objects.count() == 1


def test_example_files_round_trip_through_the_editor_unchanged(client, draft):
    client.post(editor_url(draft), form_data(draft.files, "validate"))
    draft.refresh_from_db()
    assert draft.files == example_files()


def test_browser_line_ends_are_stored_as_plain_newlines(client, draft):
    files = {path: text.replace("\n", "\r\n") for path, text in draft.files.items()}
    client.post(editor_url(draft), form_data(files, "validate"))
    draft.refresh_from_db()
    assert draft.files == example_files()
