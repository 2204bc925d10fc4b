"""HTTP endpoints of the runtime process: execute, read and verify decisions, probes, metrics.

Plain Django views (no DRF, sessions or auth middleware: the runtime key is the only credential). Every
answer is JSON; every error has the shape {"error": {"code", "message", "details"}}, including unknown paths,
wrong methods and unexpected failures, whatever DEBUG says.
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

from django.db import DataError, connection, transaction
from django.db import Error as DatabaseFailure
from django.http import HttpRequest, HttpResponse

from audit.services import record
from bundles.language.decisions import content_hash
from bundles.language.models import ModelError, ModelRequest
from core.errors import DomainError
from runtime import execution, metrics
from runtime.conf import runtime_setting
from runtime.exceptions import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    SERVER_ERROR,
    DatabaseUnavailable,
    InvalidRequest,
    LengthRequired,
    MethodNotAllowed,
    MetricsForbidden,
    PayloadTooLarge,
    RouteNotFound,
    UnknownTenant,
)

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"
IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
BENCH_ACTION = "bench.bare"
BENCH_ENDPOINT = "default"
BENCH_MODEL = "dev-model"
BENCH_FIELDS = frozenset({"input"})
# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever REMOTE_ADDR says.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
# A JSON escape of NUL or of a surrogate: the only ways a body can carry text no decision record can hold.
UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
NUL_TEXT = "must not contain a NUL (\\u0000) character: no decision record can hold it"
SURROGATE_TEXT = "must not contain an unpaired surrogate (not Unicode text): no decision record can hold it"
NUL_NAME = "must not contain a NUL (\\u0000) character: no bundle or pipeline has one in its name"
INVALID_PATH = "The request path is not valid."
UNUSABLE_VALUE = "The request holds a value the database cannot compare or store (e.g. a NUL character)."


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
    return response


def server_error_response() -> HttpResponse:
    """Return the 500 answer (the failure is logged, never shown)."""
    return json_response({"error": {"code": "server_error", "message": SERVER_ERROR, "details": []}}, 500)


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


def require_tenant() -> None:
    """Raise UnknownTenant unless the request's host routed to a tenant."""
    if connection.schema_name == "public":
        raise UnknownTenant()


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


def unstorable(text: str) -> str | None:
    """Return why `text` cannot be stored in a decision record (NUL, unpaired surrogate), or None."""
    if "\x00" in text:
        return NUL_TEXT
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_TEXT
    return None


def unstorable_strings(document: Any) -> Iterator[dict[str, str]]:
    """Yield a detail for every key or string of a JSON document that no decision record can hold."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = unstorable(value)
            if reason:
                yield {"field": path, "code": "unstorable_text", "message": reason}
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                shown = key.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
                child = f"{path}.{shown}" if path else shown
                reason = unstorable(key)
                if reason:
                    yield {"field": child, "code": "unstorable_key", "message": reason}
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))


def refuse_unstorable_text(body: bytes) -> None:
    """Refuse (400, nothing executed) a JSON body with NUL or unpaired surrogates in a key or a string.

    Such text cannot be written to PostgreSQL or canonically hashed: executing would end in a decision that
    cannot be recorded (503), a server error or a policy failing on it, for what is a client's mistake.
    Only bodies holding such an escape are parsed here; a malformed body is left to the execution's parser.
    """
    if not UNSTORABLE_ESCAPE.search(body):
        return
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return
    problems = list(unstorable_strings(document))
    if problems:
        raise InvalidRequest(details=problems)


def refuse_nul_in_path(**parameters: str) -> None:
    """Refuse (400) path parameters holding a NUL character, which no name in the database can have."""
    problems = [
        {"field": name, "code": "null_characters_not_allowed", "message": NUL_NAME}
        for name, value in parameters.items()
        if "\x00" in value
    ]
    if problems:
        raise InvalidRequest(INVALID_PATH, details=problems)


def authenticated(request: HttpRequest) -> execution.KeyGrant:
    """Return the grant of the request's runtime key on this tenant's host."""
    require_tenant()
    return execution.authenticate(request.META.get("HTTP_AUTHORIZATION", ""))


@service_endpoint("POST")
def execute(request: HttpRequest, bundle: str, pipeline: str) -> HttpResponse:
    """POST /v1/execute/<bundle>/<pipeline>: run the live version's pipeline and return the decision."""
    started = time.perf_counter()
    grant = authenticated(request)
    refuse_nul_in_path(bundle=bundle, pipeline=pipeline)
    idempotency_key = execution.checked_idempotency_key(request.META.get(IDEMPOTENCY_HEADER))
    body = request_body(request)
    refuse_unstorable_text(body)
    result = execution.run_execution(
        grant=grant,
        bundle=bundle,
        pipeline=pipeline,
        body=body,
        idempotency_key=idempotency_key,
        started=started,
    )
    response = json_response(result.body, result.status_code)
    if result.replayed:
        response[REPLAYED_HEADER] = "true"
    return response


@service_endpoint("GET")
def decision(request: HttpRequest, decision_id: int) -> HttpResponse:
    """GET /v1/decisions/<id>: the decision record (this tenant, the key's bundle scope)."""
    grant = authenticated(request)
    return json_response(execution.recorded_decision(grant, decision_id).as_dict())


@service_endpoint("POST")
def verify(request: HttpRequest, decision_id: int) -> HttpResponse:
    """POST /v1/decisions/<id>/verify: recompute the decision from its input and compare the hashes."""
    grant = authenticated(request)
    return json_response(
        execution.verify_decision(grant=grant, decision_id=decision_id, body=request_body(request))
    )


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


@service_endpoint("POST")
def bench_bare(request: HttpRequest, bundle: str, pipeline: str) -> HttpResponse:
    """POST /v1/bench/bare/<bundle>/<pipeline> (benchmark only): call the model, insert one record, answer.

    The ungoverned baseline of bench/runtime.py: no key, no release pointer, no policies or validation; the
    same model endpoint and the same single audit INSERT in one transaction.
    """
    require_tenant()
    document = execution.parse_json_object(request_body(request), BENCH_FIELDS, frozenset())
    model = execution.model_for(BENCH_ENDPOINT)
    prompt = json.dumps(document.get("input"), sort_keys=True)
    try:
        text = model(ModelRequest("", prompt, {"name": BENCH_MODEL})).text
    except ModelError as error:
        return json_response({"error": {"code": "model_failed", "message": str(error), "details": []}}, 502)
    with transaction.atomic():
        entry = record(
            actor=None,
            action=BENCH_ACTION,
            data={"bundle": bundle, "pipeline": pipeline, "input_hash": content_hash(document.get("input"))},
        )
    return json_response({"record_id": entry.pk, "output": text})


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
