"""Bundle files for the Django-layer tests: the examples, bumped versions, broken copies, archives."""

import io
import re
import tarfile
from pathlib import Path

from django.db import transaction

from bundles.language.archive import read_directory
from bundles.services import bundle_version_push

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
CLAIMS = "claims-triage"
SUPPORT = "support-routing"


def example_files(name: str = CLAIMS) -> dict[str, str]:
    """Return the files of example bundle `name`."""
    return read_directory(EXAMPLES / name)


def with_version(files: dict[str, str], version: str) -> dict[str, str]:
    """Return a copy of `files` whose bundle.yaml says `version`."""
    manifest = re.sub(r"(?m)^version: .*$", f"version: {version}", files["bundle.yaml"])
    return {**files, "bundle.yaml": manifest}


def with_description(files: dict[str, str], description: str) -> dict[str, str]:
    """Return a copy of `files` whose bundle.yaml has another description (so another digest)."""
    manifest = re.sub(r"(?m)^description: .*$", f"description: {description}", files["bundle.yaml"])
    return {**files, "bundle.yaml": manifest}


def broken_files() -> dict[str, str]:
    """Return claims-triage with a CEL syntax error and a template reading a field Claim does not have."""
    files = example_files()
    policy, template = "policies/amount-limit.yaml", "templates/triage.yaml"
    return {
        **files,
        policy: files[policy].replace("input.amount > 100000", "input.amount >"),
        template: files[template].replace("input.claim_id", "input.policy_number"),
    }


def tar_gz(
    files: dict[str, str], *, top: str | None = CLAIMS, extra: dict[str, bytes] | None = None
) -> bytes:
    """Return a .tar.gz of `files` under directory `top`; `extra` adds raw members by exact name."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = {(f"{top}/{path}" if top else path): text.encode() for path, text in files.items()}
        for name, data in {**members, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def push(actor, files: dict[str, str] | None = None, *, name: str = CLAIMS):
    """Push `files` (default: the claims-triage example) as `actor`, who may create bundles."""
    with transaction.atomic():
        return bundle_version_push(
            actor=actor, name=name, files=files or example_files(name), can_create=True
        )
