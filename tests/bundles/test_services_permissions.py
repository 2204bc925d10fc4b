"""The push and grant services enforce roles and the push_version grant themselves, whatever their callers
pass: a view that forgot a check, a former member's leftover grant or a platform superuser get no push."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from guardian.shortcuts import assign_perm

from bundles.exceptions import CREATE_NOT_ALLOWED, CreateNotAllowed, MemberNotFound, PushNotAllowed
from bundles.models import Bundle, BundleVersion
from bundles.services import bundle_push_grant, bundle_version_push, draft_create
from tenancy.exceptions import MISSING_CAPABILITY, MissingCapability, NotAMember
from tenancy.roles import Role
from tenancy.services import membership_set
from tests.bundles.bundle_factories import CLAIMS, example_files, push, with_version


@pytest.fixture
def author(tenant_a, make_member):
    return make_member(tenant_a, "perm-author", [Role.AUTHOR])


@pytest.fixture
def bundle(author, in_tenant_a) -> Bundle:
    return push(author).version.bundle


def push_next(actor, **rights):
    with transaction.atomic():
        return bundle_version_push(
            actor=actor, name=CLAIMS, files=with_version(example_files(), "1.3.0"), **rights
        )


def test_a_member_whose_roles_do_not_push_is_refused_even_with_the_grant(tenant_a, make_member, bundle):
    reviewer = make_member(tenant_a, "perm-reviewer", [Role.REVIEWER])
    assign_perm("push_version", reviewer, bundle)
    with pytest.raises(PushNotAllowed):
        push_next(reviewer, can_create=False)  # can_push defaults to True: the service must not trust it
    with pytest.raises(PushNotAllowed):
        draft_create(actor=reviewer, bundle=bundle, can_push=True)
    assert BundleVersion.objects.count() == 1


def test_a_member_whose_roles_do_not_create_bundles_cannot_create_one(tenant_a, make_member, in_tenant_a):
    reviewer = make_member(tenant_a, "perm-reviewer", [Role.REVIEWER])
    with pytest.raises(CreateNotAllowed) as refused, transaction.atomic():
        bundle_version_push(actor=reviewer, name=CLAIMS, files=example_files(), can_create=True)
    assert refused.value.message == CREATE_NOT_ALLOWED
    assert not Bundle.objects.exists()


def test_a_former_member_cannot_push_with_a_leftover_grant(tenant_a, author, bundle):
    membership_set(actor=None, tenant=tenant_a, user=author, roles=[])
    author = get_user_model().objects.get(pk=author.pk)  # a fresh request's user
    with pytest.raises(NotAMember):
        push_next(author, can_create=True, can_push=True)
    assert BundleVersion.objects.count() == 1


def test_a_platform_superuser_pushes_only_where_granted(tenant_a, make_member, bundle):
    staff = make_member(tenant_a, "perm-staff", [Role.AUTHOR])
    staff.is_staff = staff.is_superuser = True
    staff.save(update_fields=["is_staff", "is_superuser"])
    with pytest.raises(PushNotAllowed):
        push_next(staff, can_create=True, can_push=True)
    assign_perm("push_version", staff, bundle)
    assert push_next(staff, can_create=True, can_push=True).created is True


def test_only_admins_change_push_grants_even_below_the_views(tenant_a, make_member, author, bundle):
    other = make_member(tenant_a, "perm-other", [Role.AUTHOR])
    with pytest.raises(MissingCapability) as refused:
        bundle_push_grant(actor=author, bundle=bundle, user=other, granted=True)
    assert refused.value.message == MISSING_CAPABILITY.format(capability="manage_memberships")
    assert not other.has_perm("bundles.push_version", bundle)


def test_a_push_grant_goes_only_to_a_member_of_the_tenant(tenant_a, tenant_b, make_member, bundle):
    admin = make_member(tenant_a, "perm-admin", [Role.ADMIN])
    stranger = make_member(tenant_b, "perm-stranger", [Role.AUTHOR])
    with pytest.raises(MemberNotFound):
        bundle_push_grant(actor=admin, bundle=bundle, user=stranger, granted=True)
    assert not stranger.has_perm("bundles.push_version", bundle)
