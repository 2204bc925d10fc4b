"""A stored version can never change: the database itself refuses UPDATE, DELETE and TRUNCATE."""

import pytest
from django.db import DatabaseError, connection, transaction

from bundles.models import BundleVersion
from tenancy.roles import Role
from tests.bundles.bundle_factories import push

REFUSED = "append-only"


@pytest.fixture
def version(tenant_a, make_member, in_tenant_a):
    return push(make_member(tenant_a, "ada-author", [Role.AUTHOR])).version


def test_raw_sql_update_of_a_version_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE bundles_bundleversion SET digest = 'sha256:forged' WHERE id = %s", [version.pk]
        )
    assert BundleVersion.objects.get(pk=version.pk).digest == version.digest


def test_raw_sql_delete_of_a_version_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM bundles_bundleversion WHERE id = %s", [version.pk])
    assert BundleVersion.objects.filter(pk=version.pk).exists()


def test_truncate_of_the_versions_table_is_refused(version):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # flush the push's deferred FK checks first
        cursor.execute("TRUNCATE bundles_bundleversion CASCADE")
    assert BundleVersion.objects.filter(pk=version.pk).exists()


def test_saving_a_changed_version_through_the_orm_is_refused(version):
    version.files = {**version.files, "policies/amount-limit.yaml": "name: amount-limit\n"}
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        version.save()
    stored = BundleVersion.objects.get(pk=version.pk)
    assert "input.amount > 100000" in stored.files["policies/amount-limit.yaml"]


def test_a_queryset_update_and_delete_are_refused(version):
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        BundleVersion.objects.filter(pk=version.pk).update(description="rewritten")
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        BundleVersion.objects.filter(pk=version.pk).delete()
    assert BundleVersion.objects.get(pk=version.pk).description == version.description
