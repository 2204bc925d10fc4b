"""Read a bundle from a directory or a .tar.gz into `{path: text}`, refusing anything unsafe.

Reading is the first line of defence for pushed bundles: sizes are bounded before anything is held in
memory (the gzip stream is decompressed with a cap, so a zip bomb stops at the cap), paths must stay inside
the bundle, links and device files are refused, and every file must be UTF-8 text. All problems are collected
and raised together as one `BundleArchiveError`.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import stat
import tarfile
import zlib
from pathlib import Path

from bundles.language.errors import (
    ABSOLUTE_PATH,
    ARCHIVE_TOO_LARGE,
    BAD_ARCHIVE,
    FILE_TOO_LARGE,
    LINK_NOT_ALLOWED,
    NOT_UTF8,
    PATH_TRAVERSAL,
    SPECIAL_FILE,
    TOO_MANY_FILES,
    UNEXPECTED_FILE,
    BundleArchiveError,
    BundleError,
)

KiB = 1024
MiB = 1024 * KiB

MAX_ARCHIVE_BYTES = 5 * MiB  # compressed size of an uploaded .tar.gz
MAX_TOTAL_BYTES = 5 * MiB  # sum of the uncompressed bundle files
MAX_FILE_BYTES = 1 * MiB  # one uncompressed bundle file
MAX_FILES = 500
# The decompressed tar stream also holds headers and padding (up to ~1.5 KiB per member).
MAX_TAR_STREAM_BYTES = MAX_TOTAL_BYTES + (MAX_FILES + 100) * 2 * KiB

YAML_SUFFIXES = (".yaml", ".yml")
README_NAME = "README.md"
JUNK_DIRECTORIES = frozenset({".git", "__MACOSX"})
JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", ".gitignore", ".gitattributes"})
APPLEDOUBLE_PREFIX = "._"  # macOS tar adds these resource-fork companions next to every file
KIND_DIRECTORIES = ("entities", "policies", "templates", "suites")

MESSAGE_BAD_ARCHIVE = "not a readable .tar.gz archive: {reason}"
MESSAGE_ARCHIVE_TOO_LARGE = "the archive is larger than {limit} bytes"
MESSAGE_BUNDLE_TOO_LARGE = "the bundle files add up to more than {limit} bytes"
MESSAGE_TOO_MANY_FILES = "the bundle has more than {limit} files"
MESSAGE_FILE_TOO_LARGE = "the file is {size} bytes; the limit is {limit}"
MESSAGE_PATH_TRAVERSAL = "the path leaves the bundle ('..' is not allowed)"
MESSAGE_ABSOLUTE_PATH = "absolute paths are not allowed"
MESSAGE_LINK_NOT_ALLOWED = "symbolic and hard links are not allowed"
MESSAGE_SPECIAL_FILE = "device files, FIFOs and sockets are not allowed"
MESSAGE_NOT_UTF8 = "the file is not UTF-8 text (byte {position} is invalid)"
MESSAGE_UNEXPECTED_FILE = "only YAML files (.yaml, .yml) and README.md belong in a bundle"
MESSAGE_NOT_A_DIRECTORY = "not a directory"


def read_directory(path: str | os.PathLike[str]) -> dict[str, str]:
    """Return the bundle files under a directory as `{relative posix path: text}`."""
    root = Path(path)
    if not root.is_dir() or root.is_symlink():
        raise BundleArchiveError([BundleError(BAD_ARCHIVE, str(path), "", MESSAGE_NOT_A_DIRECTORY)])
    reader = _BundleReader()
    for directory, subdirectories, filenames in os.walk(root):
        relative_directory = Path(directory).relative_to(root).as_posix()
        # Prune junk (e.g. .git) and links in place so os.walk never descends into them.
        for name in list(subdirectories):
            member = _join(relative_directory, name)
            if name in JUNK_DIRECTORIES:
                subdirectories.remove(name)
            elif Path(directory, name).is_symlink():
                subdirectories.remove(name)
                reader.refuse(member, LINK_NOT_ALLOWED, MESSAGE_LINK_NOT_ALLOWED)
        for name in sorted(filenames):
            reader.add_directory_entry(_join(relative_directory, name), Path(directory, name))
    return reader.finish()


def read_archive(data: bytes) -> dict[str, str]:
    """Return the bundle files of a .tar.gz as `{relative posix path: text}`."""
    if len(data) > MAX_ARCHIVE_BYTES:
        message = MESSAGE_ARCHIVE_TOO_LARGE.format(limit=MAX_ARCHIVE_BYTES)
        raise BundleArchiveError([BundleError(ARCHIVE_TOO_LARGE, "", "", message)])
    tar_stream = _decompress(data)
    reader = _BundleReader(strip_top_directory=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_stream), mode="r:") as archive:
            for member in archive:
                reader.add_tar_member(archive, member)
    except tarfile.TarError as exc:
        reader.refuse("", BAD_ARCHIVE, MESSAGE_BAD_ARCHIVE.format(reason=exc))
    return reader.finish()


def limit_errors(files: dict[str, str]) -> list[BundleError]:
    """Return the count and size limit errors of bundle files that did not come through an archive."""
    errors = []
    if len(files) > MAX_FILES:
        errors.append(BundleError(TOO_MANY_FILES, "", "", MESSAGE_TOO_MANY_FILES.format(limit=MAX_FILES)))
    total = 0
    for path, text in files.items():
        size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else 0
        total += size
        if size > MAX_FILE_BYTES:
            message = MESSAGE_FILE_TOO_LARGE.format(size=size, limit=MAX_FILE_BYTES)
            errors.append(BundleError(FILE_TOO_LARGE, path, "", message))
    if total > MAX_TOTAL_BYTES:
        message = MESSAGE_BUNDLE_TOO_LARGE.format(limit=MAX_TOTAL_BYTES)
        errors.append(BundleError(ARCHIVE_TOO_LARGE, "", "", message))
    return errors


def path_errors(path: str) -> list[BundleError]:
    """Return the errors that make a bundle path unsafe (absolute, or leaving the bundle)."""
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        return [BundleError(ABSOLUTE_PATH, path, "", MESSAGE_ABSOLUTE_PATH)]
    if ".." in path.replace("\\", "/").split("/"):
        return [BundleError(PATH_TRAVERSAL, path, "", MESSAGE_PATH_TRAVERSAL)]
    return []


def is_junk(path: str) -> bool:
    """Return whether a path is well-known editor/VCS/OS litter that bundles silently drop."""
    parts = path.split("/")
    name = parts[-1]
    return (
        any(part in JUNK_DIRECTORIES for part in parts[:-1])
        or name in JUNK_FILES
        or name.startswith(APPLEDOUBLE_PREFIX)
    )


def is_bundle_file_name(path: str) -> bool:
    """Return whether a file of this name may be part of a bundle (YAML, or the README)."""
    return path.endswith(YAML_SUFFIXES) or path == README_NAME


def _decompress(data: bytes) -> bytes:
    """Return the tar stream inside a gzip, stopping at the size cap (zip-bomb defence)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            tar_stream = stream.read(MAX_TAR_STREAM_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise BundleArchiveError(
            [BundleError(BAD_ARCHIVE, "", "", MESSAGE_BAD_ARCHIVE.format(reason=exc))]
        ) from None
    if len(tar_stream) > MAX_TAR_STREAM_BYTES:
        message = MESSAGE_BUNDLE_TOO_LARGE.format(limit=MAX_TOTAL_BYTES)
        raise BundleArchiveError([BundleError(ARCHIVE_TOO_LARGE, "", "", message)])
    return tar_stream


def _join(directory: str, name: str) -> str:
    """Return a posix path relative to the bundle root."""
    return name if directory in ("", ".") else f"{directory}/{name}"


def _normalise_member_name(name: str) -> str:
    """Return a tar member name without leading './' or trailing '/'."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


class _BundleReader:
    """Collect bundle files one by one, enforcing limits and recording every refusal."""

    def __init__(self, *, strip_top_directory: bool = False):
        self.strip_top_directory = strip_top_directory
        self.raw: dict[str, bytes] = {}
        self.errors: list[BundleError] = []
        self.total_bytes = 0
        self.file_count = 0
        self.over_total = False
        self.over_count = False

    def refuse(self, path: str, code: str, message: str) -> None:
        """Record one problem with one file."""
        self.errors.append(BundleError(code, path, "", message))

    def add_directory_entry(self, path: str, filesystem_path: Path) -> None:
        """Read one file found while walking a directory."""
        if is_junk(path):
            return
        mode = filesystem_path.lstat().st_mode
        if stat.S_ISLNK(mode):
            self.refuse(path, LINK_NOT_ALLOWED, MESSAGE_LINK_NOT_ALLOWED)
        elif not stat.S_ISREG(mode):
            self.refuse(path, SPECIAL_FILE, MESSAGE_SPECIAL_FILE)
        elif self.admit(path, filesystem_path.lstat().st_size):
            self.raw[path] = filesystem_path.read_bytes()

    def add_tar_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Read one member of a tar archive."""
        path = _normalise_member_name(member.name)
        if not path or member.isdir():
            return
        unsafe = path_errors(path)
        if unsafe:
            self.errors.extend(unsafe)
        elif is_junk(path):
            return
        elif member.issym() or member.islnk():
            self.refuse(path, LINK_NOT_ALLOWED, MESSAGE_LINK_NOT_ALLOWED)
        elif not member.isreg():
            self.refuse(path, SPECIAL_FILE, MESSAGE_SPECIAL_FILE)
        elif self.admit(path, member.size):
            extracted = archive.extractfile(member)
            self.raw[path] = extracted.read(MAX_FILE_BYTES + 1) if extracted else b""

    def admit(self, path: str, size: int) -> bool:
        """Return whether a regular file of this size still fits the limits (recording why not)."""
        self.file_count += 1
        if self.file_count > MAX_FILES:
            if not self.over_count:
                self.over_count = True
                self.refuse("", TOO_MANY_FILES, MESSAGE_TOO_MANY_FILES.format(limit=MAX_FILES))
            return False
        if size > MAX_FILE_BYTES:
            self.refuse(path, FILE_TOO_LARGE, MESSAGE_FILE_TOO_LARGE.format(size=size, limit=MAX_FILE_BYTES))
            return False
        self.total_bytes += size
        if self.total_bytes > MAX_TOTAL_BYTES:
            if not self.over_total:
                self.over_total = True
                message = MESSAGE_BUNDLE_TOO_LARGE.format(limit=MAX_TOTAL_BYTES)
                self.refuse("", ARCHIVE_TOO_LARGE, message)
            return False
        return True

    def finish(self) -> dict[str, str]:
        """Return the decoded files, or raise every problem found."""
        files: dict[str, str] = {}
        for path, content in sorted(self._stripped().items()):
            if not is_bundle_file_name(path):
                self.refuse(path, UNEXPECTED_FILE, MESSAGE_UNEXPECTED_FILE)
                continue
            try:
                files[path] = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.refuse(path, NOT_UTF8, MESSAGE_NOT_UTF8.format(position=exc.start))
        if self.errors:
            raise BundleArchiveError(self.errors)
        return files

    def _stripped(self) -> dict[str, bytes]:
        """Return the files with a single wrapping top-level directory removed (`claims-triage/...`)."""
        if not self.strip_top_directory or not self.raw:
            return self.raw
        tops = {path.split("/", 1)[0] for path in self.raw}
        top = next(iter(tops))
        wrapped = all("/" in path for path in self.raw)
        if len(tops) != 1 or not wrapped or top in KIND_DIRECTORIES:
            return self.raw
        return {posixpath.relpath(path, top): content for path, content in self.raw.items()}
