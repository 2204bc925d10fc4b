"""Check a bundle's files and report every error at once, each with file, path, line and column.

`validate_files` parses every YAML file into a node tree (`documents`), checks each file against its JSON
Schema (`schema`), then runs one check per file kind: names are unique per kind, references resolve
(concepts, entities, templates, policies, pipelines), CEL and Jinja parse, templates only read fields of
their pipelines' input entities, suite cases match their entities, and nothing looks like a credential.
Checking never stops at the first problem: users fix a bundle in one round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bundles.language import archive
from bundles.language.checks.context import BundleCheck, sequence
from bundles.language.checks.entity import check_entities
from bundles.language.checks.manifest import check_pipelines
from bundles.language.checks.ontology import check_ontology
from bundles.language.checks.policy import check_policies
from bundles.language.checks.schema import check_schemas
from bundles.language.checks.secrets import check_secrets
from bundles.language.checks.suite import check_suites
from bundles.language.checks.template import check_templates
from bundles.language.documents import (
    MANIFEST_FILE,
    README_KIND,
    REQUIRED_FILES,
    Findings,
    ParsedFile,
    file_kind,
    parse_yaml,
)
from bundles.language.errors import FILE_TOO_LARGE, MISSING_FILE, UNEXPECTED_FILE, WRONG_TYPE, BundleError
from bundles.language.fields import json_type
from bundles.language.schemas import ENTITY, MANIFEST, POLICY, TEMPLATE

MESSAGE_FILE_NOT_TEXT = "the file content must be text, got {actual}"
MESSAGE_MISSING_FILE = "the bundle has no {file}"
MESSAGE_UNEXPECTED_LOCATION = (
    "unexpected file: a bundle holds bundle.yaml, ontology.yaml, README.md and "
    "entities/, policies/, templates/, suites/ with one .yaml file each"
)


@dataclass
class ValidationResult:
    """The parsed content (path → value), every error found, and the manifest (None if unreadable)."""

    content: dict[str, Any]
    errors: list[BundleError]
    manifest: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        """Return whether the bundle has no error."""
        return not self.errors


def validate_files(files: dict[str, str]) -> ValidationResult:
    """Return the parsed content of a bundle's files and every error they contain."""
    bundle = BundleCheck(Findings(archive.limit_errors(files)))
    read_files(bundle, files)
    check_schemas(bundle)
    index_definitions(bundle)
    check_ontology(bundle)
    check_entities(bundle)
    check_policies(bundle)
    check_templates(bundle)
    check_pipelines(bundle)
    check_suites(bundle)
    check_secrets(bundle)
    return result(bundle)


def read_files(bundle: BundleCheck, files: dict[str, str]) -> None:
    """Parse every file that has a place in a bundle, reporting missing, misplaced and unreadable ones."""
    too_large = {error.file for error in bundle.findings.errors if error.code == FILE_TOO_LARGE}
    for path in sorted(files):
        if path not in too_large:
            read_file(bundle, path, files[path])
    for required in REQUIRED_FILES:
        if required not in files:
            bundle.report(MISSING_FILE, required, (), MESSAGE_MISSING_FILE.format(file=required))
    bundle.unreadable = {parsed.kind for parsed in bundle.parsed.values() if not parsed.usable}
    if MANIFEST_FILE not in bundle.parsed:
        bundle.unreadable.add(MANIFEST)


def read_file(bundle: BundleCheck, path: str, text: Any) -> None:
    """Check one file's path and parse it."""
    unsafe = archive.path_errors(path)
    if unsafe:
        bundle.findings.errors.extend(unsafe)
        return
    kind = file_kind(path)
    if kind is None:
        if not archive.is_junk(path):
            bundle.report(UNEXPECTED_FILE, path, (), MESSAGE_UNEXPECTED_LOCATION)
        return
    if not isinstance(text, str):
        bundle.report(WRONG_TYPE, path, (), MESSAGE_FILE_NOT_TEXT.format(actual=json_type(text)))
        return
    parsed = ParsedFile(path, kind, text)
    bundle.parsed[path] = parsed
    if kind != README_KIND:
        parse_yaml(parsed, bundle.findings)


def index_definitions(bundle: BundleCheck) -> None:
    """Collect the named definitions of each kind, reporting duplicate names."""
    for kind, registry in (
        (ENTITY, bundle.entities),
        (POLICY, bundle.policies),
        (TEMPLATE, bundle.templates),
    ):
        for parsed in bundle.yaml_files(kind):
            bundle.define(registry, kind, parsed, (), parsed.value)
    manifest = bundle.manifest()
    if manifest is not None:
        for index, pipeline in enumerate(sequence(manifest.value.get("pipelines"))):
            bundle.define(bundle.pipelines, "pipeline", manifest, ("pipelines", index), pipeline)


def result(bundle: BundleCheck) -> ValidationResult:
    """Return the content read and the errors sorted by file and position."""
    content = {
        path: parsed.text if parsed.kind == README_KIND else parsed.value
        for path, parsed in sorted(bundle.parsed.items())
        if parsed.usable or parsed.kind == README_KIND
    }
    manifest = bundle.manifest()
    errors = sorted(
        bundle.findings.errors, key=lambda e: (e.file, e.line or 0, e.column or 0, e.path, e.code, e.message)
    )
    return ValidationResult(content, errors, manifest.value if manifest else None)
