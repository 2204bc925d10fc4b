"""Bundle directories on disk: the manifest name and a reproducible .tar.gz to push."""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

from cli.errors import UsageError

MANIFEST_FILE = "bundle.yaml"


ARCHIVE_FILENAME = "bundle.tar.gz"


SKIPPED_DIRECTORIES = frozenset({".git", "__MACOSX"})


MANIFEST_NAME = re.compile(
    r"""^name:[ \t]*["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?[ \t]*(?:#.*)?$""", re.MULTILINE
)


NOT_A_DIRECTORY_MESSAGE = "{path} is not a directory"


NO_BUNDLE_NAME_MESSAGE = "cannot read the bundle name from {path}; pass --name"


def manifest_name(directory: Path) -> str | None:
    """Return the top-level ``name:`` of the directory's bundle.yaml, or None."""
    try:
        text = (directory / MANIFEST_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = MANIFEST_NAME.search(text)
    return match.group(1) if match else None


def bundle_paths(directory: Path) -> Iterator[Path]:
    """Yield every entry to archive under ``directory`` in a stable order (skipping .git and __MACOSX)."""
    for root, subdirectories, filenames in os.walk(directory):
        subdirectories[:] = sorted(name for name in subdirectories if name not in SKIPPED_DIRECTORIES)
        # os.walk does not descend into linked directories: archive the link so the server refuses it.
        for name in subdirectories:
            if Path(root, name).is_symlink():
                yield Path(root, name)
        yield from (Path(root, name) for name in sorted(filenames))


def bundle_archive(directory: Path) -> bytes:
    """Return a reproducible .tar.gz of the bundle directory (paths relative to it, no owner, no times)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in bundle_paths(directory):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(directory).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                info.mode = 0o644
                with path.open("rb") as content:
                    archive.addfile(info, content)
            else:
                archive.addfile(info)  # links and special files: the server refuses them precisely
    return buffer.getvalue()


def bundle_directory(value: str) -> Path:
    """Return the bundle directory given on the command line; raise UsageError when it is not one."""
    directory = Path(value)
    if not directory.is_dir():
        raise UsageError(NOT_A_DIRECTORY_MESSAGE.format(path=value))
    return directory
