"""Diff of two bundle versions: unified diffs per file and a semantic summary matched by name."""

from pathlib import Path

from bundles.diff import ADDED, CHANGED, NO_FILE, REMOVED, diff_versions
from bundles.language.archive import read_directory
from bundles.language.checks import validate_files

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "claims-triage"


def version(**changes: str | None) -> tuple[dict, dict]:
    """Return (files, content) of the example with some files replaced (or removed, with None).

    Validity does not matter to a diff; the content is whatever parsed.
    """
    files = read_directory(EXAMPLE)
    for path, text in changes.items():
        if text is None:
            files.pop(path)
        else:
            files[path] = text
    return files, validate_files(files).content


def diff(old: tuple[dict, dict], new: tuple[dict, dict]) -> dict:
    """Return the diff from old to new."""
    return diff_versions(old[0], old[1], new[0], new[1])


def empty_changes() -> dict:
    """Return the summary of a kind with nothing changed."""
    return {ADDED: [], REMOVED: [], CHANGED: []}


def test_identical_versions_have_no_changes():
    result = diff(version(), version())
    assert result["identical"] is True
    assert result["files"] == []
    summary = result["summary"]
    assert summary["version"] is None and summary["description"] is None
    for kind in ("pipelines", "policies", "templates", "entities", "suites"):
        assert summary[kind] == empty_changes()
    assert summary["ontology"] == {"concepts": empty_changes(), "relations": empty_changes()}


def test_changed_policy_reports_the_keys_and_a_unified_diff():
    old = version()
    policy = old[0]["policies/amount-limit.yaml"].replace("input.amount > 100000", "input.amount > 50000")
    result = diff(old, version(**{"policies/amount-limit.yaml": policy}))
    assert result["identical"] is False
    assert result["summary"]["policies"] == {
        ADDED: [],
        REMOVED: [],
        CHANGED: [{"name": "amount-limit", "keys": ["when"]}],
    }
    [entry] = result["files"]
    assert (entry["path"], entry["status"]) == ("policies/amount-limit.yaml", CHANGED)
    assert entry["diff"].startswith("--- a/policies/amount-limit.yaml\n+++ b/policies/amount-limit.yaml\n")
    assert "\n-when: input.amount > 100000" in entry["diff"]
    assert "\n+when: input.amount > 50000" in entry["diff"]


def test_added_policy_and_its_pipeline_reference():
    old = version()
    manifest = old[0]["bundle.yaml"].replace("allowed-queues]", "allowed-queues, tiny-claims]")
    policy = "name: tiny-claims\nstage: pre\neffect: warn\nwhen: input.amount < 10\n"
    result = diff(old, version(**{"bundle.yaml": manifest, "policies/tiny-claims.yaml": policy}))
    summary = result["summary"]
    assert summary["policies"][ADDED] == ["tiny-claims"]
    assert summary["pipelines"][CHANGED] == [{"name": "triage", "keys": ["policies"]}]
    added = next(entry for entry in result["files"] if entry["status"] == ADDED)
    assert added["path"] == "policies/tiny-claims.yaml"
    assert added["diff"].startswith(f"--- {NO_FILE}\n+++ b/policies/tiny-claims.yaml\n")


def test_removed_policy_and_file():
    old = version()
    manifest = old[0]["bundle.yaml"].replace("long-description, ", "")
    result = diff(old, version(**{"bundle.yaml": manifest, "policies/long-description.yaml": None}))
    assert result["summary"]["policies"][REMOVED] == ["long-description"]
    removed = next(entry for entry in result["files"] if entry["status"] == REMOVED)
    assert removed["path"] == "policies/long-description.yaml"
    assert f"+++ {NO_FILE}\n" in removed["diff"]


def test_entity_fields_added_removed_and_changed():
    old = version()
    entity = (
        old[0]["entities/claim.yaml"]
        .replace("maxLength: 4000", "maxLength: 2000")
        .replace("  customer_email: {type: string, classification: pii}\n", "  channel: {type: string}\n")
    )
    result = diff(old, version(**{"entities/claim.yaml": entity}))
    assert result["summary"]["entities"] == {
        ADDED: [],
        REMOVED: [],
        CHANGED: [
            {
                "name": "Claim",
                "keys": [],
                "fields": {
                    ADDED: ["channel"],
                    REMOVED: ["customer_email"],
                    CHANGED: [{"name": "description", "keys": ["maxLength"]}],
                },
            }
        ],
    }


def test_version_description_model_and_suite_cases():
    old = version()
    manifest = (
        old[0]["bundle.yaml"]
        .replace("version: 1.2.0", "version: 1.3.0")
        .replace("seed: 7", "seed: 8")
        .replace("Route insurance claims", "Route claims")
    )
    suite = old[0]["suites/golden.yaml"].replace("name: kitchen-flood", "name: kitchen-flooded")
    result = diff(old, version(**{"bundle.yaml": manifest, "suites/golden.yaml": suite}))
    summary = result["summary"]
    assert summary["version"] == {"from": "1.2.0", "to": "1.3.0"}
    assert summary["description"]["to"] == "Route claims to the right queue"
    assert summary["pipelines"][CHANGED] == [{"name": "triage", "keys": ["model"]}]
    assert summary["suites"][CHANGED] == [
        {
            "name": "golden",
            "keys": [],
            "cases": {ADDED: ["kitchen-flooded"], REMOVED: ["kitchen-flood"], CHANGED: []},
        }
    ]


def test_moving_a_definition_to_another_file_is_not_a_semantic_change():
    old = version()
    policy = old[0]["policies/amount-limit.yaml"]
    result = diff(old, version(**{"policies/amount-limit.yaml": None, "policies/limits.yaml": policy}))
    assert result["summary"]["policies"] == empty_changes()
    assert [(entry["path"], entry["status"]) for entry in result["files"]] == [
        ("policies/amount-limit.yaml", REMOVED),
        ("policies/limits.yaml", ADDED),
    ]


def test_template_and_ontology_changes():
    old = version()
    template = old[0]["templates/triage.yaml"].replace("Claim {{", "Insurance claim {{")
    ontology = old[0]["ontology.yaml"] + "  - {name: escalated_to, from: Claim, to: Queue}\n"
    result = diff(old, version(**{"templates/triage.yaml": template, "ontology.yaml": ontology}))
    assert result["summary"]["templates"][CHANGED] == [{"name": "triage", "keys": ["prompt"]}]
    assert result["summary"]["ontology"]["relations"][ADDED] == ["escalated_to"]
