"""The runtime's HTTP door: execute, read and verify decisions, probes, metrics; all of its HTTP concerns.

Plain Django views (no DRF, sessions or auth middleware: the runtime key is the only credential). A request
is read here exactly once — path, headers, body (parsed once) — into a typed request for governed execution
or verification; what comes back is mapped to a status and a JSON body here and nowhere else. Every answer is
JSON; every error has the shape {"error": {"code", "message", "details"}}, including unknown paths, wrong
methods and unexpected failures, whatever DEBUG says.

Answers of POST /v1/execute (every recorded one carries its `decision_id`):

- 200 `allowed` with the output; 200 `denied` with `denied_by` and no output — a denial is the governed
  outcome of a valid request, not an error of the API (DESIGN §9 lists 400/404/502/503 only);
- 400 `invalid_input` (recorded); 502 `model_failed` / `invalid_model_output` (recorded); 500
  `execution_failed` when the bundle's own template fails (recorded);
- 401 `invalid_key`, 403 `bundle_out_of_scope`, 404 `not_released` / `unknown_pipeline`, 400
  `malformed_json` / `invalid_request`, 411, 413, 422 `idempotency_key_reused`: nothing executed, nothing
  recorded;
- 429 `tenant_busy` with Retry-After (recorded): the tenant or the endpoint had as many model calls in flight
  in this process as it may (runtime/limits.py); a retry under the same Idempotency-Key runs again;
- 429 `too_many_key_failures` with Retry-After: too many invalid keys from this source (nothing read);
- 503 `decision_not_recorded` (executed, record failed: output withheld) or `database_unavailable`.

Time: a model call lasts at most MODEL_TIMEOUT_CAP, so every request ends, with its decision, within
RUNTIME_WORKER_TIMEOUT (runtime/checks.py); gunicorn never has to cut one off.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django.db import DataError, connection
from django.db import Error as DatabaseFailure
from django.http import HttpRequest, HttpResponse

from bundles.language.decisions import (
    STATUS_ALLOWED,
    STATUS_DENIED,
    STATUS_INVALID_INPUT,
    STATUS_INVALID_OUTPUT,
    ErrorKind,
)
from core.api import field_error
from core.errors import DomainError
from core.text import unstorable
from runtime import metrics
from runtime.access import KeyGrant, access_decision, authenticate
from runtime.conf import runtime_setting
from runtime.exceptions import (
    BAD_REQUEST,
    IDEMPOTENCY_KEY_INVALID,
    INVALID_INPUT,
    INVALID_MODEL_OUTPUT,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    MODEL_FAILED,
    PAYLOAD_TOO_LARGE,
    SERVER_ERROR,
    TENANT_BUSY_MESSAGE,
    DatabaseUnavailable,
    InvalidIdempotencyKey,
    InvalidRequest,
    InvalidRuntimeKey,
    LengthRequired,
    MalformedJson,
    MethodNotAllowed,
    MetricsForbidden,
    PayloadTooLarge,
    RouteNotFound,
    TooManyKeyFailures,
    UnknownTenant,
)
from runtime.governed import ExecutionRequest, RecordedExecution, execute_governed
from runtime.limits import (
    TENANT_BUSY,
    busy_retry_after,
    count_key_failure,
    is_busy_reason,
    key_failure_source,
    key_failures_retry_after,
)
from runtime.verification import verify_decision

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = re.compile(rf"\A[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}\Z")
EXECUTION_FIELDS = frozenset({"input"})
VERIFY_FIELDS = frozenset({"input", "model_output"})
# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever REMOTE_ADDR says.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
# A JSON escape of NUL or of a surrogate: the only ways a body can carry text no decision record can hold.
UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
UNSTORABLE_TEXT = "must not contain {reason}: no decision record can hold it"
NUL_NAME = "must not contain a NUL (\\u0000) character: no bundle or pipeline has one in its name"
INVALID_PATH = "The request path is not valid."
UNUSABLE_VALUE = "The request holds a value the database cannot compare or store (e.g. a NUL character)."
NON_STANDARD_CONSTANT = "non-standard constant {constant}"
NOT_AN_OBJECT = "the body must be a JSON object"
UNKNOWN_FIELD = "is not a field of this request"
REQUIRED = "is required"
MODEL_OUTPUT_NOT_TEXT = "must be a string (the model's raw answer)"


# --- answers -----------------------------------------------------------------------------------------------


def json_response(body: dict, status: int = 200) -> HttpResponse:
    """Return `body` as a JSON response (an unpaired surrogate an error echoes is escaped, not fatal)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    try:
        payload = text.encode("utf-8")
    except UnicodeEncodeError:
        payload = text.encode("utf-8", "backslashreplace")
    return HttpResponse(payload, status=status, content_type=JSON_CONTENT_TYPE)


def error_response(error: DomainError) -> HttpResponse:
    """Return a domain error in the API's error shape."""
    response = json_response(error.as_dict(), error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="contractor-runtime"'
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    return response


def server_error_response() -> HttpResponse:
    """Return the 500 answer (the failure is logged, never shown)."""
    return json_response({"error": {"code": "server_error", "message": SERVER_ERROR, "details": []}}, 500)


def decision_response(recorded: RecordedExecution) -> HttpResponse:
    """Return the answer to a recorded decision: 200 when decided, the error shape for 4xx/5xx outcomes."""
    status, body = decision_answer(recorded)
    response = json_response(body, status)
    if recorded.replayed:
        response[REPLAYED_HEADER] = "true"
    if status == 429:
        response["Retry-After"] = str(busy_retry_after())
    return response


def decision_answer(recorded: RecordedExecution) -> tuple[int, dict[str, Any]]:
    """Return (HTTP status, body) of a recorded decision: 200 decided, 400 input, 429 busy, 502 model, 500
    bundle."""
    data, status = recorded.data, recorded.status
    if status in (STATUS_ALLOWED, STATUS_DENIED):
        return 200, {
            "decision_id": recorded.decision_id,
            "status": status,
            "output": recorded.output if status == STATUS_ALLOWED else None,
            "bundle": {"name": data["bundle"], "version": data["version"], "digest": data["digest"]},
            "environment": data["environment"],
            "pipeline": data["pipeline"],
            "denied_by": data["denied_by"],
            "policies": data["policies"],
            "redactions": data["redactions"],
            "decision_hash": data["decision_hash"],
        }
    if status == STATUS_INVALID_INPUT:
        code, message, http_status = "invalid_input", INVALID_INPUT.format(pipeline=data["pipeline"]), 400
    elif status == STATUS_INVALID_OUTPUT:
        code, message = "invalid_model_output", INVALID_MODEL_OUTPUT.format(pipeline=data["pipeline"])
        http_status = 502
    elif recorded.error_kind is ErrorKind.MODEL_FAILED and is_busy_reason(data["reason"]):
        code, message, http_status = TENANT_BUSY, TENANT_BUSY_MESSAGE.format(seconds=busy_retry_after()), 429
    elif recorded.error_kind is ErrorKind.MODEL_FAILED:
        code, message, http_status = "model_failed", MODEL_FAILED.format(reason=data["reason"]), 502
    elif recorded.error_kind is ErrorKind.PROMPT_TOO_LARGE:  # the bundle's fault, like any template failure
        code, message, http_status = ErrorKind.PROMPT_TOO_LARGE.value, data["reason"], 500
    else:
        code, message, http_status = "execution_failed", data["reason"] or status, 500
    error = {
        "code": code,
        "message": message,
        "details": data["errors"],
        "decision_id": recorded.decision_id,
        "status": status,
    }
    return http_status, {"error": error}


def service_endpoint(*methods: str) -> Callable:
    """Restrict a view to `methods` and turn every failure into a JSON error answer."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = error_response(MethodNotAllowed(METHOD_NOT_ALLOWED.format(method=request.method)))
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except DomainError as error:
                return error_response(error)
            except DataError as error:  # a value of the request, not the database, is the problem
                logger.warning("runtime: request value refused by the database: %s", error.__class__.__name__)
                return error_response(InvalidRequest(UNUSABLE_VALUE))
            except DatabaseFailure as error:
                logger.warning("runtime: database failure before execution: %s", error.__class__.__name__)
                return error_response(DatabaseUnavailable())
            except Exception:
                logger.exception("runtime: unhandled error")
                return server_error_response()

        return wrapper

    return decorate


# --- reading a request -------------------------------------------------------------------------------------


def require_tenant() -> None:
    """Raise UnknownTenant unless the request's host routed to a tenant."""
    if connection.schema_name == "public":
        raise UnknownTenant()


def authenticated(request: HttpRequest) -> KeyGrant:
    """Return the grant of the request's runtime key on this tenant's host; raise TooManyKeyFailures while
    the request's source is throttled for sending invalid keys (runtime/limits.py)."""
    require_tenant()
    source = key_failure_source(request.META.get("REMOTE_ADDR", ""))
    retry_after = key_failures_retry_after(source)
    if retry_after is not None:
        metrics.observe_key_failure(throttled=True)
        raise TooManyKeyFailures(retry_after)
    try:
        return authenticate(request.META.get("HTTP_AUTHORIZATION", ""))
    except InvalidRuntimeKey:
        metrics.observe_key_failure(throttled=False)
        count_key_failure(source)
        raise


def refuse_nul_in_path(**parameters: str) -> None:
    """Refuse (400) path parameters holding a NUL character, which no name in the database can have."""
    problems = [
        field_error(name, "null_characters_not_allowed", NUL_NAME)
        for name, value in parameters.items()
        if "\x00" in value
    ]
    if problems:
        raise InvalidRequest(INVALID_PATH, details=problems)


def checked_idempotency_key(value: str | None) -> str | None:
    """Return the Idempotency-Key header value, None when absent; raise InvalidIdempotencyKey."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.match(value):
        raise InvalidIdempotencyKey(IDEMPOTENCY_KEY_INVALID.format(limit=IDEMPOTENCY_KEY_MAX_LENGTH))
    return value


def request_body(request: HttpRequest) -> bytes:
    """Return the body, refusing (413) anything above RUNTIME_MAX_BODY_BYTES without reading it all."""
    limit = int(runtime_setting("RUNTIME_MAX_BODY_BYTES"))
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise LengthRequired()  # Django reads no chunked body: refuse it rather than see an empty one
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(PAYLOAD_TOO_LARGE.format(limit=limit))
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(PAYLOAD_TOO_LARGE.format(limit=limit))
    return body


def json_object(
    body: bytes, allowed: frozenset[str], required: frozenset[str], *, storable: bool = False
) -> dict[str, Any]:
    """Return the JSON object of a request body, parsed once; raise MalformedJson or InvalidRequest.

    NaN and Infinity, which JSON does not have, are refused as the first thing wrong with the body. With
    `storable`, a key or string no decision record can hold (NUL, unpaired surrogate) is refused before the
    body's shape is looked at: it cannot be written to PostgreSQL or canonically hashed, so executing would
    end in a decision that cannot be recorded (503) for what is a client's mistake.
    """
    constants: list[str] = []  # collected, not raised at once, so that unstorable text is reported first
    try:
        document = json.loads(body, parse_constant=constants.append)
    except (ValueError, RecursionError) as error:
        if constants:  # the parse went past a constant before failing: the constant is the first fault
            reason = NON_STANDARD_CONSTANT.format(constant=constants[0])
        elif isinstance(error, json.JSONDecodeError):
            reason = error.msg
        else:
            reason = str(error) or "too deeply nested"
        raise MalformedJson(MALFORMED_JSON.format(reason=reason)) from None
    if storable and UNSTORABLE_ESCAPE.search(body):
        problems = list(unstorable_strings(document))
        if problems:
            raise InvalidRequest(details=problems)
    if constants:
        raise MalformedJson(MALFORMED_JSON.format(reason=NON_STANDARD_CONSTANT.format(constant=constants[0])))
    if not isinstance(document, dict):
        raise InvalidRequest(details=[field_error("", "type", NOT_AN_OBJECT)])
    problems = [field_error(name, "unknown_field", UNKNOWN_FIELD) for name in document if name not in allowed]
    problems += [field_error(name, "required", REQUIRED) for name in sorted(required) if name not in document]
    if problems:
        raise InvalidRequest(details=problems)
    return document


def unstorable_strings(document: Any) -> Iterator[dict[str, str]]:
    """Yield a detail for every key or string of a JSON document that no decision record can hold."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = unstorable(value)
            if reason:
                yield field_error(path, "unstorable_text", UNSTORABLE_TEXT.format(reason=reason))
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                shown = key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
                child = f"{path}.{shown}" if path else shown
                reason = unstorable(key)
                if reason:
                    yield field_error(child, "unstorable_key", UNSTORABLE_TEXT.format(reason=reason))
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))


def execution_request(request: HttpRequest, bundle: str, pipeline: str) -> ExecutionRequest:
    """Return the execution request read from the path, the Idempotency-Key header and the body."""
    refuse_nul_in_path(bundle=bundle, pipeline=pipeline)
    idempotency_key = checked_idempotency_key(request.META.get(IDEMPOTENCY_HEADER))
    document = json_object(request_body(request), EXECUTION_FIELDS, EXECUTION_FIELDS, storable=True)
    return ExecutionRequest(bundle, pipeline, document["input"], idempotency_key)


# --- views -------------------------------------------------------------------------------------------------


@service_endpoint("POST")
def execute(request: HttpRequest, bundle: str, pipeline: str) -> HttpResponse:
    """POST /v1/execute/<bundle>/<pipeline>: run the live version's pipeline and return the decision."""
    started = time.perf_counter()
    grant = authenticated(request)
    execution = execution_request(request, bundle, pipeline)
    return decision_response(execute_governed(grant=grant, request=execution, started=started))


@service_endpoint("GET")
def decision(request: HttpRequest, decision_id: int) -> HttpResponse:
    """GET /v1/decisions/<id>: the decision record (this tenant, the key's bundle scope)."""
    grant = authenticated(request)
    return json_response(access_decision(grant, decision_id).as_dict())


@service_endpoint("POST")
def verify(request: HttpRequest, decision_id: int) -> HttpResponse:
    """POST /v1/decisions/<id>/verify: recompute the decision from its input and compare the hashes."""
    grant = authenticated(request)
    document = json_object(request_body(request), VERIFY_FIELDS, frozenset({"input"}))
    model_output = document.get("model_output")
    if model_output is not None and not isinstance(model_output, str):
        raise InvalidRequest(details=[field_error("model_output", "type", MODEL_OUTPUT_NOT_TEXT)])
    verification = verify_decision(
        grant=grant, decision_id=decision_id, input=document["input"], model_output=model_output
    )
    return json_response(verification.as_dict())


@service_endpoint("GET")
def healthz(request: HttpRequest) -> HttpResponse:
    """GET /healthz: the process is up."""
    return json_response({"status": "ok"})


@service_endpoint("GET")
def readyz(request: HttpRequest) -> HttpResponse:
    """GET /readyz: 200 when the database answers, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseFailure as error:
        return json_response(
            {"status": "unavailable", "problems": [f"database: {error.__class__.__name__}"]}, 503
        )
    return json_response({"status": "ready"})


def metrics_reader(request: HttpRequest) -> bool:
    """Return whether the caller may read /metrics, whose labels name every tenant, bundle and policy.

    With RUNTIME_METRICS_TOKEN set, only a request bearing it may; without, only a loopback client that no
    proxy forwarded (a scraper on the same host). A remote tenant client never may.
    """
    token = str(runtime_setting("RUNTIME_METRICS_TOKEN") or "")
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    try:
        loopback = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
    return loopback and not any(request.META.get(header) for header in PROXY_HEADERS)


@service_endpoint("GET")
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus text format, for the platform's scraper only (see metrics_reader)."""
    if not metrics_reader(request):
        raise MetricsForbidden()
    payload, content_type = metrics.exposition()
    return HttpResponse(payload, content_type=content_type)


def route_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Answer every unknown path with a JSON 404."""
    return error_response(RouteNotFound())


def handler_bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's 400 handler (e.g. a disallowed Host header), as JSON."""
    return json_response({"error": {"code": "bad_request", "message": BAD_REQUEST, "details": []}}, 400)


def handler_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's 404 handler, as JSON."""
    return route_not_found(request)


def handler_server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler, as JSON."""
    return server_error_response()
