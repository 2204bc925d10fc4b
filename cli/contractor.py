"""contractor: the command-line client of the CONTRACTOR control-plane API, for CI jobs and operators.

An API client only (httpx): it imports no Django. ``contractor test`` is the one command that runs without a
server; it uses the repository's pure-Python ``bundles`` package (validation, suites).

Configuration comes from the environment:
    CONTRACTOR_URL       where the control plane listens (default http://127.0.0.1:8000)
    CONTRACTOR_TENANT    the tenant slug; requests carry ``Host: <tenant>.localhost``
    CONTRACTOR_HOST      the Host header to send instead (overrides CONTRACTOR_TENANT)
    CONTRACTOR_TOKEN     the API token, sent as ``Authorization: Token <token>``
    CONTRACTOR_PASSWORD  the password ``contractor login`` uses instead of prompting

Exit codes: see ``EXIT_CODES_HELP`` (also printed by ``--help`` and listed in cli/README.md).
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import io
import json
import os
import re
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import httpx

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_SERVER = 5

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  refused: validation errors, gates failed, promotion rejected/cancelled/failed, API 4xx with an error
     code, a promotion rule (deciding your own request, cancelling someone else's)
  2  usage error (bad arguments, missing directory or bundle name, local tooling missing)
  3  authentication or permission error (HTTP 401/403: bad token, missing role or grant)
  4  not found (HTTP 404)
  5  server or network error, gate run error, or --wait timed out
"""

ENVIRONMENT_HELP = """\
environment:
  CONTRACTOR_URL       control plane URL (default http://127.0.0.1:8000)
  CONTRACTOR_TENANT    tenant slug: sends Host: <tenant>.localhost
  CONTRACTOR_HOST      Host header to send instead of <tenant>.localhost
  CONTRACTOR_TOKEN     API token (Authorization: Token <token>); get one with `contractor login --name N`
  CONTRACTOR_PASSWORD  password for `contractor login` (prompted when unset)
"""

PROGRAM_DESCRIPTION = (
    "Command-line client of the CONTRACTOR control plane: push, test, gates, promote, rollback."
)
DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1/"
TENANT_HOST_SUFFIX = ".localhost"
USER_AGENT = "contractor-cli"
REQUEST_TIMEOUT_SECONDS = 30.0
DEFAULT_WAIT_SECONDS = 600.0
FIRST_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 5.0
MAX_POLL_FAILURES = 3
MANIFEST_FILE = "bundle.yaml"
ARCHIVE_FILENAME = "bundle.tar.gz"
SKIPPED_DIRECTORIES = frozenset({".git", "__MACOSX"})
MANIFEST_NAME = re.compile(
    r"""^name:[ \t]*["']?([A-Za-z0-9][A-Za-z0-9._-]*)["']?[ \t]*(?:#.*)?$""", re.MULTILINE
)

# 403 answers that are a promotion rule refusing the action (exit 1), not missing credentials or roles
# (exit 3): the requester deciding their own request, someone else cancelling it.
RULE_REFUSAL_CODES = frozenset({"self_approval", "not_the_requester"})

GATE_OUTCOMES = {"passed": EXIT_OK, "failed": EXIT_REFUSED, "error": EXIT_SERVER}
PROMOTION_OUTCOMES = {
    "promoted": EXIT_OK,
    "rejected": EXIT_REFUSED,
    "cancelled": EXIT_REFUSED,
    "failed": EXIT_REFUSED,
}

NOT_A_DIRECTORY_MESSAGE = "{path} is not a directory"
NO_BUNDLE_NAME_MESSAGE = "cannot read the bundle name from {path}; pass --name"
BAD_URL_MESSAGE = "CONTRACTOR_URL must be an http or https URL, not {url!r}"
UNREACHABLE_MESSAGE = "cannot reach {url}: {reason}"
REQUEST_TIMEOUT_MESSAGE = "no answer from {url} within {seconds}s"
WAIT_TIMEOUT_MESSAGE = "{what} still {status} after {seconds}s; stopped waiting"
NOT_JSON_MESSAGE = "HTTP {status} from the server, not a JSON answer"
LOGIN_NEEDS_TERMINAL_MESSAGE = "no password: set CONTRACTOR_PASSWORD or run in a terminal"
TOOLING_MISSING_MESSAGE = (
    "`contractor test` needs the repository's bundles package ({reason}); run it from a checkout"
)
SUITE_LINE = "  suite {name}: {verdict} (pass rate {pass_rate}, policy coverage {coverage})"
INVALID_BUNDLE_MESSAGE = "invalid bundle: {count} error(s)"
VALID_BUNDLE_MESSAGE = "valid: {name} {version} {digest}"
NOT_AUTHENTICATED_CODE = "not_authenticated"
LOGIN_HINT = "CONTRACTOR_TOKEN is not set: run `contractor login --username U` and export the token"
DEFAULT_TOKEN_NAME = "contractor CLI"  # noqa: S105 (a name, not a secret)
TOKEN_SCOPES = ("read", "push", "promote", "approve", "operate", "audit", "admin")
UNEXPECTED_SUCCESS_MESSAGE = "the server answered HTTP {status} without a JSON object"


class CliError(Exception):
    """A command failed; ``exit_code`` says how, ``message`` says why."""

    exit_code = EXIT_SERVER

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def as_dict(self) -> dict[str, Any]:
        """Return the error in the API's error shape, for --json output."""
        return {"error": {"code": "cli_error", "message": self.message, "details": []}}


class UsageError(CliError):
    """The command line or its local inputs (directory, manifest, password) cannot be used."""

    exit_code = EXIT_USAGE


class ServerUnreachable(CliError):
    """The control plane could not be reached or did not answer in time."""

    exit_code = EXIT_SERVER


class WaitTimedOut(CliError):
    """A --wait ended before the gate run or promotion reached a final state."""

    exit_code = EXIT_SERVER


class Refused(CliError):
    """The work was done and the answer is no: validation errors, gates failed, promotion not applied."""

    exit_code = EXIT_REFUSED


class ApiError(CliError):
    """The API answered with an error status (and, normally, the ``{"error": {...}}`` body)."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None):
        super().__init__(message, exit_code_for(status, code))
        self.status = status
        self.code = code
        self.details = details or []

    def as_dict(self) -> dict[str, Any]:
        """Return the API's error body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def exit_code_for(status: int, code: str) -> int:
    """Return the exit code for an API error: governance rules that say no are refusals, not auth failures."""
    if status == 403 and code in RULE_REFUSAL_CODES:
        return EXIT_REFUSED
    return exit_code_for_status(status)


def exit_code_for_status(status: int) -> int:
    """Return the exit code for an HTTP status."""
    if status < 400:
        return EXIT_OK
    if status in (401, 403):
        return EXIT_AUTH
    if status == 404:
        return EXIT_NOT_FOUND
    if status < 500:
        return EXIT_REFUSED
    return EXIT_SERVER


def api_error_from_response(status: int, body: Any) -> ApiError:
    """Return the ApiError of an error response (JSON body already decoded, or None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        details = error.get("details")
        return ApiError(
            status,
            str(error.get("code") or "error"),
            str(error.get("message") or f"HTTP {status}"),
            details if isinstance(details, list) else ([details] if details else []),
        )
    return ApiError(status, f"http_{status}", NOT_JSON_MESSAGE.format(status=status))


def format_detail(detail: Any) -> str:
    """Return one line for one error detail: bundle errors as ``file:line:col: code: message (path)``."""
    if not isinstance(detail, Mapping):
        return str(detail)
    if "file" in detail:
        return format_bundle_error(detail)
    if "field" in detail:
        return f"{detail['field']}: {detail.get('code', 'invalid')}: {detail.get('message', '')}"
    return json.dumps(detail, sort_keys=True)


def format_bundle_error(error: Mapping[str, Any]) -> str:
    """Return a bundle error as ``file:line:col: code: message (path)`` (omitting unknown parts)."""
    location = str(error.get("file") or "<bundle>")
    if error.get("line") is not None:
        location += f":{error['line']}"
        if error.get("column") is not None:
            location += f":{error['column']}"
    text = f"{location}: {error.get('code', 'invalid')}: {error.get('message', '')}"
    return f"{text} ({error['path']})" if error.get("path") else text


def format_error(error: CliError) -> list[str]:
    """Return the lines describing a failed command."""
    if isinstance(error, ApiError):
        lines = [f"error: {error.message} [{error.code}, HTTP {error.status}]"]
        lines.extend("  " + format_detail(detail) for detail in error.details)
        return lines
    return [f"error: {error.message}"]


@dataclass(frozen=True)
class ClientConfig:
    """Where the API is and how to present ourselves to it."""

    url: str
    host: str | None
    token: str | None

    def headers(self) -> dict[str, str]:
        """Return the headers sent with every request."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.host:
            headers["Host"] = self.host
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers


def config_from_env(environ: Mapping[str, str]) -> ClientConfig:
    """Return the client configuration from CONTRACTOR_* environment variables."""
    url = (environ.get("CONTRACTOR_URL") or DEFAULT_URL).rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise UsageError(BAD_URL_MESSAGE.format(url=url))
    tenant = (environ.get("CONTRACTOR_TENANT") or "").strip()
    host = (environ.get("CONTRACTOR_HOST") or "").strip() or (tenant + TENANT_HOST_SUFFIX if tenant else None)
    return ClientConfig(url=url, host=host, token=(environ.get("CONTRACTOR_TOKEN") or "").strip() or None)


class ApiClient:
    """Talk JSON to ``/api/v1/`` of one tenant; raise ApiError / ServerUnreachable on failure."""

    def __init__(self, config: ClientConfig, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._http = httpx.Client(
            base_url=config.url + API_PREFIX,
            headers=config.headers(),
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
            follow_redirects=False,
        )

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """Return the decoded JSON of a GET."""
        return self.request("GET", path, params=params)[1]

    def post(self, path: str, payload: Mapping[str, Any] | None = None, **kwargs: Any) -> tuple[int, Any]:
        """Return the status and decoded JSON of a POST."""
        if payload is not None:
            kwargs["json"] = payload
        return self.request("POST", path, **kwargs)

    def get_all(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Return every item of a list endpoint, following DRF limit/offset pages."""
        page = self.get(path, params)
        if not isinstance(page, dict) or "results" not in page:
            return page if isinstance(page, list) else []
        items = list(page["results"])
        while page.get("next"):
            next_url = urlsplit(page["next"])  # the server names itself by our Host header: reuse our URL
            page = self.get(
                next_url.path.removeprefix(API_PREFIX.rstrip("/")).lstrip("/") + "?" + next_url.query
            )
            items.extend(page.get("results", []))
        return items

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Return the status and decoded JSON body of a 2xx answer; raise for anything else."""
        try:
            response = self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException:
            raise ServerUnreachable(
                REQUEST_TIMEOUT_MESSAGE.format(url=self.config.url, seconds=REQUEST_TIMEOUT_SECONDS)
            ) from None
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise ServerUnreachable(UNREACHABLE_MESSAGE.format(url=self.config.url, reason=reason)) from None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            return response.status_code, body
        error = api_error_from_response(response.status_code, body)
        if error.code == NOT_AUTHENTICATED_CODE and not self.config.token:
            error.details.append(LOGIN_HINT)
        raise error

    def close(self) -> None:
        """Close the connections."""
        self._http.close()


class Output:
    """Write results to stdout and errors/progress to stderr, human-readable or as JSON."""

    def __init__(self, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def result(self, data: Any, lines: list[str] | str) -> None:
        """Print the result: ``data`` as JSON in --json mode, else the human lines."""
        if self.json_mode:
            print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.stdout)
        else:
            print("\n".join([lines] if isinstance(lines, str) else lines), file=self.stdout)

    def progress(self, line: str) -> None:
        """Print a progress line (human mode only)."""
        if not self.json_mode:
            print(line, file=self.stderr, flush=True)

    def error(self, error: CliError) -> None:
        """Print a failed command's error."""
        if self.json_mode:
            print(json.dumps(error.as_dict(), indent=2, sort_keys=True, default=str), file=self.stderr)
        else:
            print("\n".join(format_error(error)), file=self.stderr)


def segment(value: str) -> str:
    """Return a value quoted for use as one URL path segment."""
    return quote(str(value), safe="")


def state_of(record: Any) -> str:
    """Return the state of a gate run or promotion record ("status", or "state")."""
    if not isinstance(record, dict):
        return "unknown"
    return str(record.get("status") or record.get("state") or "unknown")


def name_of(value: Any) -> str:
    """Return the display name of a reference that is a name or a nested object."""
    if isinstance(value, dict):
        return str(value.get("name") or value.get("version") or value.get("id") or "?")
    return "-" if value is None else str(value)


def wait_for(
    fetch: Callable[[], dict[str, Any]],
    final_states: Mapping[str, int],
    timeout_seconds: float,
    *,
    what: str,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Return the record once its state is final; poll with back-off, tolerating brief server trouble."""
    deadline = clock() + timeout_seconds
    interval = FIRST_POLL_SECONDS
    failures = 0
    last_state = None
    while True:
        try:
            record = fetch()
            failures = 0
        except (ServerUnreachable, ApiError) as error:
            failures += 1
            if failures >= MAX_POLL_FAILURES or (isinstance(error, ApiError) and error.status < 500):
                raise
            record = None
        if record is not None:
            state = state_of(record)
            if state in final_states:
                return record
            if state != last_state:
                progress(f"{what}: {state}")
                last_state = state
        if clock() + interval > deadline:
            raise WaitTimedOut(
                WAIT_TIMEOUT_MESSAGE.format(what=what, status=last_state, seconds=timeout_seconds)
            )
        sleep(interval)
        interval = min(interval * 2, MAX_POLL_SECONDS)


def manifest_name(directory: Path) -> str | None:
    """Return the top-level ``name:`` of the directory's bundle.yaml, or None."""
    try:
        text = (directory / MANIFEST_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = MANIFEST_NAME.search(text)
    return match.group(1) if match else None


def bundle_paths(directory: Path) -> Iterator[Path]:
    """Yield every entry to archive under ``directory`` in a stable order (skipping .git and __MACOSX)."""
    for root, subdirectories, filenames in os.walk(directory):
        subdirectories[:] = sorted(name for name in subdirectories if name not in SKIPPED_DIRECTORIES)
        # os.walk does not descend into linked directories: archive the link so the server refuses it.
        for name in subdirectories:
            if Path(root, name).is_symlink():
                yield Path(root, name)
        yield from (Path(root, name) for name in sorted(filenames))


def bundle_archive(directory: Path) -> bytes:
    """Return a reproducible .tar.gz of the bundle directory (paths relative to it, no owner, no times)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in bundle_paths(directory):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(directory).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                info.mode = 0o644
                with path.open("rb") as content:
                    archive.addfile(info, content)
            else:
                archive.addfile(info)  # links and special files: the server refuses them precisely
    return buffer.getvalue()


def bundle_directory(value: str) -> Path:
    """Return the bundle directory given on the command line; raise UsageError when it is not one."""
    directory = Path(value)
    if not directory.is_dir():
        raise UsageError(NOT_A_DIRECTORY_MESSAGE.format(path=value))
    return directory


def api_client() -> ApiClient:
    """Return an API client configured from the environment."""
    return ApiClient(config_from_env(os.environ))


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


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser = argparse.ArgumentParser(
        prog="contractor",
        description=PROGRAM_DESCRIPTION,
        epilog=ENVIRONMENT_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace, Output], int], help_text: str, **kw: Any):
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )
        sub.set_defaults(handler=handler)
        return sub

    push = command("push", command_push, "push a bundle directory as a new version")
    push.add_argument("directory", metavar="DIR")
    push.add_argument("--name", help="bundle name (default: name in DIR/bundle.yaml)")

    test = command("test", command_test, "validate a bundle directory and run its suites locally (no server)")
    test.add_argument("directory", metavar="DIR")

    gates = commands.add_parser("gates", help="quality gates of a version")
    gate_commands = gates.add_subparsers(dest="gates_command", required=True, metavar="COMMAND")
    gates_run = gate_commands.add_parser(
        "run",
        parents=[common],
        help="run the gates (every suite) of a version",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gates_run.set_defaults(handler=command_gates_run)
    gates_run.add_argument("bundle", metavar="BUNDLE")
    gates_run.add_argument("version", metavar="VERSION")
    add_wait_options(gates_run, "until the gate run passed, failed or errored")

    promote = command("promote", command_promote, "request the promotion of a version to an environment")
    promote.add_argument("bundle", metavar="BUNDLE")
    promote.add_argument("version", metavar="VERSION")
    promote.add_argument(
        "--to", required=True, metavar="ENV", help="target environment (staging, current, ...)"
    )
    promote.add_argument("--justification", required=True, metavar="TEXT")
    add_wait_options(promote, "until the request is promoted, rejected, cancelled or failed")

    for decision, help_text in (
        ("approve", "approve a promotion request"),
        ("reject", "reject a promotion request"),
    ):
        decide = command(decision, command_decide, help_text)
        decide.set_defaults(decision=decision)
        decide.add_argument("id", metavar="ID")
        decide.add_argument("--comment", default="")
    cancel = command("cancel", command_decide, "cancel your promotion request")
    cancel.set_defaults(decision="cancel")
    cancel.add_argument("id", metavar="ID")

    rollback = command("rollback", command_rollback, "point an environment back to an earlier version")
    rollback.add_argument("bundle", metavar="BUNDLE")
    rollback.add_argument("--env", required=True, metavar="ENV")
    rollback.add_argument("--to", metavar="VERSION", help="version to restore (default: the one before)")
    rollback.add_argument("--justification", required=True, metavar="TEXT")

    status = command("status", command_status, "show the live version of bundles per environment")
    status.add_argument("bundle", metavar="BUNDLE", nargs="?")

    login = command(
        "login", command_login, "get an API token (password from CONTRACTOR_PASSWORD or prompted)"
    )
    login.add_argument("--username", required=True, metavar="U")
    login.add_argument(
        "--name", default=DEFAULT_TOKEN_NAME, help="a name for the new token (e.g. the CI job)"
    )
    login.add_argument(
        "--scope",
        action="append",
        choices=TOKEN_SCOPES,
        help="a scope of the token (repeat; default: the scopes your roles use)",
    )
    login.add_argument("--expires-in-days", type=int, metavar="DAYS", help="lifetime (default 90)")

    tokens = commands.add_parser("tokens", help="your personal API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    for name, handler, help_text in (
        ("list", command_tokens_list, "list your tokens (--all: every member's, for admins)"),
        ("revoke", command_tokens_revoke, "revoke a token by id"),
    ):
        sub = token_commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        if name == "list":
            sub.add_argument("--all", action="store_true", help="every member's tokens (admins)")
        else:
            sub.add_argument("id", metavar="ID")
    return parser


def add_wait_options(parser: argparse.ArgumentParser, until: str) -> None:
    """Add --wait and --timeout to a command that starts asynchronous work."""
    parser.add_argument("--wait", action="store_true", help=f"wait {until}")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help=f"seconds to wait at most (default {DEFAULT_WAIT_SECONDS:g}; exit 5 when exceeded)",
    )


def positive_seconds(value: str) -> float:
    """Return a positive number of seconds parsed from the command line."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return seconds


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one contractor command and return its exit code."""
    args = build_parser().parse_args(argv)
    out = Output(json_mode=args.json, stdout=stdout, stderr=stderr)
    try:
        return args.handler(args, out)
    except CliError as error:
        out.error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
