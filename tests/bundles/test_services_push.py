"""The push, grant and draft services, and the demo seeder, below the API."""

import io
import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from audit.models import Record
from bundles.demo import EXAMPLES, seed_bundles
from bundles.exceptions import DraftNotFound, DraftPublished, PushNotAllowed
from bundles.models import Bundle, BundleVersion, Draft
from bundles.services import bundle_push_grant, bundle_version_push, draft_create, draft_publish, draft_save
from tenancy.roles import Role
from tenancy.services import membership_set
from tests.bundles.bundle_factories import CLAIMS, SUPPORT, example_files, push, with_version
from tests.conftest import run_committed


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "ada-author", [Role.AUTHOR])


def test_a_push_without_the_push_capability_is_refused_even_with_the_grant(author, in_tenant_a):
    push(author)
    with pytest.raises(PushNotAllowed), transaction.atomic():
        bundle_version_push(
            actor=author,
            name=CLAIMS,
            files=with_version(example_files(), "1.3.0"),
            can_create=True,
            can_push=False,
        )
    assert BundleVersion.objects.count() == 1


def test_the_bundle_description_follows_its_latest_version(author, in_tenant_a):
    push(author)
    files = with_version(example_files(), "1.3.0")
    files["bundle.yaml"] = files["bundle.yaml"].replace(
        "description: Route insurance claims to the right queue", "description: Triage claims"
    )
    push(author, files)
    assert Bundle.objects.get(name=CLAIMS).description == "Triage claims"


def test_repeating_a_grant_changes_nothing_and_records_nothing(tenant_a, author, make_member, in_tenant_a):
    bundle = push(author).version.bundle
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    admin = make_member(tenant_a, "ada-admin", [Role.ADMIN])
    assert bundle_push_grant(actor=admin, bundle=bundle, user=other, granted=True) is True
    assert bundle_push_grant(actor=admin, bundle=bundle, user=other, granted=True) is False
    assert Record.objects.filter(action="bundle.push_grant_changed").count() == 1


def test_a_draft_is_only_its_authors(tenant_a, author, make_member, in_tenant_a):
    bundle = push(author).version.bundle
    draft = draft_create(actor=author, bundle=bundle, can_push=True)
    other = make_member(tenant_a, "otto-author", [Role.AUTHOR])
    with pytest.raises(DraftNotFound):
        draft_save(actor=other, draft=draft, files={})
    with pytest.raises(DraftNotFound):
        draft_publish(actor=other, draft=draft, can_create=True, can_push=True)


def test_a_published_draft_is_read_only(author, in_tenant_a):
    bundle = push(author).version.bundle
    draft = draft_create(actor=author, bundle=bundle, can_push=True)
    draft = draft_save(actor=author, draft=draft, files=with_version(draft.files, "1.3.0"))
    result = draft_publish(actor=author, draft=draft, can_create=False, can_push=True)
    assert result.created and result.version.parent.version == "1.2.0"
    with pytest.raises(DraftPublished):
        draft_save(actor=author, draft=Draft.objects.get(pk=draft.pk), files=example_files())


def test_the_demo_seeder_pushes_the_examples_and_an_earlier_claims_release_once(author, in_tenant_a):
    out = io.StringIO()
    seed_bundles(tenant=None, users={"author": author}, stdout=out)
    stored = sorted(BundleVersion.objects.values_list("bundle__name", "version"))
    assert stored == [(CLAIMS, "1.1.0"), (CLAIMS, "1.2.0"), (SUPPORT, "0.3.0")]
    assert BundleVersion.objects.get(bundle__name=CLAIMS, version="1.2.0").parent.version == "1.1.0"
    assert {CLAIMS, SUPPORT} == set(EXAMPLES)
    records = Record.objects.filter(action="bundle.version_pushed").count()
    again = io.StringIO()
    seed_bundles(tenant=None, users={"author": author}, stdout=again)
    assert BundleVersion.objects.count() == 3
    assert Record.objects.filter(action="bundle.version_pushed").count() == records
    assert f"bundle {CLAIMS} 1.2.0 already stored" in again.getvalue()
    assert f"bundle {CLAIMS} 1.2.0 pushed" in out.getvalue()


def test_two_concurrent_first_pushes_of_a_bundle_store_one_version(committed_tenant, db):
    name = f"race-{uuid.uuid4().hex[:8]}"
    files = example_files()
    files["bundle.yaml"] = files["bundle.yaml"].replace(f"name: {CLAIMS}", f"name: {name}")
    user = run_committed(
        lambda: get_user_model().objects.create_user(username=f"racer-{uuid.uuid4().hex[:8]}")
    )
    run_committed(
        lambda: membership_set(actor=None, tenant=committed_tenant, user=user, roles=[Role.AUTHOR]),
        tenant=committed_tenant,
    )
    barrier = threading.Barrier(2)
    outcomes: list = []

    def push_once():
        try:
            connection.set_tenant(committed_tenant)
            barrier.wait(timeout=10)
            with transaction.atomic():
                result = bundle_version_push(actor=user, name=name, files=files, can_create=True)
            outcomes.append(result.created)
        except Exception as error:  # the assertion below reports it
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=push_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes, key=str) == [False, True]
    connection.set_tenant(committed_tenant)
    try:
        assert BundleVersion.objects.filter(bundle__name=name).count() == 1
        assert Record.objects.filter(action="bundle.version_pushed", data__bundle=name).count() == 1
    finally:
        connection.set_schema_to_public()
