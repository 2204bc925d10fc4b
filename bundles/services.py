"""Writes of bundles: pushing immutable versions, drafts."""

from dataclasses import dataclass

from django.db import transaction
from guardian.shortcuts import assign_perm

from audit.services import record
from bundles.digest import bundle_digest
from bundles.exceptions import (
    BUNDLE_INVALID,
    CREATE_NOT_ALLOWED,
    NAME_MISMATCH,
    PUSH_NOT_ALLOWED,
    VERSION_CONFLICT,
    VERSION_NOT_GREATER,
    BundleInvalid,
    CreateNotAllowed,
    NameMismatch,
    PushNotAllowed,
    VersionConflict,
    VersionNotGreater,
)
from bundles.models import Bundle, BundleVersion
from bundles.selectors import latest_version
from bundles.validation import validate_files
from bundles.versioning import precedence_key

PUSH_PERMISSION = "bundles.push_version"


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


def bundle_version_push(*, actor, name: str, files: dict[str, str], can_create: bool) -> PushResult:
    """Store `files` as a new immutable version of bundle `name` (created on first push).

    Idempotent for the same name, version and digest; a conflict for another digest; refused when the version
    is not greater than every existing one. `can_create` says whether the actor's roles allow new bundles.
    """
    result = validate_for_push(name, files)
    digest = bundle_digest(result.content)
    version_text = str(result.manifest["version"])
    with transaction.atomic():
        bundle = Bundle.objects.select_for_update().filter(name=name).first()
        if bundle is None:
            if not can_create:
                raise CreateNotAllowed(CREATE_NOT_ALLOWED)
            bundle = bundle_create(actor=actor, name=name, description=result.manifest.get("description", ""))
        elif not actor.has_perm(PUSH_PERMISSION, bundle):
            raise PushNotAllowed(PUSH_NOT_ALLOWED.format(name=name))
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
        record(
            actor=actor,
            action="bundle.version_pushed",
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


def bundle_create(*, actor, name: str, description: str = "") -> Bundle:
    """Create bundle `name`; its creator may push its versions."""
    with transaction.atomic():
        bundle = Bundle.objects.create(name=name, description=description, created_by=actor)
        assign_perm("push_version", actor, bundle)
        record(actor=actor, action="bundle.created", target=bundle, data={"bundle": name})
    return bundle


def bundle_push_grant(*, actor, bundle: Bundle, user, granted: bool) -> None:
    """Grant or revoke `user`'s push_version on `bundle` (admins)."""
    from guardian.shortcuts import remove_perm

    with transaction.atomic():
        if granted:
            assign_perm("push_version", user, bundle)
        else:
            remove_perm("push_version", user, bundle)
        record(
            actor=actor,
            action="bundle.push_grant_changed",
            target=bundle,
            data={"bundle": bundle.name, "user": user.get_username(), "granted": granted},
        )
