"""Bundle validation: every error at once, each with a stable code, its file, path, line and column."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from bundles.language import errors as validation
from bundles.language.archive import MAX_FILE_BYTES, BundleArchiveError, read_directory
from bundles.language.checks import validate_files
from bundles.language.checks.policy import MESSAGE_CEL_OUTPUT_IN_PRE
from bundles.language.checks.suite import MESSAGE_INPUT_IS_VALID
from bundles.language.documents import MESSAGE_YAML_ALIAS
from bundles.language.errors import (
    ABSOLUTE_PATH,
    CEL_UNKNOWN_VARIABLE,
    DUPLICATE_NAME,
    FILE_TOO_LARGE,
    INVALID_VALUE,
    PATH_TRAVERSAL,
    SECRET_IN_BUNDLE,
    SUITE_EXPECT_INVALID,
    TEMPLATE_VARIABLE_UNDEFINED,
    UNKNOWN_ENTITY,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    YAML_ALIAS,
    YAML_SYNTAX,
    BundleError,
)
from bundles.language.schemas import KINDS, all_schemas

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CORPUS_CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())
EXAMPLE = HERE.parents[2] / "examples" / "claims-triage"


def example_files(**changes: str | None) -> dict[str, str]:
    """Return the claims-triage example's files with some replaced (or removed, with None)."""
    files = read_directory(EXAMPLE)
    for path, text in changes.items():
        if text is None:
            files.pop(path)
        else:
            files[path] = text
    return files


def errors_of(files: dict[str, str]) -> list[BundleError]:
    """Return the errors of validating `files`."""
    return validate_files(files).errors


def corpus_errors(case: str) -> list[BundleError]:
    """Return the errors of reading and validating one corpus bundle."""
    try:
        files = read_directory(CORPUS / case / "bundle")
    except BundleArchiveError as exc:
        return exc.errors
    return validate_files(files).errors


@pytest.mark.parametrize("case", CORPUS_CASES)
def test_corpus_bundle_reports_exactly_the_expected_errors(case):
    expected = json.loads((CORPUS / case / "expected.json").read_text())["errors"]
    actual = corpus_errors(case)
    key = lambda item: (item["file"], item["path"], item["code"])  # noqa: E731
    actual_rows = sorted((error.to_dict() for error in actual), key=key)
    assert [key(row) for row in actual_rows] == sorted(key(row) for row in expected)
    for row, want in zip(actual_rows, sorted(expected, key=key), strict=True):
        assert {name: row[name] for name in ("line", "column") if name in want} == {
            name: want[name] for name in ("line", "column") if name in want
        }, row["message"]


def test_corpus_covers_every_validation_error_code():
    codes = {error.code for case in CORPUS_CASES for error in corpus_errors(case)}
    assert {
        validation.YAML_SYNTAX,
        validation.YAML_ALIAS,
        validation.DUPLICATE_KEY,
        validation.NOT_A_MAPPING,
        validation.MISSING_FILE,
        validation.UNEXPECTED_FILE,
        validation.UNKNOWN_FIELD,
        validation.MISSING_FIELD,
        validation.WRONG_TYPE,
        validation.INVALID_VALUE,
        validation.BAD_SEMVER,
        validation.DUPLICATE_NAME,
        validation.UNKNOWN_CONCEPT,
        validation.UNKNOWN_ENTITY,
        validation.UNKNOWN_TEMPLATE,
        validation.UNKNOWN_POLICY,
        validation.UNKNOWN_PIPELINE,
        validation.UNKNOWN_FIELD_REFERENCE,
        validation.CEL_SYNTAX,
        validation.CEL_UNKNOWN_VARIABLE,
        validation.JINJA_SYNTAX,
        validation.TEMPLATE_VARIABLE_UNDEFINED,
        validation.SUITE_INPUT_INVALID,
        validation.SUITE_EXPECT_INVALID,
        validation.SECRET_IN_BUNDLE,
        validation.NOT_UTF8,
        validation.CEL_TOO_EXPENSIVE,
        validation.PROMPT_TOO_LARGE,
    } <= codes


def test_valid_bundle_gives_content_and_manifest_and_no_errors():
    result = validate_files(example_files())
    assert result.errors == []
    assert result.valid
    assert result.manifest["name"] == "claims-triage"
    assert result.content["policies/amount-limit.yaml"]["when"] == "input.amount > 100000"
    assert result.content["README.md"].startswith("# claims-triage")


def test_error_serialises_with_every_field():
    error = errors_of(example_files(**{"ontology.yaml": None}))[0]
    assert error.to_dict() == {
        "code": "missing_file",
        "file": "ontology.yaml",
        "path": "",
        "message": "the bundle has no ontology.yaml",
        "line": None,
        "column": None,
    }


def test_yaml_syntax_error_points_at_the_yaml_mark():
    [error] = errors_of(example_files(**{"suites/golden.yaml": "name: golden\ncases: [\n  - a\n"}))
    assert (error.code, error.file, error.line, error.column) == (YAML_SYNTAX, "suites/golden.yaml", 3, 3)


def test_unknown_field_message_lists_the_allowed_fields():
    policy = "name: amount-limit\nstage: pre\neffect: deny\nwhen: input.amount > 100000\nseverity: high\n"
    [error] = errors_of(example_files(**{"policies/amount-limit.yaml": policy}))
    assert (error.code, error.path, error.line, error.column) == (UNKNOWN_FIELD, "severity", 5, 1)
    assert "stage, effect, when, message, fields, classifications" in error.message


def test_files_pushed_as_json_are_held_to_the_archive_limits():
    files = example_files(**{"suites/huge.yaml": "#" * (MAX_FILE_BYTES + 1)})
    assert [(e.code, e.file) for e in errors_of(files)] == [(FILE_TOO_LARGE, "suites/huge.yaml")]


def test_file_names_pushed_as_json_cannot_leave_the_bundle():
    files = example_files(**{"../outside.yaml": "a: 1\n", "/abs.yaml": "a: 1\n"})
    assert sorted((e.code, e.file) for e in errors_of(files)) == [
        (ABSOLUTE_PATH, "/abs.yaml"),
        (PATH_TRAVERSAL, "../outside.yaml"),
    ]


def test_dates_stay_strings_so_content_is_json():
    manifest = example_files()["bundle.yaml"].replace("description:", "description: 2024-05-01 #")
    result = validate_files(example_files(**{"bundle.yaml": manifest}))
    assert result.errors == []
    assert result.manifest["description"] == "2024-05-01"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (".nan", INVALID_VALUE),
        ("12345678901234567890", INVALID_VALUE),
        ("!!binary aGVsbG8=", WRONG_TYPE),
        ("!!python/object:os.system echo", WRONG_TYPE),
    ],
)
def test_values_json_cannot_hold_are_refused(value, code):
    manifest = example_files()["bundle.yaml"].replace("seed: 7", f"seed: {value}")
    errors = errors_of(example_files(**{"bundle.yaml": manifest}))
    assert (errors[0].code, errors[0].path) == (code, "pipelines[0].model.seed")


def test_mapping_keys_must_be_strings():
    entity = "name: Flags\nconcept: Claim\nfields:\n  on: {type: boolean}\n"
    errors = errors_of(example_files(**{"entities/flags.yaml": entity}))
    assert [(e.code, e.file, e.line) for e in errors] == [(WRONG_TYPE, "entities/flags.yaml", 4)]


def test_aliases_are_refused_without_expanding_them():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join(['*' + chr(97 + level)] * 9)}]\n"
        for level in range(8)
    )
    errors = errors_of(example_files(**{"suites/laughs.yaml": laughs}))
    assert {(e.code, e.message) for e in errors} == {(YAML_ALIAS, MESSAGE_YAML_ALIAS)}


def test_unreadable_file_does_not_cause_dangling_reference_errors():
    errors = errors_of(example_files(**{"entities/claim.yaml": "name: Claim\n  concept: [\n"}))
    assert [e.code for e in errors] == [YAML_SYNTAX]


def test_entity_name_collision_is_reported_whatever_the_file_names():
    claim = example_files()["entities/claim.yaml"]
    errors = errors_of(example_files(**{"entities/zz-claim-copy.yaml": claim}))
    assert [(e.code, e.file, e.path) for e in errors] == [
        (DUPLICATE_NAME, "entities/zz-claim-copy.yaml", "name")
    ]
    assert "entities/claim.yaml" in errors[0].message


def test_template_fields_are_checked_per_pipeline_that_uses_it():
    manifest = example_files()["bundle.yaml"] + (
        "  - name: triage-decisions\n"
        "    input: TriageDecision\n"
        "    output: TriageDecision\n"
        "    template: triage\n"
        "    model: {endpoint: default, name: dev-model}\n"
    )
    errors = errors_of(example_files(**{"bundle.yaml": manifest}))
    assert {(e.code, e.file, e.path) for e in errors} == {
        (TEMPLATE_VARIABLE_UNDEFINED, "templates/triage.yaml", "prompt")
    }
    assert {e.message.split(", but")[0] for e in errors} == {
        "the template reads input.amount",
        "the template reads input.claim_id",
        "the template reads input.description",
    }
    assert all("pipeline 'triage-decisions'" in e.message for e in errors)


def test_unknown_entity_points_at_the_reference():
    manifest = example_files()["bundle.yaml"].replace("input: Claim", "input: Claims")
    [error] = errors_of(example_files(**{"bundle.yaml": manifest}))
    assert (error.code, error.path, error.line, error.column) == (UNKNOWN_ENTITY, "pipelines[0].input", 7, 12)


def test_output_in_a_pre_policy_is_explained():
    policy = "name: amount-limit\nstage: pre\neffect: deny\nwhen: output.queue == 'auto'\n"
    [error] = errors_of(example_files(**{"policies/amount-limit.yaml": policy}))
    assert (error.code, error.message, error.line, error.column) == (
        CEL_UNKNOWN_VARIABLE,
        MESSAGE_CEL_OUTPUT_IN_PRE,
        4,
        7,
    )


def test_suite_case_expecting_invalid_input_must_have_invalid_input():
    suite = example_files()["suites/golden.yaml"].replace("{claim_id: X-9,", "{claim_id: C9,")
    [error] = errors_of(example_files(**{"suites/golden.yaml": suite}))
    assert (error.code, error.message) == (
        SUITE_EXPECT_INVALID,
        MESSAGE_INPUT_IS_VALID.format(entity="Claim"),
    )


def test_suite_cel_may_read_the_decision_but_not_other_names():
    suite = example_files()["suites/golden.yaml"].replace(
        "expect: {status: denied, denied_by: amount-limit}",
        "expect: {status: denied, cel: [\"decision.status == 'denied'\", 'caller.id == 1']}",
    )
    [error] = errors_of(example_files(**{"suites/golden.yaml": suite}))
    assert (error.code, error.path) == (CEL_UNKNOWN_VARIABLE, "cases[3].expect.cel[1]")


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj4f9c1e27b8aa01bb02cc03dd",
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN RSA PRIVATE KEY-----",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        "ck_0a1b2c3d_Wq3vX9kLmN2pQ7rS8tU1vY4zA6bC0dE5fG7hJ9kL2mN",  # our runtime key format
        "whsec_Wq3vX9kLmN2pQ7rS8tU1vY4zA6bC0dE5fG7hJ9kL2mN",  # our webhook secret format
    ],
)
def test_credentials_in_a_bundle_are_refused_without_echoing_them(secret):
    template = example_files()["templates/triage.yaml"].replace("You route", f"Key {secret}. You route")
    [error] = errors_of(example_files(**{"templates/triage.yaml": template}))
    assert (error.code, error.file, error.path, error.line) == (
        SECRET_IN_BUNDLE,
        "templates/triage.yaml",
        "system",
        3,
    )
    assert secret not in error.message


def test_credentials_in_the_readme_are_refused():
    readme = example_files()["README.md"] + "\nOur key: AKIAIOSFODNN7EXAMPLE\n"
    [error] = errors_of(example_files(**{"README.md": readme}))
    assert (error.code, error.file, error.line) == (SECRET_IN_BUNDLE, "README.md", readme.count("\n"))


def test_every_error_code_is_a_distinct_constant():
    codes = [
        value for name, value in vars(validation).items() if isinstance(value, str) and name == value.upper()
    ]
    assert len(codes) == len(set(codes)) >= 30


def test_published_schemas_are_valid_and_closed():
    schemas = all_schemas()
    assert set(schemas) == set(KINDS)

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
        for node in objects(schema):
            open_by_design = node.get("properties") is None  # free-form records: inputs, outputs, callers
            assert open_by_design or node["additionalProperties"] is False


def test_published_schemas_are_copies():
    all_schemas()["manifest"]["title"] = "changed"
    assert all_schemas()["manifest"]["title"] != "changed"
