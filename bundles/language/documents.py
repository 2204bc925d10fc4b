"""Bundle files as YAML documents: where each file belongs, its node tree, and positions inside it.

A file is composed into a node tree first, so every error maps back to a line and column, and only built into
a value once the tree holds nothing JSON cannot say (aliases, tags, duplicate keys, unsafe numbers).
`Findings` collects positioned errors for the checks.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import yaml

from audit.canonical import MAX_SAFE_INTEGER
from bundles.language import archive
from bundles.language.errors import (
    DUPLICATE_KEY,
    INVALID_VALUE,
    NOT_A_MAPPING,
    WRONG_TYPE,
    YAML_ALIAS,
    YAML_SYNTAX,
    BundleError,
)
from bundles.language.fields import json_type
from bundles.language.schemas import ENTITY, MANIFEST, ONTOLOGY, POLICY, SUITE, TEMPLATE

MESSAGE_YAML_SYNTAX = "YAML syntax error: {problem}"
MESSAGE_YAML_ALIAS = "YAML anchors and aliases are not allowed in bundles"
MESSAGE_YAML_TAG = "YAML type {tag} is not allowed; use strings, numbers, booleans, lists and mappings"
MESSAGE_KEY_NOT_STRING = "mapping keys must be strings; quote {key!r}"
MESSAGE_DUPLICATE_KEY = "key '{key}' appears more than once in this mapping"
MESSAGE_NOT_FINITE = "numbers must be finite"
MESSAGE_INTEGER_TOO_LARGE = "integers must be between -(2**53-1) and 2**53-1"
MESSAGE_NOT_A_MAPPING = "the file must be a YAML mapping, got {actual}"

MANIFEST_FILE = "bundle.yaml"
ONTOLOGY_FILE = "ontology.yaml"
REQUIRED_FILES = (MANIFEST_FILE, ONTOLOGY_FILE)
ROOT_FILE_KINDS = {MANIFEST_FILE: MANIFEST, ONTOLOGY_FILE: ONTOLOGY}
DIRECTORY_KINDS = {"entities": ENTITY, "policies": POLICY, "templates": TEMPLATE, "suites": SUITE}
README_KIND = "readme"

JSON_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
STR_TAG = "tag:yaml.org,2002:str"
STRING_LIKE_TAGS = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"})
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

Parts = tuple[str | int, ...]
Position = tuple[int | None, int | None]


@dataclass
class ParsedFile:
    """One bundle file: its kind, source text, YAML node tree (for positions) and parsed value."""

    path: str
    kind: str
    text: str
    node: yaml.Node | None = None
    value: Any = None
    usable: bool = False  # parsed into a mapping that later checks may read


class _ContentLoader(yaml.SafeLoader):
    """SafeLoader that reads dates and a bare `=` as strings, so every value stays JSON-compatible."""


_ContentLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in STRING_LIKE_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_SCALARS = yaml.constructor.SafeConstructor()


class Findings:
    """The errors found in a bundle's files, each positioned on its YAML node, each reported once."""

    def __init__(self, errors: list[BundleError] | None = None):
        self.errors: list[BundleError] = list(errors or [])
        self.reported: set[tuple[str, str, str, str]] = set()

    def report(
        self,
        code: str,
        file: str | ParsedFile,
        parts: Parts,
        message: str,
        *,
        key: bool = False,
        position: Position | None = None,
    ) -> None:
        """Record one error, positioned on the YAML node at `parts` unless `position` is given."""
        parsed = file if isinstance(file, ParsedFile) else None
        path = parsed.path if parsed else str(file)
        if position is None:
            position = node_position(parsed, parts, key=key)
        signature = (code, path, format_path(parts), message)
        if signature in self.reported:
            return
        self.reported.add(signature)
        self.errors.append(BundleError(code, path, format_path(parts), message, *position))


def format_path(parts: Parts) -> str:
    """Return a readable location inside a file, e.g. `pipelines[0].template` or `fields.amount.type`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def file_kind(path: str) -> str | None:
    """Return the kind of file a bundle path holds, or None when it has no place in a bundle."""
    if path in ROOT_FILE_KINDS:
        return ROOT_FILE_KINDS[path]
    if path == archive.README_NAME:
        return README_KIND
    directory, _, name = path.partition("/")
    stem = name.rsplit(".", 1)[0]
    if directory in DIRECTORY_KINDS and "/" not in name and name.endswith(archive.YAML_SUFFIXES) and stem:
        return DIRECTORY_KINDS[directory]
    return None


def locate_node(node: yaml.Node | None, parts: Parts, *, key: bool = False) -> yaml.Node | None:
    """Return the node at `parts` (its key node when `key`), or the deepest ancestor that exists."""
    current = node
    for index, part in enumerate(parts):
        child = None
        if isinstance(current, yaml.MappingNode):
            want_key = key and index == len(parts) - 1
            for key_node, value_node in current.value:  # the last duplicate wins, as in the parsed value
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    child = key_node if want_key else value_node
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            child = current.value[part]
        if child is None:
            return current
        current = child
    return current


def node_position(parsed: ParsedFile | None, parts: Parts, *, key: bool = False) -> Position:
    """Return the 1-based (line, column) of the node at `parts`, or (None, None)."""
    node = locate_node(parsed.node, parts, key=key) if parsed else None
    if node is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


def value_position(parsed: ParsedFile, parts: Parts, line: int | None, column: int | None) -> Position:
    """Return the file position of (line, column) inside the scalar string at `parts`."""
    node = locate_node(parsed.node, parts)
    if not isinstance(node, yaml.ScalarNode) or line is None:
        return node_position(parsed, parts)
    start = node.start_mark
    lines = node.value.rstrip("\n").split("\n")
    if line > len(lines):
        # Errors "at end of input" sit after the final newline: point at the end of the last line.
        line, column = len(lines), len(lines[-1]) + 1
    if node.style in ("|", ">"):
        # Block scalar content starts on the line after the indicator, at the block's indentation.
        source_lines = parsed.text.splitlines()
        content = [text for text in source_lines[start.line + 1 : node.end_mark.line + 1] if text.strip()]
        indent = len(content[0]) - len(content[0].lstrip(" ")) if content else 0
        return start.line + line + 1, (indent + column if column is not None else None)
    if line == 1 and start.line == node.end_mark.line:
        quote = 1 if node.style in ("'", '"') else 0
        return start.line + 1, (start.column + quote + column if column is not None else None)
    return start.line + line, None


def source_position(text: str, needle: re.Pattern[str]) -> tuple[int, int] | None:
    """Return the 1-based (line, column) of the first match of `needle` in a value's text."""
    match = needle.search(text)
    if match is None:
        return None
    before = text[: match.start()]
    return before.count("\n") + 1, match.start() - (before.rfind("\n") + 1) + 1


def yaml_problem(error: yaml.YAMLError, text: str) -> tuple[str, Position]:
    """Return the reason of a YAML error and its 1-based (line, column) when known."""
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or str(error)
        return problem, ((mark.line + 1, mark.column + 1) if mark else (None, None))
    if isinstance(error, yaml.reader.ReaderError):
        before = text[: error.position]
        column = error.position - (before.rfind("\n") + 1) + 1
        return f"{error.reason} (#x{error.character:04x})", (before.count("\n") + 1, column)
    return str(error), (None, None)


def parse_yaml(parsed: ParsedFile, findings: Findings) -> None:
    """Parse a YAML file into its node tree and value, reporting syntax and type problems."""
    try:
        load_yaml(parsed, findings)
    except yaml.YAMLError as exc:
        problem, position = yaml_problem(exc, parsed.text)
        message = MESSAGE_YAML_SYNTAX.format(problem=problem)
        findings.report(YAML_SYNTAX, parsed, (), message, position=position)
        return
    if parsed.node is None:
        message = MESSAGE_NOT_A_MAPPING.format(actual="an empty file")
        findings.report(NOT_A_MAPPING, parsed, (), message, position=(1, 1))
    elif parsed.value is not None and not parsed.usable:
        message = MESSAGE_NOT_A_MAPPING.format(actual=json_type(parsed.value))
        findings.report(NOT_A_MAPPING, parsed, (), message)


def load_yaml(parsed: ParsedFile, findings: Findings) -> None:
    """Compose the node tree, check it, and build the value when it is safe to."""
    loader = _ContentLoader(parsed.text)  # reads the whole text: raises ReaderError on control characters
    try:
        parsed.node = loader.get_single_node()
        if parsed.node is not None and check_nodes(parsed, findings):
            parsed.value = loader.construct_document(parsed.node)
            parsed.usable = isinstance(parsed.value, dict)
    finally:
        loader.dispose()


def check_nodes(parsed: ParsedFile, findings: Findings) -> bool:
    """Report aliases, non-JSON types and duplicate keys; return whether the value may be built."""
    buildable = True
    seen: set[int] = set()
    # Breadth-first and in document order, so an alias is reported where it is used, not at its anchor.
    stack: deque[tuple[yaml.Node, Parts]] = deque([(parsed.node, ())])
    while stack:
        node, parts = stack.popleft()
        if id(node) in seen:
            findings.report(YAML_ALIAS, parsed, parts, MESSAGE_YAML_ALIAS, key=True)
            buildable = False
            continue
        seen.add(id(node))
        if node.tag not in JSON_TAGS:
            findings.report(WRONG_TYPE, parsed, parts, MESSAGE_YAML_TAG.format(tag=node.tag))
            buildable = False
        elif isinstance(node, yaml.MappingNode):
            buildable &= check_mapping_node(parsed, node, parts, stack, findings)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*parts, index)) for index, child in enumerate(node.value))
        else:
            check_number_node(parsed, node, parts, findings)
    return buildable


def check_mapping_node(
    parsed: ParsedFile, node: yaml.MappingNode, parts: Parts, stack: deque, findings: Findings
) -> bool:
    """Check one mapping's keys and queue its values; return whether it may be built."""
    buildable = True
    keys: set[str] = set()
    for key_node, value_node in node.value:
        key_position = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
            message = MESSAGE_KEY_NOT_STRING.format(key=getattr(key_node, "value", "?"))
            findings.report(WRONG_TYPE, parsed, parts, message, position=key_position)
            buildable = False
            continue
        if key_node.value in keys:
            message = MESSAGE_DUPLICATE_KEY.format(key=key_node.value)
            findings.report(DUPLICATE_KEY, parsed, (*parts, key_node.value), message, position=key_position)
        keys.add(key_node.value)
        stack.append((value_node, (*parts, key_node.value)))
    return buildable


def check_number_node(parsed: ParsedFile, node: yaml.ScalarNode, parts: Parts, findings: Findings) -> None:
    """Report numbers that JSON (and so the canonical digest) cannot represent exactly."""
    if node.tag == FLOAT_TAG:
        number = _SCALARS.construct_yaml_float(node)
        if not math.isfinite(number):
            findings.report(INVALID_VALUE, parsed, parts, MESSAGE_NOT_FINITE)
    elif node.tag == INT_TAG:
        number = _SCALARS.construct_yaml_int(node)
        if abs(number) > MAX_SAFE_INTEGER:
            findings.report(INVALID_VALUE, parsed, parts, MESSAGE_INTEGER_TOO_LARGE)
