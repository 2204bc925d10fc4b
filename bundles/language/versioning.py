"""Semantic versions (semver 2.0.0): parsing and precedence."""

import re

SEMVER = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class InvalidVersion(ValueError):
    """The text is not a semantic version."""


def is_semver(text: str) -> bool:
    """Return whether `text` is a semantic version."""
    return bool(SEMVER.match(text or ""))


def precedence_key(text: str) -> tuple:
    """Return a sort key that orders versions by semver precedence (build metadata ignored)."""
    match = SEMVER.match(text or "")
    if match is None:
        raise InvalidVersion(text)
    major, minor, patch, prerelease, _build = match.groups()
    if prerelease is None:
        # A release ranks above every pre-release of the same core version.
        release_part: tuple = (1,)
    else:
        identifiers = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in prerelease.split(".")
        )
        release_part = (0, identifiers)
    return (int(major), int(minor), int(patch), release_part)
