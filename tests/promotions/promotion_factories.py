"""Set-ups shared by the promotions tests: members per role, pushed versions, gates run inline, grants."""

from dataclasses import dataclass

from django.db import transaction
from guardian.shortcuts import assign_perm

from bundles.models import BundleVersion
from promotions.models import Environment, GateRun
from promotions.selectors import access_environment
from promotions.services.environments import environments_ensure_defaults
from promotions.services.gate_execution import gate_run_execute
from promotions.services.gates import gate_run_start
from tests.bundles.bundle_factories import CLAIMS, example_files, push, with_version


@dataclass
class Team:
    """One member per role, plus a second reviewer and a reviewer without the environment grant."""

    author: object
    reviewer: object
    reviewer2: object
    outsider_reviewer: object
    operator: object
    admin: object
    auditor: object


def make_team(make_member, tenant, prefix: str = "p") -> Team:
    """Create the team's members in `tenant`; both reviewers may approve in staging and current."""
    team = Team(
        author=make_member(tenant, f"{prefix}-author", ["author"]),
        reviewer=make_member(tenant, f"{prefix}-reviewer", ["reviewer"]),
        reviewer2=make_member(tenant, f"{prefix}-reviewer2", ["reviewer"]),
        outsider_reviewer=make_member(tenant, f"{prefix}-outsider", ["reviewer"]),
        operator=make_member(tenant, f"{prefix}-operator", ["operator"]),
        admin=make_member(tenant, f"{prefix}-admin", ["admin"]),
        auditor=make_member(tenant, f"{prefix}-auditor", ["auditor"]),
    )
    environments_ensure_defaults()
    for name in ("staging", "current"):
        environment = access_environment(None, name)
        assign_perm("approve_promotion", team.reviewer, environment)
        assign_perm("approve_promotion", team.reviewer2, environment)
    return team


def push_version(actor, version: str = "1.2.0", files: dict[str, str] | None = None) -> BundleVersion:
    """Push claims-triage at `version` (created on the first push) and return the stored version."""
    return push(actor, with_version(files or example_files(CLAIMS), version)).version


def failing_files() -> dict[str, str]:
    """Return claims-triage whose golden suite expects the wrong queue for one case (valid, gates fail)."""
    files = example_files(CLAIMS)
    suite = "suites/golden.yaml"
    return {
        **files,
        suite: files[suite].replace(
            "expect: {status: allowed, output: {queue: auto}}",
            "expect: {status: allowed, output: {queue: home}}",
            1,
        ),
    }


def run_gates(actor, version: BundleVersion) -> GateRun:
    """Start the version's gates and run them inline (the worker's task body); return the finished run."""
    run = gate_run_start(actor=actor, version=version)
    gate_run_execute(gate_run_id=run.pk)
    run.refresh_from_db()
    return run


def environment(name: str) -> Environment:
    """Return environment `name`."""
    return access_environment(None, name)


def atomic(function, *args, **kwargs):
    """Call `function` in a transaction (services record audit inside the caller's transaction)."""
    with transaction.atomic():
        return function(*args, **kwargs)


def error_code(response) -> str:
    """Return the error code of an API error response."""
    return response.json()["error"]["code"]
