"""Check every file for strings that look like credentials: they do not belong in a bundle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bundles.language.checks.context import BundleCheck
from bundles.language.documents import README_KIND, ParsedFile, Parts, source_position
from bundles.language.errors import SECRET_IN_BUNDLE

MESSAGE_SECRET = "this looks like {kind}; keep credentials out of bundles"  # noqa: S105 (a message)

SECRET_PATTERNS = (
    ("an API secret key (sk-...)", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Stripe secret key", re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("a CONTRACTOR runtime key", re.compile(r"\bck_[0-9a-f]{8}_[A-Za-z0-9_-]{40,64}")),
    ("a CONTRACTOR webhook secret", re.compile(r"\bwhsec_[A-Za-z0-9_-]{40,}")),
)


def check_secrets(bundle: BundleCheck) -> None:
    """Report strings that look like credentials, anywhere in any file."""
    for parsed in bundle.parsed.values():
        if parsed.kind == README_KIND:
            check_readme_secrets(bundle, parsed)
        elif parsed.value is not None:
            for parts, text in strings(parsed.value, ()):
                for kind, pattern in SECRET_PATTERNS:
                    if pattern.search(text):
                        bundle.report(SECRET_IN_BUNDLE, parsed, parts, MESSAGE_SECRET.format(kind=kind))


def check_readme_secrets(bundle: BundleCheck, parsed: ParsedFile) -> None:
    """Report credential-looking text in the README, by line."""
    for kind, pattern in SECRET_PATTERNS:
        found = source_position(parsed.text, pattern)
        if found:
            bundle.report(SECRET_IN_BUNDLE, parsed, (), MESSAGE_SECRET.format(kind=kind), position=found)


def strings(value: Any, parts: Parts) -> Iterator[tuple[Parts, str]]:
    """Yield every string (keys included) inside a parsed value with its location."""
    if isinstance(value, str):
        yield parts, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*parts, key), str(key)
            yield from strings(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*parts, index))
