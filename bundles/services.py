"""Writes of bundles: pushing immutable versions, push grants, drafts."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from guardian.shortcuts import assign_perm, get_user_perms, remove_perm

from audit.services import record
from bundles.actions import BundleAction
from bundles.exceptions import (
    BUNDLE_INVALID,
    CREATE_NOT_ALLOWED,
    DRAFT_NO_VERSION_BUMP,
    DRAFT_NOT_FOUND,
    DRAFT_PUBLISHED,
    DRAFT_UNCHANGED,
    MEMBER_NOT_FOUND,
    NAME_MISMATCH,
    PUSH_NOT_ALLOWED,
    VERSION_CONFLICT,
    VERSION_NOT_GREATER,
    BundleInvalid,
    CreateNotAllowed,
    DraftNotFound,
    DraftPublished,
    DraftUnchanged,
    MemberNotFound,
    NameMismatch,
    PushNotAllowed,
    VersionConflict,
    VersionNotGreater,
)
from bundles.language.checks import validate_files
from bundles.language.digest import bundle_digest
from bundles.language.versioning import precedence_key
from bundles.models import Bundle, BundleVersion, Draft
from bundles.selectors import latest_version
from governance.services import governed_change
from tenancy.roles import Capability
from tenancy.selectors import (
    current_tenant,
    holds_object_permission,
    membership_of,
    require_capability,
    require_membership,
)

PUSH_PERMISSION = "bundles.push_version"
PUSH_CODENAME = "push_version"
PUSH_GRANT_KIND = "bundle.push_grant"


@dataclass(frozen=True)
class PushResult:
    """The stored version and whether this push created it (False: same digest pushed before)."""

    version: BundleVersion
    created: bool


def validate_for_push(name: str, files: dict[str, str]):
    """Return the validation result of `files` pushed as bundle `name`, or raise BundleInvalid."""
    result = validate_files(files)
    if not result.valid:
        details = [error.to_dict() for error in result.errors]
        raise BundleInvalid(BUNDLE_INVALID.format(count=len(details)), details=details)
    if result.manifest["name"] != name:
        raise NameMismatch(NAME_MISMATCH.format(manifest=result.manifest["name"], name=name))
    return result


def member_rights(actor, *, can_create: bool, can_push: bool) -> tuple[bool, bool]:
    """Return (may create bundles, may push versions): the caller's flags, narrowed to the actor's roles.

    The service decides, not its callers: whatever a view passes, a member whose roles lack create_bundle or
    push_version gets neither, and a non-member is refused (NotAMember).
    """
    membership = require_membership(actor)
    return (
        can_create and membership.can(Capability.CREATE_BUNDLE),
        can_push and membership.can(Capability.PUSH_VERSION),
    )


def check_push_allowed(*, actor, bundle: Bundle | None, name: str, can_create: bool, can_push: bool) -> None:
    """Raise unless the actor may push to `bundle` (None: may create bundle `name`)."""
    can_create, can_push = member_rights(actor, can_create=can_create, can_push=can_push)
    if bundle is None:
        if not can_create:
            raise CreateNotAllowed(CREATE_NOT_ALLOWED)
    elif not (can_push and holds_object_permission(actor, PUSH_CODENAME, bundle)):
        raise PushNotAllowed(PUSH_NOT_ALLOWED.format(name=name))


def bundle_version_push(
    *, actor, name: str, files: dict[str, str], can_create: bool, can_push: bool = True
) -> PushResult:
    """Store `files` as a new immutable version of bundle `name` (created on first push).

    Idempotent for the same name, version and digest; a conflict for another digest; refused when the version
    is not greater than every existing one. `can_create` and `can_push` say whether the actor's roles allow
    creating bundles and pushing versions; pushing to an existing bundle also needs the push_version grant on
    it. Permissions are checked before the files are even validated, and again under the bundle's row lock.
    """
    can_create, can_push = member_rights(actor, can_create=can_create, can_push=can_push)
    check_push_allowed(
        actor=actor,
        bundle=Bundle.objects.filter(name=name).first(),
        name=name,
        can_create=can_create,
        can_push=can_push,
    )
    result = validate_for_push(name, files)
    digest = bundle_digest(result.content)
    version_text = str(result.manifest["version"])
    with transaction.atomic():
        bundle, created = _locked_bundle(
            actor=actor, name=name, manifest=result.manifest, can_create=can_create
        )
        if not created:
            check_push_allowed(
                actor=actor, bundle=bundle, name=name, can_create=can_create, can_push=can_push
            )
        existing = BundleVersion.objects.filter(bundle=bundle, version=version_text).first()
        if existing is not None:
            if existing.digest == digest:
                return PushResult(existing, created=False)
            raise VersionConflict(
                VERSION_CONFLICT.format(
                    name=name, version=version_text, existing=existing.digest, digest=digest
                )
            )
        parent = latest_version(bundle)
        if parent is not None and precedence_key(version_text) <= precedence_key(parent.version):
            raise VersionNotGreater(
                VERSION_NOT_GREATER.format(name=name, version=version_text, latest=parent.version)
            )
        version = BundleVersion.objects.create(
            bundle=bundle,
            version=version_text,
            digest=digest,
            description=result.manifest.get("description", ""),
            manifest=result.manifest,
            content=result.content,
            files=files,
            parent=parent,
            author=actor,
        )
        if bundle.description != version.description:
            # The bundle describes itself as its latest version does.
            bundle.description = version.description
            bundle.save(update_fields=["description"])
        record(
            actor=actor,
            action=BundleAction.VERSION_PUSHED,
            target=version,
            data={
                "bundle": name,
                "version": version_text,
                "digest": digest,
                "parent": parent.version if parent else None,
                "files": sorted(files),
            },
        )
    return PushResult(version, created=True)


def _locked_bundle(*, actor, name: str, manifest: dict, can_create: bool) -> tuple[Bundle, bool]:
    """Return (bundle `name` locked for this transaction, whether this call created it)."""
    bundle = Bundle.objects.select_for_update().filter(name=name).first()
    if bundle is not None:
        return bundle, False
    if not can_create:
        raise CreateNotAllowed(CREATE_NOT_ALLOWED)
    try:
        # A concurrent first push of the same name may win the race: then push to the bundle it created.
        with transaction.atomic():
            bundle = bundle_create(actor=actor, name=name, description=manifest.get("description", ""))
    except IntegrityError:
        return Bundle.objects.select_for_update().get(name=name), False
    return bundle, True


def bundle_create(*, actor, name: str, description: str = "") -> Bundle:
    """Create bundle `name`; its creator may push its versions."""
    with transaction.atomic():
        bundle = Bundle.objects.create(name=name, description=description, created_by=actor)
        assign_perm(PUSH_CODENAME, actor, bundle)
        record(actor=actor, action=BundleAction.CREATED, target=bundle, data={"bundle": name})
    return bundle


def bundle_push_grant(*, actor, bundle: Bundle, user, granted: bool):
    """Grant or revoke `user`'s push_version on `bundle` (admins); return whether anything changed, or the
    pending GovernanceChangeRequest when the grant needs another admin's approval.

    Repeating a grant or a revocation changes nothing and writes no audit record. Only an active member of
    the tenant can be granted; a revocation applies to anyone and at once. A grant is a loosening: it waits
    for an admin who is neither the requester nor the grantee, unless the tenant is still bootstrapping.
    """
    require_capability(actor, Capability.MANAGE_MEMBERSHIPS)
    if granted and membership_of(user, current_tenant()) is None:
        raise MemberNotFound(MEMBER_NOT_FOUND.format(username=user.get_username()))
    with transaction.atomic():
        target = {"bundle": bundle.name, "user": user.get_username()}
        before = push_grant_state(target)
        if granted == before["granted"]:
            return False
        change = governed_change(
            actor=actor,
            kind=PUSH_GRANT_KIND,
            target=target,
            before=before,
            proposed={"granted": granted},
            loosening=granted,
            summary=f"{'grant' if granted else 'revoke'} push_version on {bundle.name} "
            f"{'to' if granted else 'from'} {user.get_username()}",
            beneficiary=user if granted else None,
        )
        if change is not None:
            return change
        apply_push_grant(bundle, user, granted, actor=actor)
    return True


def apply_push_grant(bundle: Bundle, user, granted: bool, *, actor, approved_by=None) -> None:
    """Grant or revoke push_version and audit it."""
    if granted:
        assign_perm(PUSH_CODENAME, user, bundle)
    else:
        remove_perm(PUSH_CODENAME, user, bundle)
    data = {"bundle": bundle.name, "user": user.get_username(), "granted": granted}
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(actor=actor, action=BundleAction.PUSH_GRANT_CHANGED, target=bundle, data=data)


def push_grant_state(target: dict) -> dict:
    """Return whether the target user holds push_version on the target bundle directly."""
    bundle = Bundle.objects.get(name=target["bundle"])
    user = get_user_model().objects.filter(username=target["user"]).first()
    return {"granted": user is not None and PUSH_CODENAME in get_user_perms(user, bundle)}


def push_grant_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Apply an approved push grant or revocation."""
    bundle = Bundle.objects.select_for_update().get(name=target["bundle"])
    user = get_user_model().objects.get(username=target["user"])
    if proposed["granted"] and membership_of(user, current_tenant()) is None:
        raise MemberNotFound(MEMBER_NOT_FOUND.format(username=user.get_username()))
    apply_push_grant(bundle, user, proposed["granted"], actor=actor, approved_by=approved_by)


def draft_create(*, actor, bundle: Bundle, can_push: bool) -> Draft:
    """Start a draft of `bundle` for `actor`, copying the files of its latest version."""
    check_push_allowed(actor=actor, bundle=bundle, name=bundle.name, can_create=False, can_push=can_push)
    base = latest_version(bundle)
    base_files = BundleVersion.objects.values_list("files", flat=True).get(pk=base.pk) if base else {}
    with transaction.atomic():
        draft = Draft.objects.create(bundle=bundle, base_version=base, files=dict(base_files), author=actor)
        record(
            actor=actor,
            action=BundleAction.DRAFT_CREATED,
            target=draft,
            data={"bundle": bundle.name, "base_version": base.version if base else None},
        )
    return draft


def draft_save(*, actor, draft: Draft, files: dict[str, str]) -> Draft:
    """Replace the files of `actor`'s unpublished draft."""
    _check_draft_editable(actor, draft)
    with transaction.atomic():
        draft.files = dict(files)
        draft.save(update_fields=["files", "updated_at"])
    return draft


def draft_publish(*, actor, draft: Draft, can_create: bool, can_push: bool) -> PushResult:
    """Push `actor`'s draft as a new version of its bundle; the draft then becomes read-only.

    Refused (nothing stored) when the draft equals an existing version, or keeps an existing version number
    with other content.
    """
    _check_draft_editable(actor, draft)
    with transaction.atomic():
        try:
            result = bundle_version_push(
                actor=actor,
                name=draft.bundle.name,
                files=draft.files,
                can_create=can_create,
                can_push=can_push,
            )
        except VersionConflict as conflict:
            manifest_version = validate_files(draft.files).manifest["version"]
            raise VersionConflict(DRAFT_NO_VERSION_BUMP.format(version=manifest_version)) from conflict
        if not result.created:
            raise DraftUnchanged(DRAFT_UNCHANGED.format(version=result.version.version))
        draft.published_version = result.version
        draft.save(update_fields=["published_version", "updated_at"])
    return result


def draft_discard(*, actor, draft: Draft) -> None:
    """Delete `actor`'s draft (its history rows keep what it held)."""
    if draft.author_id != actor.pk:
        raise DraftNotFound(DRAFT_NOT_FOUND.format(draft_id=draft.pk, name=draft.bundle.name))
    with transaction.atomic():
        record(
            actor=actor,
            action=BundleAction.DRAFT_DISCARDED,
            target=draft,
            data={"bundle": draft.bundle.name, "published": draft.published_version_id is not None},
        )
        draft.delete()


def _check_draft_editable(actor, draft: Draft) -> None:
    """Raise unless `draft` is `actor`'s own and not yet published."""
    if draft.author_id != actor.pk:
        raise DraftNotFound(DRAFT_NOT_FOUND.format(draft_id=draft.pk, name=draft.bundle.name))
    if draft.published_version_id is not None:
        raise DraftPublished(DRAFT_PUBLISHED.format(version=draft.published_version.version))
