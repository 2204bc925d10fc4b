"""Failure modes of bundle operations."""

from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

BUNDLE_INVALID = "The bundle has {count} error(s); each is listed in details."
BUNDLE_NOT_FOUND = "No bundle named {name!r}."
VERSION_NOT_FOUND = "Bundle {name!r} has no version {version!r}."
NAME_MISMATCH = "bundle.yaml names the bundle {manifest!r} but it was pushed to {name!r}."
VERSION_CONFLICT = "{name}@{version} already exists with digest {existing}; this content has digest {digest}."
VERSION_NOT_GREATER = (
    "{name}@{version} is not greater than the latest version {latest}; versions only move forward."
)
PUSH_NOT_ALLOWED = "You may not push versions of bundle {name!r} (needs the push_version grant on it)."
CREATE_NOT_ALLOWED = "Your roles do not allow creating bundles."
DRAFT_NOT_FOUND = "No draft {draft_id} of bundle {name!r}."


class BundleInvalid(ValidationFailed):
    """Validation found errors; details carry each {code, file, path, line, column, message}."""

    code = "bundle_invalid"


class BundleNotFound(NotFound):
    """No bundle of that name in this tenant (or not visible to the actor)."""

    code = "bundle_not_found"


class VersionNotFound(NotFound):
    """The bundle has no such version."""

    code = "version_not_found"


class DraftNotFound(NotFound):
    """No such draft of the bundle for this actor."""

    code = "draft_not_found"


class NameMismatch(ValidationFailed):
    """The manifest's name differs from the bundle it is pushed to."""

    code = "name_mismatch"


class VersionConflict(Conflict):
    """The same name and version were pushed before with another digest."""

    code = "version_conflict"


class VersionNotGreater(Conflict):
    """A new version must be greater (semver) than every existing one."""

    code = "version_not_greater"


class PushNotAllowed(PermissionDenied):
    """The actor lacks push_version on this bundle."""

    code = "push_not_allowed"


class CreateNotAllowed(PermissionDenied):
    """The actor's roles do not allow creating a bundle."""

    code = "create_not_allowed"


# --- Added by the bundles Django layer (API, console, drafts, grants) ---
ARCHIVE_INVALID = "The archive could not be read safely: {count} problem(s), each listed in details."
FILE_NOT_FOUND = "Version {name}@{version} has no file {path!r}."
MEMBER_NOT_FOUND = "No active member named {username!r} in this tenant."
DRAFT_PUBLISHED = "This draft was published as version {version}; start a new draft to change it further."
DRAFT_UNCHANGED = (
    "The draft is identical to version {version}; change something and bump `version` in bundle.yaml."
)
DRAFT_NO_VERSION_BUMP = (
    "bundle.yaml still says version {version}, which already exists; bump `version` to publish the draft."
)


class ArchiveInvalid(ValidationFailed):
    """An uploaded .tar.gz could not be read safely; details carry each {code, file, path, message}."""

    code = "archive_invalid"


class FileNotFound(NotFound):
    """The version has no file at that path."""

    code = "file_not_found"


class MemberNotFound(NotFound):
    """The user named in a grant is not an active member of the tenant."""

    code = "member_not_found"


class DraftPublished(Conflict):
    """The draft was already published; published drafts are read-only."""

    code = "draft_published"


class DraftUnchanged(Conflict):
    """Publishing the draft would store nothing new: it equals an existing version."""

    code = "draft_unchanged"
