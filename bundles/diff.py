"""Compare two bundle versions: unified diffs of the files and a summary of what changed in meaning.

The semantic summary matches definitions by name, not by file path, so moving a policy to another file is
not a change, while editing its `when` is reported as `policies.changed: [{name, keys: [when]}]`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from bundles.language.documents import MANIFEST_FILE, ONTOLOGY_FILE

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
CONTEXT_LINES = 3
NO_FILE = "/dev/null"
# Per kind directory, the key compared member by member rather than as a whole.
NESTED_BY_DIRECTORY = {"policies": None, "templates": None, "entities": "fields", "suites": "cases"}


def diff_versions(
    old_files: Mapping[str, str],
    old_content: Mapping[str, Any],
    new_files: Mapping[str, str],
    new_content: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the per-file unified diffs and the semantic summary of going from old to new."""
    return {
        "identical": dict(old_content) == dict(new_content) and dict(old_files) == dict(new_files),
        "files": file_diffs(old_files, new_files),
        "summary": semantic_summary(old_content, new_content),
    }


def file_diffs(old_files: Mapping[str, str], new_files: Mapping[str, str]) -> list[dict[str, str]]:
    """Return one entry {path, status, diff} per added, removed or changed file, by path."""
    entries = []
    for path in sorted(set(old_files) | set(new_files)):
        old, new = old_files.get(path), new_files.get(path)
        if old == new:
            continue
        status = ADDED if old is None else REMOVED if new is None else CHANGED
        entries.append({"path": path, "status": status, "diff": unified_diff(path, old, new)})
    return entries


def unified_diff(path: str, old: str | None, new: str | None) -> str:
    """Return the unified diff of one file (`/dev/null` stands for a missing side)."""
    lines = difflib.unified_diff(
        (old or "").splitlines(),
        (new or "").splitlines(),
        fromfile=NO_FILE if old is None else f"a/{path}",
        tofile=NO_FILE if new is None else f"b/{path}",
        n=CONTEXT_LINES,
        lineterm="",
    )
    return "".join(f"{line}\n" for line in lines)


def semantic_summary(old_content: Mapping[str, Any], new_content: Mapping[str, Any]) -> dict[str, Any]:
    """Return what changed in meaning: manifest, pipelines, policies, templates, entities, suites."""
    old_manifest = _mapping(old_content.get(MANIFEST_FILE))
    new_manifest = _mapping(new_content.get(MANIFEST_FILE))
    summary = {
        "version": value_change(old_manifest.get("version"), new_manifest.get("version")),
        "description": value_change(old_manifest.get("description"), new_manifest.get("description")),
        "pipelines": compare_named(
            _by_name(old_manifest.get("pipelines")), _by_name(new_manifest.get("pipelines"))
        ),
    }
    for directory, nested in NESTED_BY_DIRECTORY.items():
        old, new = definitions(old_content, directory), definitions(new_content, directory)
        summary[directory] = compare_named(old, new, nested=nested)
    summary["ontology"] = ontology_changes(old_content.get(ONTOLOGY_FILE), new_content.get(ONTOLOGY_FILE))
    return summary


def value_change(old: Any, new: Any) -> dict[str, Any] | None:
    """Return {from, to} when a value changed, else None."""
    return None if old == new else {"from": old, "to": new}


def definitions(content: Mapping[str, Any], directory: str) -> dict[str, dict[str, Any]]:
    """Return the definitions of one kind directory by name (the path stands in for a missing name)."""
    found = {}
    for path in sorted(content):
        if path.startswith(f"{directory}/") and isinstance(content[path], dict):
            found[str(content[path].get("name", path))] = content[path]
    return found


def compare_named(
    old: Mapping[str, Any], new: Mapping[str, Any], *, nested: str | None = None
) -> dict[str, list[Any]]:
    """Return the names added and removed, and for each changed definition the keys that changed.

    With `nested` (an entity's `fields`, a suite's `cases`), that key is compared member by member
    instead of being reported as one changed key.
    """
    changed = []
    for name in sorted(set(old) & set(new)):
        if old[name] == new[name]:
            continue
        old_body, new_body = _mapping(old[name]), _mapping(new[name])
        entry: dict[str, Any] = {"name": name, "keys": changed_keys(old_body, new_body, skip=nested)}
        if nested == "fields":
            entry["fields"] = compare_named(
                _mapping(old_body.get("fields")), _mapping(new_body.get("fields"))
            )
        elif nested == "cases":
            entry["cases"] = compare_named(_by_name(old_body.get("cases")), _by_name(new_body.get("cases")))
        changed.append(entry)
    return {ADDED: sorted(set(new) - set(old)), REMOVED: sorted(set(old) - set(new)), CHANGED: changed}


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], *, skip: str | None = None) -> list[str]:
    """Return the top-level keys whose values differ (added and removed keys included)."""
    return sorted(key for key in set(old) | set(new) if key != skip and old.get(key) != new.get(key))


def ontology_changes(old: Any, new: Any) -> dict[str, Any]:
    """Return the concepts and relations added, removed and changed."""
    old, new = _mapping(old), _mapping(new)
    return {
        part: compare_named(_by_name(old.get(part)), _by_name(new.get(part)))
        for part in ("concepts", "relations")
    }


def _by_name(items: Any) -> dict[str, Any]:
    """Return a list of named mappings as {name: mapping}."""
    if not isinstance(items, list):
        return {}
    return {str(item.get("name", index)): item for index, item in enumerate(items) if isinstance(item, dict)}


def _members(value: Any) -> dict[str, Any]:
    """Return the members of a nested key by name: a mapping as is (fields), a list by `name` (cases)."""
    return _by_name(value) if isinstance(value, list) else _mapping(value)


def _mapping(value: Any) -> dict[str, Any]:
    """Return the value if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def diff_line_classes(diff: str) -> list[tuple[str, str]]:
    """Return (css class, line) for each line of a unified diff, for the console."""
    rows = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            css = "diff-file"
        elif line.startswith("@@"):
            css = "diff-hunk"
        elif line.startswith("+"):
            css = "diff-add"
        elif line.startswith("-"):
            css = "diff-del"
        else:
            css = ""
        rows.append((css, line))
    return rows


def summary_sentences(summary: dict) -> list[str]:
    """Return the semantic summary of a diff as readable sentences, empty when nothing changed in meaning."""
    lines = []
    for key in ("version", "description"):
        change = summary.get(key)
        if change:
            lines.append(f"{key}: {change['from'] or '—'} → {change['to'] or '—'}")
    sections = [
        (kind, summary.get(kind) or {}) for kind in ("pipelines", "policies", "templates", "entities")
    ]
    sections += [("suites", summary.get("suites") or {})]
    sections += [
        (f"ontology {part}", (summary.get("ontology") or {}).get(part) or {})
        for part in ("concepts", "relations")
    ]
    for kind, changes in sections:
        lines.extend(named_changes(kind, changes))
    return lines


def named_changes(kind: str, changes: dict) -> list[str]:
    """Return the sentences for one kind's added, removed and changed definitions."""
    lines = []
    if changes.get("added"):
        lines.append(f"{kind} added: {', '.join(changes['added'])}")
    if changes.get("removed"):
        lines.append(f"{kind} removed: {', '.join(changes['removed'])}")
    for entry in changes.get("changed") or []:
        detail = f"{kind} changed: {entry['name']}"
        if entry.get("keys"):
            detail += f" ({', '.join(entry['keys'])})"
        lines.append(detail)
        for nested in ("fields", "cases"):
            if entry.get(nested):
                lines.extend(f"  {line}" for line in named_changes(nested, entry[nested]))
    return lines
