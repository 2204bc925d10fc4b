"""The bundle digest: sha256 over RFC 8785 canonical JSON of the parsed files, blind to YAML formatting."""

import hashlib
import re
from pathlib import Path

from bundles.language.archive import read_directory
from bundles.language.checks import validate_files
from bundles.language.digest import DIGEST_PREFIX, bundle_digest, canonical_bytes

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "claims-triage"

# The example's manifest and one policy rewritten: other key order, flow vs block style, quoting,
# comments, 0.0 for 0 — the same meaning.
REFORMATTED_MANIFEST = """\
# reformatted on purpose
name: "claims-triage"
apiVersion: 'contractor/v1'
description: >-
  Route insurance claims
  to the right queue
version: "1.2.0"
pipelines:
- template: triage
  name: triage
  output: TriageDecision
  input: Claim
  policies:
  - amount-limit
  - no-pii-to-model
  - long-description
  - allowed-queues
  model:
    max_tokens: 256
    seed: 7
    temperature: 0.0
    name: dev-model
    endpoint: default
"""
REFORMATTED_POLICY = """\
{"message": "Claims above 100k go to a human adjuster", "when": "input.amount > 100000",
 "effect": "deny", "stage": "pre", "name": "amount-limit"}  # JSON is YAML too
"""


def content_of(**changes: str) -> dict:
    """Return the parsed content of the example with some files replaced."""
    files = read_directory(EXAMPLE) | changes
    result = validate_files(files)
    assert result.errors == []
    return result.content


def test_digest_is_sha256_of_the_canonical_bytes():
    content = content_of()
    digest = bundle_digest(content)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert digest == DIGEST_PREFIX + hashlib.sha256(canonical_bytes(content)).hexdigest()


def test_canonical_bytes_sort_keys_and_drop_whitespace():
    assert canonical_bytes({"b.yaml": {"z": 1, "a": [1.0, "x"]}, "a.yaml": {}}) == (
        b'{"a.yaml":{},"b.yaml":{"a":[1,"x"],"z":1}}'
    )


def test_yaml_formatting_does_not_change_the_digest():
    original = content_of()
    reformatted = content_of(
        **{"bundle.yaml": REFORMATTED_MANIFEST, "policies/amount-limit.yaml": REFORMATTED_POLICY}
    )
    assert bundle_digest(reformatted) == bundle_digest(original)


def test_a_change_of_meaning_changes_the_digest():
    changed_policy = REFORMATTED_POLICY.replace("100000", "100001")
    assert bundle_digest(content_of(**{"policies/amount-limit.yaml": changed_policy})) != bundle_digest(
        content_of()
    )


def test_moving_a_file_changes_the_digest():
    content = content_of()
    moved = dict(content)
    moved["policies/limits.yaml"] = moved.pop("policies/amount-limit.yaml")
    assert bundle_digest(moved) != bundle_digest(content)
