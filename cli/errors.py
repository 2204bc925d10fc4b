"""The CLI's errors and exit codes: what failed, how it is printed, which code the process exits with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EXIT_OK = 0


EXIT_REFUSED = 1


EXIT_USAGE = 2


EXIT_AUTH = 3


EXIT_NOT_FOUND = 4


EXIT_SERVER = 5


# 403 answers that are a promotion rule refusing the action (exit 1), not missing credentials or roles
# (exit 3): the requester deciding their own request, someone else cancelling it, the member a governance
# change benefits approving it, an author approving where duties are separated.
RULE_REFUSAL_CODES = frozenset(
    {"self_approval", "not_the_requester", "beneficiary_approval", "separation_of_duties"}
)


NOT_JSON_MESSAGE = "HTTP {status} from the server, not a JSON answer"


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
