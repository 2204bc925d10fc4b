"""`manage.py bundle_test <dir>` validates and runs suites offline: exit 0 pass, 1 fail, 2 usage; no DB."""

import os
import shutil
import socket
import subprocess
import sys

import pytest

from bundles.management.commands.bundle_test import INVALID, NOT_A_DIRECTORY, SUITES_FAILED
from tests.bundles.bundle_factories import CLAIMS, EXAMPLES, ROOT


def closed_port() -> int:
    """Return a local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bundle_test(*args: str) -> subprocess.CompletedProcess:
    """Run the command in a subprocess whose database URL points at a closed port."""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port()}/no_database_here",
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.base",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "bundle_test", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def claims_copy(tmp_path):
    target = tmp_path / CLAIMS
    shutil.copytree(EXAMPLES / CLAIMS, target)
    return target


def test_a_valid_bundle_whose_suites_pass_exits_0_with_no_database():
    result = bundle_test(str(EXAMPLES / CLAIMS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid: claims-triage 1.2.0 sha256:")
    assert "PASS: 11/11 cases passed, 1/1 suites passed" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_broken_bundle_exits_1_and_prints_every_error_located(claims_copy):
    policy = claims_copy / "policies" / "amount-limit.yaml"
    policy.write_text(policy.read_text().replace("input.amount > 100000", "input.amount >"))
    template = claims_copy / "templates" / "triage.yaml"
    template.write_text(template.read_text().replace("input.claim_id", "input.policy_number"))
    result = bundle_test(str(claims_copy))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("policies/amount-limit.yaml:4:21: cel_syntax: CEL syntax error: ")
    assert lines[0].endswith(" (when)")
    assert lines[1] == (
        "templates/triage.yaml:5:12: template_variable_undefined: the template reads input.policy_number, "
        "but Claim (input of pipeline 'triage') has no field 'policy_number' (prompt)"
    )
    assert INVALID.format(count=2) in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreadable_file_in_the_directory_exits_1_with_its_code(claims_copy):
    (claims_copy / "notes.txt").write_text("not part of a bundle")
    result = bundle_test(str(claims_copy))
    assert result.returncode == 1
    assert result.stdout.startswith("notes.txt: unexpected_file: ")


def test_a_failing_suite_exits_1_with_the_report(claims_copy):
    suite = claims_copy / "suites" / "golden.yaml"
    wrong = "expect: {status: allowed, output: {queue: home}}"
    suite.write_text(suite.read_text().replace("expect: {status: allowed, output: {queue: auto}}", wrong))
    result = bundle_test(str(claims_copy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "small-collision: FAIL" in result.stdout
    assert 'output.queue: expected "home", got "auto"' in result.stdout
    assert SUITES_FAILED.format(failed=1, total=1) in result.stderr


def test_a_missing_directory_is_a_usage_error_exiting_2(tmp_path):
    missing = tmp_path / "nope"
    result = bundle_test(str(missing))
    assert result.returncode == 2
    assert NOT_A_DIRECTORY.format(path=missing) in result.stderr


def test_no_directory_argument_is_a_usage_error_exiting_2():
    result = bundle_test()
    assert result.returncode == 2
    assert "the following arguments are required: directory" in result.stderr


def test_verbose_lists_files_and_each_cases_decision():
    result = bundle_test(str(EXAMPLES / CLAIMS), "--verbose")
    assert result.returncode == 0
    assert "  policies/amount-limit.yaml (" in result.stdout
    assert "  golden/huge-claim: denied; fired: amount-limit" in result.stdout
