"""Reads of bundles, versions, drafts and push grants."""

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Subquery
from guardian.shortcuts import get_users_with_perms

from bundles.exceptions import (
    BUNDLE_NOT_FOUND,
    DRAFT_NOT_FOUND,
    FILE_NOT_FOUND,
    MEMBER_NOT_FOUND,
    VERSION_NOT_FOUND,
    BundleNotFound,
    DraftNotFound,
    FileNotFound,
    MemberNotFound,
    VersionNotFound,
)
from bundles.language.versioning import precedence_key
from bundles.models import Bundle, BundleVersion, Draft
from tenancy.selectors import current_tenant, membership_of

PUSH_CODENAME = "push_version"


def bundle_list():
    """Return the tenant's bundles by name, each annotated with `version_count` and `latest_version`.

    Versions only move forward (a push must be greater than every existing version), so the newest row of a
    bundle is also its highest version.
    """
    newest = BundleVersion.objects.filter(bundle=OuterRef("pk")).order_by("-created_at", "-pk")
    return Bundle.objects.order_by("name").annotate(
        version_count=Count("versions"),
        latest_version=Subquery(newest.values("version")[:1]),
        latest_digest=Subquery(newest.values("digest")[:1]),
        latest_at=Subquery(newest.values("created_at")[:1]),
    )


def access_bundle(actor, name: str) -> Bundle:
    """Return bundle `name`, or raise BundleNotFound (every member of the tenant may read bundles)."""
    bundle = Bundle.objects.select_related("created_by").filter(name=name).first()
    if bundle is None:
        raise BundleNotFound(BUNDLE_NOT_FOUND.format(name=name))
    return bundle


def access_version(actor, name: str, version: str) -> BundleVersion:
    """Return version `version` of bundle `name`, or raise the matching not-found error."""
    bundle = access_bundle(actor, name)
    found = (
        BundleVersion.objects.filter(bundle=bundle, version=version)
        .select_related("bundle", "author", "parent")
        .defer("parent__files", "parent__content", "parent__manifest")
        .first()
    )
    if found is None:
        raise VersionNotFound(VERSION_NOT_FOUND.format(name=name, version=version))
    return found


def version_file(version: BundleVersion, path: str) -> str:
    """Return the source text of file `path` of `version`, or raise FileNotFound."""
    if path not in version.files:
        raise FileNotFound(
            FILE_NOT_FOUND.format(name=version.bundle.name, version=version.version, path=path)
        )
    return version.files[path]


def file_sizes(version: BundleVersion) -> list[dict]:
    """Return [{path, size}] of the version's files by path; size is the UTF-8 byte length."""
    return [{"path": path, "size": len(text.encode("utf-8"))} for path, text in sorted(version.files.items())]


def versions_of(bundle: Bundle) -> list[BundleVersion]:
    """Return the bundle's versions, highest semver first (authors loaded; files and content deferred)."""
    versions = list(
        BundleVersion.objects.filter(bundle=bundle).select_related("author").defer("files", "content")
    )
    return sorted(versions, key=lambda v: precedence_key(v.version), reverse=True)


def latest_version(bundle: Bundle) -> BundleVersion | None:
    """Return the bundle's highest version, or None."""
    versions = versions_of(bundle)
    return versions[0] if versions else None


def recent_versions(limit: int = 5) -> list[BundleVersion]:
    """Return the tenant's most recently pushed versions, newest first."""
    return list(
        BundleVersion.objects.select_related("bundle", "author")
        .defer("files", "content", "manifest")
        .order_by("-created_at", "-pk")[:limit]
    )


def access_draft(actor, name: str, draft_id: int) -> Draft:
    """Return `actor`'s draft `draft_id` of bundle `name`; anyone else's draft is not found."""
    draft = (
        Draft.objects.select_related("bundle", "base_version", "published_version")
        .defer("base_version__files", "base_version__content", "published_version__files")
        .filter(pk=draft_id, bundle__name=name, author=actor)
        .first()
    )
    if draft is None:
        raise DraftNotFound(DRAFT_NOT_FOUND.format(draft_id=draft_id, name=name))
    return draft


def open_drafts(actor, bundle: Bundle) -> list[Draft]:
    """Return `actor`'s unpublished drafts of `bundle`, most recently edited first."""
    return list(
        Draft.objects.filter(bundle=bundle, author=actor, published_version__isnull=True)
        .select_related("base_version")
        .only("pk", "created_at", "updated_at", "base_version__version", "bundle_id", "author_id")
        .order_by("-updated_at")
    )


def push_grantees(bundle: Bundle) -> list:
    """Return the users holding the push_version grant on `bundle` directly, by username."""
    users = get_users_with_perms(bundle, with_group_users=False, only_with_perms_in=[PUSH_CODENAME])
    return sorted(users, key=lambda user: user.get_username())


def grantee_named(username: str):
    """Return the active member `username` of the current tenant, or raise MemberNotFound."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or membership_of(user, current_tenant()) is None:
        raise MemberNotFound(MEMBER_NOT_FOUND.format(username=username))
    return user
