"""The contractor CLI against a real control-plane process and a real Celery worker, on a committed tenant.

Each command runs as its own process (`python -m cli.contractor`), the way a CI job runs it; the assertions
are on exit codes and on what it prints.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from governance.models import GovernanceChangeRequest
from governance.services import change_approve
from promotions.exceptions import SELF_APPROVAL
from promotions.selectors import access_environment
from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
from tenancy.models import Membership
from tenancy.services import membership_set
from tenancy.tokens import api_token_issue_for
from tests.conftest import run_committed
from tests.live import ROOT, control_plane_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.worker

BUNDLE = "cli-triage"
PASSWORD = "pw-for-e2e-cli-1"
WAIT = "60"
MEMBERS = {
    "author": ["author"],
    "reviewer": ["reviewer"],
    "operator": ["operator"],
    # the lead requests, never approves its own request (and, an author, is no approver in current)
    "lead": ["author", "reviewer"],
    # last: the tenant is past bootstrap only once both admins exist
    "admin": ["admin"],
    "admin2": ["admin"],
}


@dataclass(frozen=True)
class Run:
    """The outcome of one CLI process."""

    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def approved_if_governed(tenant, result) -> None:
    """Approve `result` when it is a governance change (the shared committed tenant may already have two
    admins from other tests), by an admin it does not benefit."""
    if not isinstance(result, GovernanceChangeRequest):
        return
    admins = Membership.objects.filter(tenant=tenant, is_active=True, roles__contains=["admin"])
    approver = admins.exclude(user_id=result.beneficiary_id).first().user
    change_approve(actor=approver, change=result)


def create_members(tenant) -> dict[str, str]:
    """Create the CLI users (committed) with their roles and tokens; the reviewer may approve current (not
    the lead, an author: current separates duties)."""
    environments_ensure_defaults()
    tokens = {}
    current = access_environment(None, "current")
    for role, roles in MEMBERS.items():
        user, _ = get_user_model().objects.get_or_create(username=f"e2e-cli-{role}")
        user.set_password(PASSWORD)
        user.save()
        approved_if_governed(tenant, membership_set(actor=None, tenant=tenant, user=user, roles=roles))
        if "reviewer" in roles and "author" not in roles:
            approved_if_governed(
                tenant, environment_approval_grant(actor=None, environment=current, user=user, granted=True)
            )
        tokens[role] = api_token_issue_for(tenant=tenant, user=user).secret
    return tokens


@pytest.fixture(scope="module")
def cli(control_plane_server, celery_worker_process, committed_tenant, django_db_blocker):  # noqa: F811
    """Return a function running `contractor COMMAND-LINE` as a member (by role) of the committed tenant."""
    with django_db_blocker.unblock():
        tokens = run_committed(create_members, committed_tenant, tenant=committed_tenant)
        host = committed_tenant.domains.get(is_primary=True).domain

    def contractor(command_line: str, *, role: str = "author", token: str | None = None) -> Run:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CONTRACTOR_URL": control_plane_server.address,
            "CONTRACTOR_HOST": host,
            "CONTRACTOR_TOKEN": token if token is not None else tokens[role],
        }
        env.pop("CONTRACTOR_TENANT", None)
        result = subprocess.run(
            [sys.executable, "-m", "cli.contractor", *shlex.split(command_line)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Run(result.returncode, result.stdout, result.stderr)

    yield contractor
    # The committed tenant is shared by the session: leave it with no more admins than it had, so that later
    # tests there are not governed by this module's second admin (test clean-up, not a governed change).
    with django_db_blocker.unblock():
        run_committed(
            lambda: Membership.objects.filter(
                tenant=committed_tenant, user__username__in=["e2e-cli-admin", "e2e-cli-admin2"]
            ).update(is_active=False),
            tenant=committed_tenant,
        )


@pytest.fixture(scope="module")
def bundle_dirs(tmp_path_factory) -> dict[str, Path]:
    """Return copies of examples/claims-triage named cli-triage, at versions 1.0.0 and 1.1.0."""
    dirs = {}
    for version in ("1.0.0", "1.1.0"):
        target = tmp_path_factory.mktemp(f"bundle-{version}") / BUNDLE
        shutil.copytree(ROOT / "examples" / "claims-triage", target)
        manifest = target / "bundle.yaml"
        text = re.sub(r"(?m)^name: .*$", f"name: {BUNDLE}", manifest.read_text())
        text = re.sub(r"(?m)^version: .*$", f"version: {version}", text)
        if version != "1.0.0":
            text = re.sub(r"(?m)^description: .*$", "description: Route claims (tuned)", text)
        manifest.write_text(text)
        dirs[version] = target
    return dirs


def assert_ran(run: Run, code: int = 0) -> Run:
    assert run.code == code, f"exit {run.code}\nstdout:\n{run.out}\nstderr:\n{run.err}"
    return run


def test_a_bad_token_exits_3(cli):
    run = assert_ran(cli("status", token="not-a-real-token"), 3)
    assert "HTTP 401" in run.err


def test_an_unknown_bundle_exits_4(cli):
    run = assert_ran(cli("status no-such-bundle"), 4)
    assert "HTTP 404" in run.err
    assert_ran(cli("gates run no-such-bundle 1.0.0"), 4)


def test_login_makes_a_new_named_token_each_time_which_tokens_list_shows_and_revoke_ends(cli, monkeypatch):
    monkeypatch.setenv("CONTRACTOR_PASSWORD", PASSWORD)
    login = "login --username e2e-cli-author --name 'e2e laptop' --scope read --expires-in-days 7"
    first = assert_ran(cli(login, token="")).out.strip()
    second = assert_ran(cli(login, token="")).out.strip()
    assert first != second
    assert first.startswith("ct_") and second.startswith("ct_")
    listed = assert_ran(cli("--json tokens list", token=second)).json()["tokens"]
    mine = {row["prefix"]: row for row in listed if row["name"] == "e2e laptop"}
    assert set(mine) == {f"ct_{first.split('_')[1]}_…", f"ct_{second.split('_')[1]}_…"}
    assert all(row["scopes"] == ["read"] for row in mine.values())
    assert first not in json.dumps(listed) and second not in json.dumps(listed)
    revoked_id = mine[f"ct_{first.split('_')[1]}_…"]["id"]
    assert_ran(cli(f"tokens revoke {revoked_id}", token=second))
    refused = assert_ran(cli("status", token=first), 3)
    assert "HTTP 401" in refused.err
    assert_ran(cli("status", token=second))


def test_contractor_test_validates_and_runs_the_suites_without_a_server(bundle_dirs):
    result = subprocess.run(
        [sys.executable, "-m", "cli.contractor", "test", str(bundle_dirs["1.0.0"])],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CONTRACTOR_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"valid: {BUNDLE} 1.0.0 sha256:")
    assert "golden" in result.stdout


def test_push_gates_promote_approve_status_and_rollback_from_the_command_line(cli, bundle_dirs):
    first_dir, second_dir = bundle_dirs["1.0.0"], bundle_dirs["1.1.0"]
    # push: new, then unchanged
    pushed = assert_ran(cli(f"--json push {first_dir}")).json()
    assert (pushed["name"], pushed["version"], pushed["outcome"]) == (BUNDLE, "1.0.0", "new")
    assert pushed["digest"].startswith("sha256:")
    again = assert_ran(cli(f"push {first_dir}"))
    assert again.out.strip() == f"pushed {BUNDLE} 1.0.0 {pushed['digest']} (unchanged)"

    # gates, waited for
    gates = assert_ran(cli(f"gates run {BUNDLE} 1.0.0 --wait --timeout {WAIT}"))
    assert re.match(r"gate run \d+: passed\n", gates.out)
    assert "suite golden: passed (pass rate 100%, policy coverage 100%)" in gates.out

    # staging needs no approval: promoted while we wait
    staging = assert_ran(
        cli(f"promote {BUNDLE} 1.0.0 --to staging --justification 'CI run 1' --wait --timeout {WAIT}")
    )
    assert re.match(rf"promotion \d+ of {BUNDLE} 1.0.0 to staging: promoted", staging.out)

    # current needs one approval by someone else: the request stays pending
    requested = assert_ran(
        cli(f"--json promote {BUNDLE} 1.0.0 --to current --justification 'CI run 1'")
    ).json()
    assert requested["status"] == "pending"
    first = requested["id"]
    refused = assert_ran(cli(f"approve {first}", role="author"), 3)  # an author may not approve at all
    assert "missing_role, HTTP 403" in refused.err
    approved = assert_ran(cli(f"approve {first} --comment LGTM", role="reviewer"))
    assert approved.out.strip() == f"promotion {first}: promoted"
    twice = assert_ran(cli(f"approve {first}", role="reviewer"), 1)
    assert "request_not_pending, HTTP 409" in twice.err

    status = assert_ran(cli(f"status {BUNDLE}"))
    assert re.search(rf"(?m)^{BUNDLE}\s+current\s+1\.0\.0\s+promote\s", status.out)
    assert re.search(rf"(?m)^{BUNDLE}\s+staging\s+1\.0\.0\s+promote\s", status.out)

    # 1.1.0: pushed by the author; the lead promotes it to staging (the request starts the gates itself)
    # and requests current, which they may not approve themselves
    assert_ran(cli(f"push {second_dir}"))
    assert_ran(
        cli(
            f"promote {BUNDLE} 1.1.0 --to staging --justification 'CI run 2' --wait --timeout {WAIT}",
            role="lead",
        )
    )
    second = assert_ran(
        cli(f"--json promote {BUNDLE} 1.1.0 --to current --justification x", role="lead")
    ).json()
    own = assert_ran(cli(f"approve {second['id']}", role="lead"), 1)  # a rule, not a missing right
    assert SELF_APPROVAL in own.err
    assert "self_approval, HTTP 403" in own.err
    assert_ran(cli(f"approve {second['id']}", role="reviewer"))
    live = assert_ran(cli(f"--json status {BUNDLE}")).json()["live"]
    assert {(row["environment"], row["version"]) for row in live} == {
        ("staging", "1.1.0"),
        ("current", "1.1.0"),
    }

    # rollback: only operators; the default target is the version live before
    denied = assert_ran(cli(f"rollback {BUNDLE} --env current --justification bad", role="author"), 3)
    assert "missing_role" in denied.err
    rolled = assert_ran(
        cli(f"rollback {BUNDLE} --env current --justification '1.1.0 misroutes'", role="operator")
    )
    assert rolled.out.strip() == f"rolled back {BUNDLE} in current to 1.0.0"
    status = assert_ran(cli(f"status {BUNDLE}"))
    assert re.search(rf"(?m)^{BUNDLE}\s+current\s+1\.0\.0\s+rollback\s", status.out)
    assert re.search(rf"(?m)^{BUNDLE}\s+staging\s+1\.1\.0\s+promote\s", status.out)
    never = assert_ran(
        cli(f"rollback {BUNDLE} --env current --to 9.9.9 --justification x", role="operator"), 1
    )
    assert "not_previously_live, HTTP 409" in never.err


def restore_current_approvals(tenant, approvals: int) -> None:
    """Put current's approvals back (a tightening: applies at once), for the tests that share the tenant."""
    from promotions.services.environments import environment_update

    admin = get_user_model().objects.get(username="e2e-cli-admin")
    with transaction.atomic():
        environment_update(
            actor=admin, environment=access_environment(None, "current"), required_approvals=approvals
        )


def loosen_current_as_admin(tenant) -> int:
    """Have e2e-cli-admin ask to drop the approvals of current (a loosening); return the change's id."""
    from promotions.services.environments import environment_update

    admin = get_user_model().objects.get(username="e2e-cli-admin")
    with transaction.atomic():
        change = environment_update(
            actor=admin, environment=access_environment(None, "current"), required_approvals=0
        )
    return change.pk


def test_governance_changes_are_listed_and_approved_only_by_another_admin(
    cli, committed_tenant, django_db_blocker
):
    with django_db_blocker.unblock():
        change_id = run_committed(loosen_current_as_admin, committed_tenant, tenant=committed_tenant)
    listed = assert_ran(cli("--json governance list", role="admin2")).json()["changes"]
    assert change_id in [row["id"] for row in listed]
    table = assert_ran(cli("governance list", role="admin2")).out
    assert re.search(rf"(?m)^{change_id}\s+environment\.rules\s+pending\s+e2e-cli-admin\s+0/1\s", table)
    own = assert_ran(cli(f"governance approve {change_id}", role="admin"), 1)
    assert "self_approval, HTTP 403" in own.err
    by_reviewer = assert_ran(cli(f"governance approve {change_id}", role="reviewer"), 3)
    assert "missing_role" in by_reviewer.err
    approved = assert_ran(cli(f"governance approve {change_id} --comment checked", role="admin2"))
    assert approved.out.strip() == f"governance change {change_id}: applied"
    pending = assert_ran(cli("--json governance list", role="admin2")).json()["changes"]
    assert change_id not in [row["id"] for row in pending]
    every = assert_ran(cli("--json governance list --all", role="admin2")).json()["changes"]
    assert [row["status"] for row in every if row["id"] == change_id] == ["applied"]
    with django_db_blocker.unblock():
        run_committed(restore_current_approvals, committed_tenant, 1, tenant=committed_tenant)
