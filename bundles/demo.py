"""Demo content of bundles: the example bundles, pushed by the demo author (idempotent)."""

from django.conf import settings

from bundles.language.archive import BundleArchiveError, read_directory
from bundles.services import bundle_version_push
from core.errors import DomainError

EXAMPLES = ("claims-triage", "support-routing")
# The demo also shows an earlier release of claims-triage, so that diff and rollback have something to show:
# the same bundle at 1.1.0 with a terser prompt.
EARLIER_RELEASES = {
    "claims-triage": {
        "version": ("version: 1.2.0", "version: 1.1.0"),
        "templates/triage.yaml": (
            "Claim {{ input.claim_id }} for {{ input.amount }}:",
            "Claim {{ input.claim_id }}:",
        ),
    }
}


def earlier_release(name: str, files: dict[str, str]) -> dict[str, str] | None:
    """Return the files of the demo's earlier release of bundle `name`, or None."""
    edits = EARLIER_RELEASES.get(name)
    if edits is None:
        return None
    earlier = dict(files)
    old_version, new_version = edits["version"]
    earlier["bundle.yaml"] = earlier["bundle.yaml"].replace(old_version, new_version)
    for path, (old, new) in edits.items():
        if path != "version":
            earlier[path] = earlier[path].replace(old, new)
    return earlier


def seed_bundles(*, tenant, users: dict, stdout) -> None:
    """Push each example bundle as the demo `author`; the same content again changes nothing."""
    for name in EXAMPLES:
        directory = settings.BASE_DIR / "examples" / name
        try:
            files = read_directory(directory)
        except BundleArchiveError as error:
            stdout.write(f"  bundle {name}: not pushed, the directory is unreadable: {error}")
            continue
        earlier = earlier_release(name, files)
        for release in ([earlier] if earlier else []) + [files]:
            push_demo_release(name, release, author=users["author"], stdout=stdout)


def push_demo_release(name: str, files: dict[str, str], *, author, stdout) -> None:
    """Push one release of a demo bundle and say what happened."""
    try:
        result = bundle_version_push(actor=author, name=name, files=files, can_create=True)
    except DomainError as error:
        stdout.write(f"  bundle {name}: not pushed ({error.code}): {error.message}")
        return
    version = result.version
    outcome = "pushed" if result.created else "already stored"
    stdout.write(f"  bundle {name} {version.version} {outcome} ({version.digest})")
