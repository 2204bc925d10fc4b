"""The CLI's commands: each takes the parsed arguments and an Output, and returns the exit code."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from cli.bundle_files import (
    ARCHIVE_FILENAME,
    MANIFEST_FILE,
    NO_BUNDLE_NAME_MESSAGE,
    bundle_archive,
    bundle_directory,
    manifest_name,
)
from cli.client import ApiClient, Output, api_client, config_from_env, name_of, segment, state_of, wait_for
from cli.errors import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SERVER,
    CliError,
    Refused,
    ServerUnreachable,
    UsageError,
    format_bundle_error,
)

GATE_OUTCOMES = {"passed": EXIT_OK, "failed": EXIT_REFUSED, "error": EXIT_SERVER}


PROMOTION_OUTCOMES = {
    "promoted": EXIT_OK,
    "rejected": EXIT_REFUSED,
    "cancelled": EXIT_REFUSED,
    "failed": EXIT_REFUSED,
}


LOGIN_NEEDS_TERMINAL_MESSAGE = "no password: set CONTRACTOR_PASSWORD or run in a terminal"


TOOLING_MISSING_MESSAGE = (
    "`contractor test` needs the repository's bundles package ({reason}); run it from a checkout"
)


SUITE_LINE = "  suite {name}: {verdict} (pass rate {pass_rate}, policy coverage {coverage})"


INVALID_BUNDLE_MESSAGE = "invalid bundle: {count} error(s)"


VALID_BUNDLE_MESSAGE = "valid: {name} {version} {digest}"


DEFAULT_TOKEN_NAME = "contractor CLI"  # noqa: S105 (a name, not a secret)
TOKEN_SCOPES = ("read", "push", "promote", "approve", "operate", "audit", "admin")
UNEXPECTED_SUCCESS_MESSAGE = "the server answered HTTP {status} without a JSON object"


def command_push(args: argparse.Namespace, out: Output) -> int:
    """Push a bundle directory as a new version; report its digest and whether it is new."""
    directory = bundle_directory(args.directory)
    name = args.name or manifest_name(directory)
    if not name:
        raise UsageError(NO_BUNDLE_NAME_MESSAGE.format(path=directory / MANIFEST_FILE))
    archive = bundle_archive(directory)
    files = {"archive": (ARCHIVE_FILENAME, archive, "application/gzip")}
    status, version = api_client().post(f"bundles/{segment(name)}/versions/", files=files)
    outcome = "new" if status == 201 else "unchanged"
    version = version if isinstance(version, dict) else {}
    summary = f"{name} {version.get('version', '?')} {version.get('digest', '?')} ({outcome})"
    out.result({"name": name, **version, "outcome": outcome}, f"pushed {summary}")
    return EXIT_OK


def local_tooling() -> SimpleNamespace:
    """Return the repository's pure-Python bundle functions `contractor test` needs; UsageError if missing."""
    try:
        from bundles.language.archive import BundleArchiveError, read_directory
        from bundles.language.checks import validate_files
        from bundles.language.compiler import compile_bundle
        from bundles.language.digest import bundle_digest
        from bundles.language.errors import BundleCompileError
        from bundles.language.suites import format_report, run_suites
    except ImportError as error:
        raise UsageError(TOOLING_MISSING_MESSAGE.format(reason=error)) from None
    return SimpleNamespace(
        BundleArchiveError=BundleArchiveError,
        BundleCompileError=BundleCompileError,
        read_directory=read_directory,
        validate_files=validate_files,
        bundle_digest=bundle_digest,
        compile_bundle=compile_bundle,
        run_suites=run_suites,
        format_report=format_report,
    )


def command_test(args: argparse.Namespace, out: Output) -> int:
    """Validate a bundle directory and run its suites locally, without a server."""
    directory = bundle_directory(args.directory)
    tooling = local_tooling()
    try:
        result = tooling.validate_files(tooling.read_directory(directory))
        errors = [error.to_dict() for error in result.errors]
    except tooling.BundleArchiveError as error:
        errors = [bundle_error.to_dict() for bundle_error in error.errors]
    if errors:
        lines = [format_bundle_error(error) for error in errors] + [
            INVALID_BUNDLE_MESSAGE.format(count=len(errors))
        ]
        out.result({"valid": False, "errors": errors}, lines)
        return EXIT_REFUSED
    digest = tooling.bundle_digest(result.content)
    try:
        report = tooling.run_suites(tooling.compile_bundle(result.content, digest))
    except tooling.BundleCompileError as error:
        raise Refused(str(error)) from None
    manifest = result.manifest or {}
    header = VALID_BUNDLE_MESSAGE.format(
        name=manifest.get("name"), version=manifest.get("version"), digest=digest
    )
    out.result(
        {"valid": True, "digest": digest, "suites": report.to_dict()},
        [header, tooling.format_report(report).rstrip("\n")],
    )
    return EXIT_OK if report.passed else EXIT_REFUSED


def command_gates_run(args: argparse.Namespace, out: Output) -> int:
    """Start a gate run of a version; with --wait, report its outcome."""
    api = api_client()
    _, run = api.post(f"bundles/{segment(args.bundle)}/versions/{segment(args.version)}/gate-runs/", {})
    run_id = run.get("id") if isinstance(run, dict) else None
    if not args.wait or run_id is None:
        out.result(run, f"gate run {run_id}: {state_of(run)}")
        return EXIT_OK
    run = wait_for(
        lambda: api.get(f"gate-runs/{segment(run_id)}/"),
        GATE_OUTCOMES,
        args.timeout,
        what=f"gate run {run_id}",
        progress=out.progress,
    )
    out.result(run, gate_run_lines(run))
    return raise_for_outcome(run, GATE_OUTCOMES, f"gate run {run_id}")


def gate_run_lines(run: dict[str, Any]) -> list[str]:
    """Return the human summary of a finished gate run: each suite, and each failing case with its reasons."""
    lines = [f"gate run {run.get('id')}: {state_of(run)}"]
    report = run.get("report") if isinstance(run.get("report"), dict) else {}
    for suite in report.get("suites") or run.get("suites") or []:
        if not isinstance(suite, dict):
            continue
        lines.append(
            SUITE_LINE.format(
                name=suite.get("name", "?"),
                verdict="passed" if suite.get("passed") else "failed",
                pass_rate=percent(suite.get("pass_rate")),
                coverage=percent((suite.get("policy_coverage") or {}).get("ratio")),
            )
        )
        lines.extend(f"    error: {error}" for error in suite.get("errors") or [])
        for case in suite.get("cases") or []:
            if isinstance(case, dict) and not case.get("passed", True):
                lines.append(
                    f"    {case.get('name', '?')}: " + "; ".join(map(str, case.get("failures") or []))
                )
    return lines


def percent(ratio: Any) -> str:
    """Return a ratio as a percentage, or '?' when unknown."""
    return f"{ratio:.0%}" if isinstance(ratio, int | float) and not isinstance(ratio, bool) else "?"


def raise_for_outcome(record: dict[str, Any], outcomes: Mapping[str, int], what: str) -> int:
    """Return EXIT_OK for a successful final state; raise the CliError of any other."""
    state = state_of(record)
    code = outcomes.get(state, EXIT_SERVER)
    if code == EXIT_OK:
        return EXIT_OK
    reason = record.get("status_reason") or record.get("reason") or record.get("error") or ""
    message = f"{what} {state}" + (f": {reason}" if reason else "")
    raise CliError(message, code)


def command_promote(args: argparse.Namespace, out: Output) -> int:
    """Request the promotion of a version to an environment; with --wait, report how it ended."""
    api = api_client()
    payload = {
        "bundle": args.bundle,
        "version": args.version,
        "environment": args.to,
        "justification": args.justification,
    }
    _, promotion = api.post("promotions/", payload)
    promotion_id = promotion.get("id") if isinstance(promotion, dict) else None
    if args.wait and promotion_id is not None and state_of(promotion) not in PROMOTION_OUTCOMES:
        promotion = wait_for(
            lambda: api.get(f"promotions/{segment(promotion_id)}/"),
            PROMOTION_OUTCOMES,
            args.timeout,
            what=f"promotion {promotion_id}",
            progress=out.progress,
        )
    what = f"promotion {promotion_id} of {args.bundle} {args.version} to {args.to}"
    out.result(promotion, f"{what}: {state_of(promotion)}")
    if state_of(promotion) in PROMOTION_OUTCOMES:
        return raise_for_outcome(promotion, PROMOTION_OUTCOMES, f"promotion {promotion_id}")
    return EXIT_OK


def command_decide(args: argparse.Namespace, out: Output) -> int:
    """Approve, reject or cancel a promotion request."""
    payload = {"comment": args.comment} if getattr(args, "comment", None) else {}
    _, promotion = api_client().post(f"promotions/{segment(args.id)}/{args.decision}/", payload)
    out.result(promotion, f"promotion {args.id}: {state_of(promotion)}")
    return EXIT_OK


def command_rollback(args: argparse.Namespace, out: Output) -> int:
    """Point an environment back to an earlier version of a bundle."""
    payload = {"justification": args.justification}
    if args.to:
        payload["to_version"] = args.to
    path = f"environments/{segment(args.env)}/bundles/{segment(args.bundle)}/rollback/"
    _, deployment = api_client().post(path, payload)
    version = name_of(deployment.get("version")) if isinstance(deployment, dict) else "?"
    out.result(deployment, f"rolled back {args.bundle} in {args.env} to {version}")
    return EXIT_OK


def live_deployments(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the latest deployment per (bundle, environment): the live versions, sorted by bundle and env."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for deployment in deployments:
        key = (name_of(deployment.get("bundle")), name_of(deployment.get("environment")))
        current = latest.get(key)
        if current is None or deployment_order(deployment) > deployment_order(current):
            latest[key] = deployment
    return [latest[key] for key in sorted(latest)]


def deployment_order(deployment: dict[str, Any]) -> tuple[str, int]:
    """Return the sort key putting later deployments last (time, then id)."""
    at = str(deployment.get("created_at") or deployment.get("at") or "")
    identifier = deployment.get("id")
    return at, identifier if isinstance(identifier, int) else 0


def command_status(args: argparse.Namespace, out: Output) -> int:
    """Show the live version of each bundle in each environment."""
    api = api_client()
    if args.bundle:
        bundles = [name_of(api.get(f"bundles/{segment(args.bundle)}/"))]
        deployments = api.get_all("deployments/", {"bundle": args.bundle})
    else:
        bundles = sorted(name_of(bundle) for bundle in api.get_all("bundles/"))
        deployments = api.get_all("deployments/")
    live = live_deployments([row for row in deployments if isinstance(row, dict)])
    rows = [
        {
            "bundle": name_of(row.get("bundle")),
            "environment": name_of(row.get("environment")),
            "version": name_of(row.get("version")),
            "digest": row.get("digest"),
            "kind": row.get("kind"),
            "at": row.get("created_at") or row.get("at"),
        }
        for row in live
    ]
    out.result({"bundles": bundles, "live": rows}, status_lines(bundles, rows))
    return EXIT_OK


def status_lines(bundles: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """Return the live-versions table (bundles never deployed show '-')."""
    deployed = {row["bundle"] for row in rows}
    table = [("BUNDLE", "ENVIRONMENT", "VERSION", "KIND", "AT")]
    table += [
        (row["bundle"], row["environment"], row["version"], row["kind"] or "", row["at"] or "")
        for row in rows
    ]
    table += [(name, "-", "-", "", "") for name in bundles if name not in deployed]
    return aligned(table)


def aligned(table: list[tuple]) -> list[str]:
    """Return the rows of `table` (its first row the headings) as lines of left-aligned columns."""
    widths = [max(len(str(line[column])) for line in table) for column in range(len(table[0]))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]


def command_login(args: argparse.Namespace, out: Output) -> int:
    """Exchange a username and password for a new named API token and print it (shown only this once)."""
    password = os.environ.get("CONTRACTOR_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            raise UsageError(LOGIN_NEEDS_TERMINAL_MESSAGE)
        password = getpass.getpass(f"password for {args.username}: ")
    # A stale CONTRACTOR_TOKEN would make token authentication refuse the exchange itself: send none.
    anonymous = replace(config_from_env(os.environ), token=None)
    request: dict[str, Any] = {"username": args.username, "password": password, "name": args.name}
    if args.scope:
        request["scopes"] = args.scope
    if args.expires_in_days is not None:
        request["expires_in_days"] = args.expires_in_days
    _, body = ApiClient(anonymous).post("auth/token/", request)
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise ServerUnreachable(UNEXPECTED_SUCCESS_MESSAGE.format(status=200))
    out.result({"token": body["token"]}, body["token"])
    return EXIT_OK


def command_tokens_list(args: argparse.Namespace, out: Output) -> int:
    """List your API tokens of the tenant (admins with --all: every member's)."""
    tokens = api_client().get_all("tokens/", {"all": "true"} if args.all else None)
    table = [("ID", "NAME", "USER", "TOKEN", "SCOPES", "EXPIRES", "LAST USED", "STATE")]
    table += [
        (
            row.get("id"),
            row.get("name"),
            row.get("user"),
            row.get("prefix"),
            ",".join(row.get("scopes") or []),
            row.get("expires_at") or "",
            row.get("last_used_at") or "never",
            f"revoked ({row.get('revoked_reason')})" if row.get("revoked_at") else "active",
        )
        for row in tokens
        if isinstance(row, dict)
    ]
    out.result({"tokens": tokens}, aligned(table))
    return EXIT_OK


def command_tokens_revoke(args: argparse.Namespace, out: Output) -> int:
    """Revoke an API token by id: it stops working at once."""
    _, body = api_client().request("DELETE", f"tokens/{segment(args.id)}/")
    out.result(body, f"revoked token {args.id} ({name_of(body)})")
    return EXIT_OK


def command_governance_list(args: argparse.Namespace, out: Output) -> int:
    """List governance change requests (default: the pending ones)."""
    query = None if args.all else {"status": "pending"}
    changes = api_client().get_all("governance/changes/", query)
    table = [("ID", "KIND", "STATUS", "REQUESTED BY", "APPROVALS", "SUMMARY")]
    table += [
        (
            row.get("id"),
            row.get("kind"),
            row.get("status"),
            row.get("requested_by") or "(system)",
            f"{len([a for a in row.get('approvals') or [] if a.get('decision') == 'approve'])}"
            f"/{row.get('required_approvals')}",
            row.get("summary"),
        )
        for row in changes
        if isinstance(row, dict)
    ]
    out.result({"changes": changes}, aligned(table))
    return EXIT_OK


def command_governance_decide(args: argparse.Namespace, out: Output) -> int:
    """Approve or reject a governance change request (another admin; never the requester or beneficiary)."""
    payload = {"comment": args.comment} if args.comment else {}
    _, change = api_client().post(f"governance/changes/{segment(args.id)}/{args.decision}/", payload)
    out.result(change, f"governance change {args.id}: {state_of(change)}")
    return EXIT_OK
