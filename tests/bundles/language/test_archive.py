"""Reading bundles from .tar.gz archives and directories: limits, unsafe paths, links, encodings."""

import gzip
import io
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from bundles.language.archive import (
    ABSOLUTE_PATH,
    ARCHIVE_TOO_LARGE,
    BAD_ARCHIVE,
    FILE_TOO_LARGE,
    LINK_NOT_ALLOWED,
    MAX_ARCHIVE_BYTES,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_TAR_STREAM_BYTES,
    MESSAGE_LINK_NOT_ALLOWED,
    NOT_UTF8,
    PATH_TRAVERSAL,
    SPECIAL_FILE,
    TOO_MANY_FILES,
    UNEXPECTED_FILE,
    BundleArchiveError,
    read_archive,
    read_directory,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "claims-triage"
MANIFEST = "apiVersion: contractor/v1\nname: tiny\nversion: 1.0.0\n"


def tarball(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """Return a .tar.gz of (name, bytes) regular files and ready-made TarInfo entries (links, devices)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    """Return a TarInfo of a non-regular member (symlink, hard link, device)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def codes_of(excinfo: pytest.ExceptionInfo[BundleArchiveError]) -> list[tuple[str, str]]:
    """Return the (code, file) of every error raised."""
    return [(error.code, error.file) for error in excinfo.value.errors]


def test_archive_with_parent_directory_segment_is_refused():
    data = tarball([("bundle.yaml", MANIFEST.encode()), ("entities/../../evil.yaml", b"x: 1\n")])
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(PATH_TRAVERSAL, "entities/../../evil.yaml")]


def test_archive_with_absolute_path_is_refused():
    data = tarball([("bundle.yaml", MANIFEST.encode()), ("/etc/evil.yaml", b"x: 1\n")])
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(ABSOLUTE_PATH, "/etc/evil.yaml")]


def test_archive_with_symlink_is_refused():
    data = tarball(
        [("bundle.yaml", MANIFEST.encode()), special("ontology.yaml", tarfile.SYMTYPE, "/etc/passwd")]
    )
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(LINK_NOT_ALLOWED, "ontology.yaml")]
    assert excinfo.value.errors[0].message == MESSAGE_LINK_NOT_ALLOWED


def test_archive_with_hard_link_is_refused():
    data = tarball(
        [("bundle.yaml", MANIFEST.encode()), special("ontology.yaml", tarfile.LNKTYPE, "bundle.yaml")]
    )
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(LINK_NOT_ALLOWED, "ontology.yaml")]


def test_archive_with_device_or_fifo_is_refused():
    data = tarball([special("ontology.yaml", tarfile.CHRTYPE), special("suites/a.yaml", tarfile.FIFOTYPE)])
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(SPECIAL_FILE, "ontology.yaml"), (SPECIAL_FILE, "suites/a.yaml")]


def test_archive_with_too_many_files_is_refused_once():
    members = [(f"suites/case-{index}.yaml", b"name: x\n") for index in range(MAX_FILES + 5)]
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(tarball(members))
    assert codes_of(excinfo) == [(TOO_MANY_FILES, "")]


def test_archive_with_a_file_over_the_size_limit_is_refused():
    data = tarball([("bundle.yaml", MANIFEST.encode()), ("suites/big.yaml", b"#" * (MAX_FILE_BYTES + 1))])
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(FILE_TOO_LARGE, "suites/big.yaml")]


def test_archive_whose_files_add_up_past_the_total_limit_is_refused():
    members = [(f"suites/part-{index}.yaml", b"#" * MAX_FILE_BYTES) for index in range(6)]
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(tarball(members))
    assert codes_of(excinfo) == [(ARCHIVE_TOO_LARGE, "")]


def test_compressed_archive_over_the_upload_limit_is_refused_before_reading():
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(b"\0" * (MAX_ARCHIVE_BYTES + 1))
    assert codes_of(excinfo) == [(ARCHIVE_TOO_LARGE, "")]


def test_gzip_bomb_stops_at_the_decompression_cap():
    # 64 MiB of zeros compress to ~64 KiB: the reader must stop at the cap, not inflate it all.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    assert len(bomb) < MAX_ARCHIVE_BYTES < MAX_TAR_STREAM_BYTES
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(bomb)
    assert codes_of(excinfo) == [(ARCHIVE_TOO_LARGE, "")]


def test_data_that_is_not_gzip_is_a_bad_archive():
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(b"PK\x03\x04 this is a zip file")
    assert codes_of(excinfo) == [(BAD_ARCHIVE, "")]


def test_gzip_that_is_not_a_tar_is_a_bad_archive():
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(gzip.compress(b"just some text, not a tar stream" * 40))
    assert codes_of(excinfo) == [(BAD_ARCHIVE, "")]


def test_file_that_is_not_utf8_is_refused():
    data = tarball([("bundle.yaml", MANIFEST.encode()), ("templates/t.yaml", b"prompt: caf\xe9\n")])
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(NOT_UTF8, "templates/t.yaml")]


def test_files_other_than_yaml_and_readme_are_refused():
    data = tarball(
        [("bundle.yaml", MANIFEST.encode()), ("README.md", b"# tiny\n"), ("run.sh", b"rm -rf /\n")]
    )
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert codes_of(excinfo) == [(UNEXPECTED_FILE, "run.sh")]


def test_every_problem_is_reported_together():
    data = tarball(
        [
            ("../escape.yaml", b"x: 1\n"),
            special("link.yaml", tarfile.SYMTYPE, "bundle.yaml"),
            ("policies/p.yaml", b"\xff\xfe"),
            ("notes.txt", b"hello"),
        ]
    )
    with pytest.raises(BundleArchiveError) as excinfo:
        read_archive(data)
    assert sorted(codes_of(excinfo)) == [
        (LINK_NOT_ALLOWED, "link.yaml"),
        (NOT_UTF8, "policies/p.yaml"),
        (PATH_TRAVERSAL, "../escape.yaml"),
        (UNEXPECTED_FILE, "notes.txt"),
    ]


def test_well_known_junk_is_ignored():
    data = tarball(
        [
            ("bundle.yaml", MANIFEST.encode()),
            (".DS_Store", b"\x00\x01binary"),
            ("._bundle.yaml", b"\x00\x05\x16\x07appledouble"),
            (".git/config", b"[core]\n"),
            ("entities/.DS_Store", b"\x00"),
        ]
    )
    assert read_archive(data) == {"bundle.yaml": MANIFEST}


def test_single_top_level_directory_is_stripped():
    data = tarball(
        [("claims-triage/bundle.yaml", MANIFEST.encode()), ("claims-triage/suites/a.yaml", b"a: 1\n")]
    )
    assert read_archive(data) == {"bundle.yaml": MANIFEST, "suites/a.yaml": "a: 1\n"}


def test_kind_directory_alone_at_top_level_is_not_stripped():
    data = tarball([("suites/a.yaml", b"a: 1\n")])
    assert read_archive(data) == {"suites/a.yaml": "a: 1\n"}


def test_tar_of_the_example_directory_reads_like_the_directory():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(EXAMPLE, arcname="claims-triage")
    assert read_archive(buffer.getvalue()) == read_directory(EXAMPLE)


def test_directory_with_symlink_is_refused(tmp_path):
    (tmp_path / "bundle.yaml").write_text(MANIFEST)
    (tmp_path / "entities").mkdir()
    os.symlink("/etc/hostname", tmp_path / "entities" / "host.yaml")
    os.symlink(tmp_path / "entities", tmp_path / "policies")
    with pytest.raises(BundleArchiveError) as excinfo:
        read_directory(tmp_path)
    assert sorted(codes_of(excinfo)) == [
        (LINK_NOT_ALLOWED, "entities/host.yaml"),
        (LINK_NOT_ALLOWED, "policies"),
    ]


def test_directory_ignores_git_and_reads_utf8(tmp_path):
    (tmp_path / "bundle.yaml").write_text(MANIFEST)
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "objects" / "pack").write_bytes(b"\xff" * 10)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text("prompt: Olá {{ input.name }}\n", encoding="utf-8")
    assert read_directory(tmp_path) == {
        "bundle.yaml": MANIFEST,
        "templates/t.yaml": "prompt: Olá {{ input.name }}\n",
    }


def test_directory_with_file_that_is_not_utf8_is_refused(tmp_path):
    (tmp_path / "bundle.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(BundleArchiveError) as excinfo:
        read_directory(tmp_path)
    assert codes_of(excinfo) == [(NOT_UTF8, "bundle.yaml")]


def test_path_that_is_not_a_directory_is_refused(tmp_path):
    with pytest.raises(BundleArchiveError) as excinfo:
        read_directory(tmp_path / "missing")
    assert [error.code for error in excinfo.value.errors] == [BAD_ARCHIVE]
