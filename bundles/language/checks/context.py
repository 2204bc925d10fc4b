"""What the checks of one bundle share: its parsed files, its named definitions and the findings so far."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bundles.language.documents import MANIFEST_FILE, Findings, ParsedFile, Parts, format_path
from bundles.language.errors import (
    DUPLICATE_NAME,
    UNKNOWN_ENTITY,
    UNKNOWN_PIPELINE,
    UNKNOWN_POLICY,
    UNKNOWN_TEMPLATE,
)
from bundles.language.schemas import ENTITY, MANIFEST, POLICY, TEMPLATE

MESSAGE_DUPLICATE_NAME = "{kind} '{name}' is already defined in {other}"
MESSAGE_DUPLICATE_IN_LIST = "'{name}' is listed more than once"
MESSAGE_UNKNOWN_ENTITY = "'{name}' is not an entity of the bundle"
MESSAGE_UNKNOWN_TEMPLATE = "'{name}' is not a template of the bundle"
MESSAGE_UNKNOWN_POLICY = "'{name}' is not a policy of the bundle"
MESSAGE_UNKNOWN_PIPELINE = "'{name}' is not a pipeline of bundle.yaml"
# Per kind referred to by name (pipelines are defined by the manifest): the error of a dangling reference.
REFERENCE_ERRORS = {
    ENTITY: (UNKNOWN_ENTITY, MESSAGE_UNKNOWN_ENTITY),
    TEMPLATE: (UNKNOWN_TEMPLATE, MESSAGE_UNKNOWN_TEMPLATE),
    POLICY: (UNKNOWN_POLICY, MESSAGE_UNKNOWN_POLICY),
    MANIFEST: (UNKNOWN_PIPELINE, MESSAGE_UNKNOWN_PIPELINE),
}


@dataclass
class Definition:
    """A named thing defined in a file (an entity, a policy, ...)."""

    name: str
    file: ParsedFile
    parts: Parts
    body: dict[str, Any] = field(default_factory=dict)


def mapping(value: Any) -> dict[str, Any]:
    """Return the value if it is a mapping, else an empty one (the schema already reported it)."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """Return the value if it is a list, else an empty one (the schema already reported it)."""
    return value if isinstance(value, list) else []


class BundleCheck:
    """One check run over a bundle's files: parsed files, definitions by kind, and what was found."""

    def __init__(self, findings: Findings):
        self.findings = findings
        self.report = findings.report
        self.parsed: dict[str, ParsedFile] = {}
        self.concepts: set[str] | None = None
        self.entities: dict[str, Definition] = {}
        self.policies: dict[str, Definition] = {}
        self.templates: dict[str, Definition] = {}
        self.pipelines: dict[str, Definition] = {}
        self.unreadable: set[str] = set()  # kinds with a file that did not parse into a mapping

    def yaml_files(self, kind: str | None = None) -> Iterator[ParsedFile]:
        """Yield the usable YAML files, of one kind when given, in path order."""
        for path in sorted(self.parsed):
            parsed = self.parsed[path]
            if parsed.usable and (kind is None or parsed.kind == kind):
                yield parsed

    def manifest(self) -> ParsedFile | None:
        """Return bundle.yaml when it parsed into a mapping."""
        manifest = self.parsed.get(MANIFEST_FILE)
        return manifest if manifest and manifest.usable else None

    def define(self, registry: dict, kind: str, parsed: ParsedFile, parts: Parts, body: Any) -> None:
        """Register one named definition unless its name is taken (then report the duplicate)."""
        name = mapping(body).get("name")
        if not isinstance(name, str):
            return
        if name in registry:
            other = registry[name]
            where = other.file.path if other.file is not parsed else format_path((*other.parts, "name"))
            message = MESSAGE_DUPLICATE_NAME.format(kind=kind, name=name, other=where)
            self.report(DUPLICATE_NAME, parsed, (*parts, "name"), message)
            return
        registry[name] = Definition(name, parsed, parts, body)

    def unique_names(self, parsed: ParsedFile, items: list[Any], parts: Parts, kind: str) -> set[str]:
        """Return the names of a list of named mappings, reporting repeats."""
        first_seen: dict[str, int] = {}
        for index, item in enumerate(items):
            name = mapping(item).get("name")
            if not isinstance(name, str):
                continue
            if name in first_seen:
                where = format_path((*parts, first_seen[name], "name"))
                message = MESSAGE_DUPLICATE_NAME.format(kind=kind, name=name, other=where)
                self.report(DUPLICATE_NAME, parsed, (*parts, index, "name"), message)
            else:
                first_seen[name] = index
        return set(first_seen)

    def resolve(self, parsed: ParsedFile, parts: Parts, name: Any, kind: str) -> Definition | None:
        """Return the definition of `kind` a reference names, reporting it when it does not exist."""
        if not isinstance(name, str):
            return None
        registry = {ENTITY: self.entities, TEMPLATE: self.templates, POLICY: self.policies}.get(
            kind, self.pipelines
        )
        if name in registry:
            return registry[name]
        # An unreadable file of that kind may well define the name: one error for it is enough.
        if kind not in self.unreadable:
            code, message = REFERENCE_ERRORS[kind]
            self.report(code, parsed, parts, message.format(name=name))
        return None
