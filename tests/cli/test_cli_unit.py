"""The contractor CLI's pure parts: argument parsing, exit codes, error formatting, waiting, archives.

The commands that talk to the API are tested against the real control plane elsewhere.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from cli.bundle_files import bundle_archive, manifest_name
from cli.client import BAD_URL_MESSAGE, config_from_env, wait_for
from cli.commands import GATE_OUTCOMES, PROMOTION_OUTCOMES, live_deployments, raise_for_outcome
from cli.contractor import EXIT_CODES_HELP, build_parser, main
from cli.errors import (
    EXIT_AUTH,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SERVER,
    EXIT_USAGE,
    NOT_JSON_MESSAGE,
    ApiError,
    CliError,
    ServerUnreachable,
    UsageError,
    WaitTimedOut,
    api_error_from_response,
    exit_code_for,
    exit_code_for_status,
    format_bundle_error,
    format_detail,
    format_error,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(*records):
    """Return a fetch function that answers (or raises) each of ``records`` in turn."""
    queue = list(records)

    def fetch():
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return fetch


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, EXIT_OK),
        (201, EXIT_OK),
        (400, EXIT_REFUSED),
        (401, EXIT_AUTH),
        (403, EXIT_AUTH),
        (404, EXIT_NOT_FOUND),
        (409, EXIT_REFUSED),
        (422, EXIT_REFUSED),
        (500, EXIT_SERVER),
        (502, EXIT_SERVER),
        (503, EXIT_SERVER),
    ],
)
def test_http_statuses_map_to_the_documented_exit_codes(status, code):
    assert exit_code_for_status(status) == code


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (403, "self_approval", EXIT_REFUSED),
        (403, "not_the_requester", EXIT_REFUSED),
        (403, "missing_role", EXIT_AUTH),
        (403, "not_an_approver", EXIT_AUTH),
        (403, "not_a_member", EXIT_AUTH),
        (409, "self_approval", EXIT_REFUSED),
    ],
)
def test_a_403_that_is_a_promotion_rule_is_a_refusal_not_an_auth_failure(status, code, exit_code):
    assert exit_code_for(status, code) == exit_code


def test_the_exit_codes_are_documented_in_the_help():
    for code in range(6):
        assert f"\n  {code}  " in EXIT_CODES_HELP
    assert "exit codes:" in build_parser().format_help()


def test_a_permission_error_body_becomes_an_auth_failure_with_its_code():
    body = {"error": {"code": "missing_role", "message": "You need the reviewer role.", "details": []}}
    error = api_error_from_response(403, body)
    assert (error.exit_code, error.code, error.message) == (
        EXIT_AUTH,
        "missing_role",
        "You need the reviewer role.",
    )


def test_a_non_json_error_answer_is_described_by_its_status():
    error = api_error_from_response(502, None)
    assert error.exit_code == EXIT_SERVER
    assert error.message == NOT_JSON_MESSAGE.format(status=502)


def test_a_bundle_error_prints_as_file_line_column_code_message_path():
    detail = {
        "code": "bad_semver",
        "file": "bundle.yaml",
        "path": "version",
        "message": "not semver",
        "line": 3,
    }
    assert (
        format_bundle_error({**detail, "column": 10}) == "bundle.yaml:3:10: bad_semver: not semver (version)"
    )
    assert format_bundle_error(detail) == "bundle.yaml:3: bad_semver: not semver (version)"
    missing = {"code": "missing_file", "file": "ontology.yaml", "path": "", "message": "no ontology.yaml"}
    assert format_bundle_error(missing) == "ontology.yaml: missing_file: no ontology.yaml"


def test_validation_details_print_one_per_line_under_the_message():
    details = [
        {
            "code": "yaml_syntax",
            "file": "entities/x.yaml",
            "path": "",
            "message": "bad",
            "line": 2,
            "column": 1,
        },
        {"field": "justification", "code": "required", "message": "This field is required."},
        "plain text",
    ]
    error = ApiError(400, "invalid_bundle", "The bundle is not valid.", details)
    assert format_error(error) == [
        "error: The bundle is not valid. [invalid_bundle, HTTP 400]",
        "  entities/x.yaml:2:1: yaml_syntax: bad",
        "  justification: required: This field is required.",
        "  plain text",
    ]
    assert format_detail({"other": 1}) == '{"other": 1}'


def test_the_tenant_becomes_the_host_header_and_the_token_a_token_header():
    config = config_from_env(
        {"CONTRACTOR_URL": "http://127.0.0.1:8000/", "CONTRACTOR_TENANT": "acme", "CONTRACTOR_TOKEN": "t"}
    )
    assert config.url == "http://127.0.0.1:8000"
    assert config.headers()["Host"] == "acme.localhost"
    assert config.headers()["Authorization"] == "Token t"


def test_contractor_host_overrides_the_tenant_host():
    config = config_from_env({"CONTRACTOR_TENANT": "acme", "CONTRACTOR_HOST": "acme.example.com"})
    assert config.host == "acme.example.com"
    assert "Authorization" not in config.headers()


def test_a_url_that_is_not_http_is_a_usage_error():
    with pytest.raises(UsageError) as raised:
        config_from_env({"CONTRACTOR_URL": "127.0.0.1:8000"})
    assert raised.value.message == BAD_URL_MESSAGE.format(url="127.0.0.1:8000")
    assert raised.value.exit_code == EXIT_USAGE


def test_missing_arguments_are_usage_errors_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["promote", "claims-triage", "1.2.0", "--justification", "x"])
    assert raised.value.code == EXIT_USAGE
    assert "--to" in capsys.readouterr().err


def test_a_non_positive_timeout_is_a_usage_error():
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["gates", "run", "b", "1.0.0", "--timeout", "0"])
    assert raised.value.code == EXIT_USAGE


def test_gates_run_parses_wait_timeout_and_json_after_the_command():
    args = build_parser().parse_args(
        ["gates", "run", "claims-triage", "1.2.0", "--wait", "--timeout", "30", "--json"]
    )
    assert (args.bundle, args.version, args.wait, args.timeout, args.json) == (
        "claims-triage",
        "1.2.0",
        True,
        30.0,
        True,
    )


def test_json_may_also_come_before_the_command():
    args = build_parser().parse_args(
        ["--json", "rollback", "claims-triage", "--env", "current", "--justification", "bad"]
    )
    assert (args.json, args.env, args.to, args.justification) == (True, "current", None, "bad")


def test_approve_reject_and_cancel_share_one_handler_with_their_decision():
    parser = build_parser()
    for argv, decision in (
        (["approve", "7", "--comment", "ok"], "approve"),
        (["reject", "7"], "reject"),
        (["cancel", "7"], "cancel"),
    ):
        args = parser.parse_args(argv)
        assert (args.decision, args.id) == (decision, "7")


def test_login_takes_a_token_name_scopes_and_a_lifetime():
    argv = [
        "login",
        "--username",
        "ci",
        "--name",
        "nightly",
        "--scope",
        "push",
        "--scope",
        "read",
        "--expires-in-days",
        "30",
    ]
    args = build_parser().parse_args(argv)
    assert (args.username, args.name, args.scope, args.expires_in_days) == (
        "ci",
        "nightly",
        ["push", "read"],
        30,
    )
    default = build_parser().parse_args(["login", "--username", "ci"])
    assert (default.name, default.scope, default.expires_in_days) == ("contractor CLI", None, None)


def test_an_unknown_scope_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["login", "--username", "ci", "--scope", "root"])
    assert exited.value.code == EXIT_USAGE
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_tokens_list_and_revoke_parse_to_their_handlers():
    listed = build_parser().parse_args(["tokens", "list", "--all", "--json"])
    revoked = build_parser().parse_args(["tokens", "revoke", "42"])
    assert (listed.handler.__name__, listed.all, listed.json) == ("command_tokens_list", True, True)
    assert (revoked.handler.__name__, revoked.id) == ("command_tokens_revoke", "42")


def test_governance_list_approve_and_reject_parse_to_their_handlers():
    listed = build_parser().parse_args(["governance", "list", "--all"])
    approved = build_parser().parse_args(["governance", "approve", "3", "--comment", "checked"])
    rejected = build_parser().parse_args(["governance", "reject", "3", "--comment", "no"])
    assert (listed.handler.__name__, listed.all) == ("command_governance_list", True)
    assert (approved.handler.__name__, approved.decision, approved.id, approved.comment) == (
        "command_governance_decide",
        "approve",
        "3",
        "checked",
    )
    assert (rejected.decision, rejected.comment) == ("reject", "no")


def test_waiting_returns_the_record_once_its_state_is_final():
    clock = FakeClock()
    progress: list[str] = []
    record = wait_for(
        answers({"status": "queued"}, {"status": "running"}, {"status": "passed", "id": 3}),
        GATE_OUTCOMES,
        60,
        what="gate run 3",
        progress=progress.append,
        sleep=clock.sleep,
        clock=clock,
    )
    assert record == {"status": "passed", "id": 3}
    assert progress == ["gate run 3: queued", "gate run 3: running"]
    assert clock.sleeps == [0.5, 1.0]


def test_waiting_gives_up_at_the_timeout_with_exit_code_5():
    clock = FakeClock()
    with pytest.raises(WaitTimedOut) as raised:
        wait_for(
            lambda: {"status": "pending"},
            PROMOTION_OUTCOMES,
            10,
            what="promotion 4",
            progress=lambda line: None,
            sleep=clock.sleep,
            clock=clock,
        )
    assert raised.value.exit_code == EXIT_SERVER
    assert clock.now <= 10


def test_waiting_tolerates_brief_server_trouble_but_not_a_refusal():
    clock = FakeClock()
    flaky = answers(ServerUnreachable("down"), ApiError(502, "bad_gateway", "x"), {"status": "failed"})
    record = wait_for(
        flaky, GATE_OUTCOMES, 60, what="g", progress=lambda line: None, sleep=clock.sleep, clock=clock
    )
    assert record == {"status": "failed"}
    with pytest.raises(ApiError) as raised:
        wait_for(
            answers(ApiError(404, "not_found", "gone")),
            GATE_OUTCOMES,
            60,
            what="g",
            progress=print,
            sleep=clock.sleep,
            clock=clock,
        )
    assert raised.value.exit_code == EXIT_NOT_FOUND


@pytest.mark.parametrize(
    ("outcomes", "record", "code"),
    [
        (GATE_OUTCOMES, {"status": "failed"}, EXIT_REFUSED),
        (GATE_OUTCOMES, {"status": "error", "error": "worker crashed"}, EXIT_SERVER),
        (PROMOTION_OUTCOMES, {"status": "rejected", "status_reason": "not now"}, EXIT_REFUSED),
        (PROMOTION_OUTCOMES, {"status": "cancelled"}, EXIT_REFUSED),
        (PROMOTION_OUTCOMES, {"status": "failed"}, EXIT_REFUSED),
    ],
)
def test_unsuccessful_final_states_raise_their_exit_code(outcomes, record, code):
    with pytest.raises(CliError) as raised:
        raise_for_outcome(record, outcomes, "it")
    assert raised.value.exit_code == code


def test_successful_final_states_exit_0():
    assert raise_for_outcome({"status": "passed"}, GATE_OUTCOMES, "g") == EXIT_OK
    assert raise_for_outcome({"status": "promoted"}, PROMOTION_OUTCOMES, "p") == EXIT_OK


def test_the_rejection_reason_is_in_the_error_message():
    with pytest.raises(CliError) as raised:
        raise_for_outcome(
            {"status": "rejected", "status_reason": "needs review"}, PROMOTION_OUTCOMES, "promotion 4"
        )
    assert raised.value.message == "promotion 4 rejected: needs review"


def test_the_live_version_is_the_latest_deployment_per_bundle_and_environment():
    rows = [
        {
            "id": 1,
            "bundle": "b",
            "environment": "current",
            "version": "1.0.0",
            "created_at": "2025-01-01T00:00:00Z",
        },
        {
            "id": 3,
            "bundle": "b",
            "environment": "current",
            "version": "1.0.0",
            "kind": "rollback",
            "created_at": "2025-01-03T00:00:00Z",
        },
        {
            "id": 2,
            "bundle": "b",
            "environment": "current",
            "version": "1.1.0",
            "created_at": "2025-01-02T00:00:00Z",
        },
        {
            "id": 4,
            "bundle": {"name": "a"},
            "environment": {"name": "staging"},
            "version": "0.1.0",
            "created_at": "2025-01-01T00:00:00Z",
        },
    ]
    live = live_deployments(rows)
    assert [(row["id"], row["version"]) for row in live] == [(4, "0.1.0"), (3, "1.0.0")]


def test_the_bundle_name_is_read_from_the_manifest(tmp_path):
    (tmp_path / "bundle.yaml").write_text(
        "apiVersion: contractor/v1\nname: 'claims-triage'  # the name\nversion: 1.0.0\n"
    )
    assert manifest_name(tmp_path) == "claims-triage"
    assert manifest_name(tmp_path / "missing") is None


def test_push_without_a_readable_name_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "bundle.yaml").write_text("version: 1.0.0\n")
    assert main(["push", str(tmp_path)]) == EXIT_USAGE
    assert "pass --name" in capsys.readouterr().err


def test_the_archive_is_reproducible_relative_and_skips_git(tmp_path):
    (tmp_path / "entities").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "bundle.yaml").write_text("name: b\n")
    (tmp_path / "entities" / "claim.yaml").write_text("name: Claim\n")
    first = bundle_archive(tmp_path)
    (tmp_path / "bundle.yaml").touch()
    assert bundle_archive(tmp_path) == first
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as archive:
        members = {member.name: member for member in archive.getmembers()}
    assert set(members) == {"bundle.yaml", "entities/claim.yaml"}
    assert {(member.uid, member.mtime) for member in members.values()} == {(0, 0)}


def test_local_test_passes_the_example_bundle(capsys):
    assert main(["--json", "test", str(EXAMPLES / "claims-triage")]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["suites"]["passed"] is True


def test_local_test_lists_validation_errors_and_exits_1(tmp_path, capsys):
    (tmp_path / "bundle.yaml").write_text(
        "apiVersion: contractor/v1\nname: bad\nversion: 1.x\npipelines: []\n"
    )
    assert main(["test", str(tmp_path)]) == EXIT_REFUSED
    out = capsys.readouterr().out
    assert "bundle.yaml:3:10: bad_semver: " in out
    assert "ontology.yaml: missing_file: " in out


def test_local_test_of_a_missing_directory_is_a_usage_error(tmp_path):
    assert main(["test", str(tmp_path / "nope")]) == EXIT_USAGE
