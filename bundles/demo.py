"""Demo content of bundles: the example bundles, pushed by the demo author (idempotent)."""

from django.conf import settings

from bundles.archive import BundleArchiveError, read_directory
from bundles.services import bundle_version_push
from contractor_site.errors import DomainError

EXAMPLES = ("claims-triage", "support-routing")


def seed_bundles(*, tenant, users: dict, stdout) -> None:
    """Push each example bundle as the demo `author`; the same content again changes nothing."""
    author = users["author"]
    for name in EXAMPLES:
        directory = settings.BASE_DIR / "examples" / name
        try:
            result = bundle_version_push(
                actor=author, name=name, files=read_directory(directory), can_create=True
            )
        except BundleArchiveError as error:
            stdout.write(f"  bundle {name}: not pushed, the directory is unreadable: {error}")
            continue
        except DomainError as error:
            stdout.write(f"  bundle {name}: not pushed ({error.code}): {error.message}")
            continue
        version = result.version
        outcome = "pushed" if result.created else "already stored"
        stdout.write(f"  bundle {name} {version.version} {outcome} ({version.digest})")
