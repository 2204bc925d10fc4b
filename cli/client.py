"""The CLI's connection to the control-plane API: configuration, the JSON client, output and waiting."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import httpx

from cli.errors import (
    ApiError,
    CliError,
    ServerUnreachable,
    UsageError,
    WaitTimedOut,
    api_error_from_response,
    format_error,
)

DEFAULT_URL = "http://127.0.0.1:8000"


API_PREFIX = "/api/v1/"


TENANT_HOST_SUFFIX = ".localhost"


USER_AGENT = "contractor-cli"


REQUEST_TIMEOUT_SECONDS = 30.0


FIRST_POLL_SECONDS = 0.5


MAX_POLL_SECONDS = 5.0


MAX_POLL_FAILURES = 3


BAD_URL_MESSAGE = "CONTRACTOR_URL must be an http or https URL, not {url!r}"


UNREACHABLE_MESSAGE = "cannot reach {url}: {reason}"


REQUEST_TIMEOUT_MESSAGE = "no answer from {url} within {seconds}s"


WAIT_TIMEOUT_MESSAGE = "{what} still {status} after {seconds}s; stopped waiting"


NOT_AUTHENTICATED_CODE = "not_authenticated"


LOGIN_HINT = "CONTRACTOR_TOKEN is not set: run `contractor login --username U` and export the token"


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


def api_client() -> ApiClient:
    """Return an API client configured from the environment."""
    return ApiClient(config_from_env(os.environ))
