"""The example bundles validate cleanly and pass their own suites with full policy coverage."""

import io
import tarfile
from pathlib import Path

import pytest

from bundles.language.archive import read_archive, read_directory
from bundles.language.checks import validate_files
from bundles.language.compiler import compile_bundle
from bundles.language.suites import run_suites

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NAMES = ["claims-triage", "support-routing"]
DEV_MODEL = {"endpoint": "default", "name": "dev-model", "temperature": 0, "seed": 7, "max_tokens": 256}


def validated(name: str):
    """Return the validation result of one example directory."""
    return validate_files(read_directory(EXAMPLES / name))


@pytest.mark.parametrize("name", NAMES)
def test_example_validates_with_no_errors(name):
    result = validated(name)
    assert result.errors == []
    assert result.manifest["name"] == name
    assert "README.md" in result.content


@pytest.mark.parametrize("name", NAMES)
def test_example_passes_every_suite_with_full_coverage(name):
    report = run_suites(compile_bundle(validated(name).content))
    assert report.passed, report.to_dict()
    for suite in report.suites:
        assert (suite.min_pass_rate, suite.min_policy_coverage) == (1.0, 1.0)
        assert (suite.pass_rate, suite.policy_coverage) == (1.0, 1.0)
    assert sum(len(suite.cases) for suite in report.suites) >= 8


@pytest.mark.parametrize("name", NAMES)
def test_example_pipelines_use_the_dev_model(name):
    for pipeline in validated(name).manifest["pipelines"]:
        assert pipeline["model"] == DEV_MODEL


@pytest.mark.parametrize("name", NAMES)
def test_example_reads_the_same_from_a_tarball(name):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(EXAMPLES / name, arcname=name)
    assert read_archive(buffer.getvalue()) == read_directory(EXAMPLES / name)


def test_claims_triage_exercises_every_effect():
    content = validated("claims-triage").content
    effects = {doc["effect"] for path, doc in content.items() if path.startswith("policies/")}
    assert effects == {"deny", "redact", "warn"}


def test_support_routing_redacts_pii_and_secret_fields():
    content = validated("support-routing").content
    report = run_suites(compile_bundle(content))
    redacted = {
        field
        for suite in report.to_dict()["suites"]
        for case in content[suite["file"]]["cases"]
        for field in case["expect"].get("redacted", [])
    }
    classifications = {
        field["classification"]
        for name, field in content["entities/ticket.yaml"]["fields"].items()
        if name in redacted
    }
    assert {"pii", "secret"} <= classifications
    assert len(content["bundle.yaml"]["pipelines"]) == 2
