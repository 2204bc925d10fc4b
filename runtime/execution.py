"""Governed execution in the runtime process (data plane), connected as the restricted runtime role.

One execution: authenticate the runtime key → (Idempotency-Key: return the first decision) → resolve the
version live in the key's environment through `runtime_released_version` → run the pipeline with the bundle
engine and the endpoint's real provider → write the decision record (`runtime.decision`) → answer. If the
record cannot be written, nothing of the execution leaves the process (fail closed, 503).

Hot-path reads are cached per process for at most RUNTIME_CACHE_SECONDS (≤ 1 s): keys (so revocation applies
within that time), release pointers (promotions and rollbacks likewise), model endpoints and tenants. Compiled
bundles are cached by digest (content-addressed, so they never go stale).

Answers (every recorded one carries its `decision_id`):

- 200 `allowed` with the output; 200 `denied` with `denied_by` and no output — a denial is the governed
  outcome of a valid request, not an error of the API (DESIGN §9 lists 400/404/502/503 only);
- 400 `invalid_input` (recorded); 502 `model_failed` / `invalid_model_output` (recorded); 500
  `execution_failed` when the bundle's own template fails (recorded);
- 401 `invalid_key`, 403 `bundle_out_of_scope`, 404 `not_released` / `unknown_pipeline`, 400
  `malformed_json` / `invalid_request`, 411, 413, 422 `idempotency_key_reused`: nothing executed, nothing
  recorded;
- 503 `decision_not_recorded` (executed, record failed: output withheld) or `database_unavailable`.

Decision records keep hashes, not payloads. Two documented exceptions: a pipeline with `store_payload: true`
keeps its redacted input (fields redacted by policies or classified pii/secret removed) and the model's raw
answer; a request with an Idempotency-Key keeps its validated output, so that a retry receives exactly the
first response.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import Error as DatabaseFailure
from django.db import IntegrityError, connection, transaction

from audit.hashing import canonical_record, record_hash
from audit.models import ActorKind
from audit.services import record
from bundles.language.compiler import (
    CompiledBundle,
    Pipeline,
    UnknownPipelineError,
    clear_bundle_cache,
    compiled,
)
from bundles.language.decisions import (
    STATUS_ALLOWED,
    STATUS_DENIED,
    STATUS_ERROR,
    STATUS_INVALID_INPUT,
    STATUS_INVALID_OUTPUT,
    Decision,
    ErrorKind,
    content_hash,
    model_failure,
)
from bundles.language.digest import bundle_digest
from bundles.language.execution import execute as engine_execute
from bundles.language.models import ModelError, ModelRequest, ModelResponse, RecordingModel, ReplayModel
from runtime import metrics
from runtime.caches import TTLCache
from runtime.conf import api_key_variable_allowed, cache_seconds
from runtime.exceptions import (
    API_KEY_ENV_NOT_ALLOWED,
    API_KEY_NOT_SET,
    BUNDLE_OUT_OF_SCOPE,
    DECISION_NOT_FOUND,
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_UNUSABLE,
    IDEMPOTENCY_KEY_INVALID,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_INPUT,
    INVALID_MODEL_OUTPUT,
    MALFORMED_JSON,
    NOT_RELEASED,
    UNKNOWN_PIPELINE,
    VERSION_NOT_RELEASED,
    BundleOutOfScope,
    DecisionNotFound,
    DecisionNotRecorded,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidRequest,
    InvalidRuntimeKey,
    MalformedJson,
    NotReleased,
    UnknownPipeline,
    VersionNotReleased,
)
from runtime.exceptions import (
    MODEL_FAILED as MODEL_FAILED_MESSAGE,
)
from runtime.grants import DECISION_ACTION
from runtime.keys import bearer_key, secret_matches
from runtime.models import ModelEndpoint, RuntimeKey
from runtime.providers import OpenAICompatibleProvider, ProviderConfigurationError

logger = logging.getLogger(__name__)

EXECUTION_FIELDS = frozenset({"input"})
VERIFY_FIELDS = frozenset({"input", "model_output"})
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = re.compile(rf"\A[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}\Z")
HIDDEN_CLASSIFICATIONS = frozenset({"pii", "secret"})
PROVIDER_CACHE_SIZE = 256
VERSION_TARGET = "bundles.bundleversion"
NO_REPLAY_OUTPUT = "replay: no model output was given or retained"
MODEL_OUTPUT_REQUIRED = (
    "model_output is required: the model answered this decision and its answer was not retained"
)

RELEASE_SQL = (
    "SELECT bundle, environment, version, digest, version_id FROM runtime_released_version "
    "WHERE bundle = %s AND environment_id = %s AND live"
)
CONTENT_SQL = "SELECT content FROM runtime_released_version WHERE digest = %s LIMIT 1"
KEY_ENVIRONMENT_SQL = "SELECT environment FROM runtime_released_version WHERE environment_id = %s LIMIT 1"
DECISION_SQL = (
    "SELECT id, created_at, key_id, key_name, target_type, target_id, data, record_hash "
    "FROM runtime_decision WHERE id = %s"
)
IDEMPOTENT_DECISION_SQL = (
    "SELECT id, data FROM runtime_decision WHERE key_id = %s AND data ->> 'idempotency_key' = %s"
)

STATUS_CODES = {
    STATUS_ALLOWED: 200,
    STATUS_DENIED: 200,
    STATUS_INVALID_INPUT: 400,
    STATUS_INVALID_OUTPUT: 502,
}


# --- who and what ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a runtime key allows, as read from `runtime_runtimekey`; the actor of its decision records."""

    id: int
    name: str
    secret_hash: str
    environment_id: int
    bundles: frozenset[str]
    revoked: bool

    @property
    def audit_actor(self) -> tuple[str, str, str]:
        """Return how this key appears as the actor of an audit record."""
        return ActorKind.RUNTIME_KEY, str(self.id), self.name

    def may_execute(self, bundle: str) -> bool:
        """Return whether the key's bundle scope includes `bundle` (an empty scope includes all)."""
        return not self.bundles or bundle in self.bundles


@dataclass(frozen=True, slots=True)
class Release:
    """The version of a bundle live in an environment, as read from `runtime_released_version`."""

    bundle: str
    environment: str
    version: str
    digest: str
    version_id: int


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """A model endpoint's settings; hashable, so one provider serves each distinct configuration."""

    name: str
    base_url: str
    allowed_models: tuple[str, ...]
    api_key_env: str
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The HTTP status and JSON body of an execution; `replayed` when it is a recorded decision's answer."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


_keys: TTLCache[KeyGrant | None] = TTLCache(cache_seconds)
_releases: TTLCache[Release | None] = TTLCache(cache_seconds)
_endpoints: TTLCache[EndpointConfig | None] = TTLCache(cache_seconds)
_providers: dict[tuple[EndpointConfig, str | None], OpenAICompatibleProvider] = {}
_providers_lock = threading.Lock()


def clear_caches() -> None:
    """Forget every cached key, release, endpoint and compiled bundle of this process."""
    for cache in (_keys, _releases, _endpoints):
        cache.clear()
    clear_bundle_cache()


def schema() -> str:
    """Return the schema (tenant) of the current request."""
    return connection.schema_name


def authenticate(authorization: str) -> KeyGrant:
    """Return the grant of the bearer runtime key of this tenant; raise InvalidRuntimeKey otherwise."""
    parsed = bearer_key(authorization)
    if parsed is None:
        raise InvalidRuntimeKey()
    prefix, secret = parsed
    grant = _keys.get_or_load((schema(), prefix), lambda: load_key(prefix))
    if grant is None or grant.revoked or not secret_matches(secret, grant.secret_hash):
        raise InvalidRuntimeKey()
    return grant


def load_key(prefix: str) -> KeyGrant | None:
    """Return the grant of the key with `prefix` in this tenant, or None."""
    row = (
        RuntimeKey.objects.filter(prefix=prefix)
        .values_list("id", "name", "secret_hash", "environment_id", "bundles", "revoked_at")
        .first()
    )
    if row is None:
        return None
    key_id, name, stored_hash, environment_id, bundles, revoked_at = row
    return KeyGrant(key_id, name, stored_hash, environment_id, frozenset(bundles), revoked_at is not None)


def live_release(bundle: str, environment_id: int) -> Release:
    """Return the version of `bundle` live in the environment; raise NotReleased."""
    release = _releases.get_or_load(
        (schema(), bundle, environment_id), lambda: load_release(bundle, environment_id)
    )
    if release is None:
        raise NotReleased(NOT_RELEASED.format(bundle=bundle))
    return release


def load_release(bundle: str, environment_id: int) -> Release | None:
    """Read the live version of `bundle` in the environment through the released-versions view."""
    with connection.cursor() as cursor:
        cursor.execute(RELEASE_SQL, [bundle, environment_id])
        row = cursor.fetchone()
    return Release(*row) if row else None


def json_value(value: Any) -> Any:
    """Return a jsonb column's value as Python data (Django's psycopg 3 setup reads jsonb as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def compiled_version(digest: str) -> CompiledBundle:
    """Return the compiled bundle of a released `digest`; raise VersionNotReleased if it never was."""
    return compiled(digest, lambda: released_content(digest))


def released_content(digest: str) -> dict[str, Any]:
    """Return the stored content of a released `digest`, checked against it."""
    with connection.cursor() as cursor:
        cursor.execute(CONTENT_SQL, [digest])
        row = cursor.fetchone()
    if row is None:
        raise VersionNotReleased(VERSION_NOT_RELEASED.format(digest=digest))
    content = json_value(row[0])
    actual = bundle_digest(content)
    if actual != digest:  # immutable rows make this impossible short of tampering: refuse to run it
        raise RuntimeError(f"stored content of {digest} hashes to {actual}")
    return content


def pipeline_of(compiled: CompiledBundle, name: str) -> Pipeline:
    """Return the pipeline `name` of the compiled bundle; raise UnknownPipeline."""
    try:
        return compiled.pipeline(name)
    except UnknownPipelineError:
        raise UnknownPipeline(
            UNKNOWN_PIPELINE.format(bundle=compiled.name, version=compiled.version, pipeline=name)
        ) from None


# --- models ------------------------------------------------------------------------------------------------


class UnavailableModel:
    """A model that cannot be called (endpoint missing or misconfigured): the decision becomes `error`."""

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self, request: ModelRequest) -> ModelResponse:
        raise ModelError(self.reason)


def model_for(endpoint_name: Any):
    """Return the model of the tenant's endpoint `endpoint_name` (a provider reused per configuration)."""
    name = str(endpoint_name)
    config = _endpoints.get_or_load((schema(), name), lambda: load_endpoint(name))
    if config is None:
        return UnavailableModel(ENDPOINT_NOT_CONFIGURED.format(name=name))
    api_key = None
    if config.api_key_env:
        if not api_key_variable_allowed(config.api_key_env, schema()):
            # Never read (and send to an operator-chosen URL) a variable outside the allowed names, whatever
            # the stored row says: it could be the process's own SECRET_KEY or database password.
            return UnavailableModel(API_KEY_ENV_NOT_ALLOWED.format(variable=config.api_key_env, name=name))
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            return UnavailableModel(API_KEY_NOT_SET.format(variable=config.api_key_env, name=name))
    return provider_for(config, api_key)


def load_endpoint(name: str) -> EndpointConfig | None:
    """Return the configuration of the tenant's endpoint `name`, or None."""
    row = (
        ModelEndpoint.objects.filter(name=name)
        .values_list("name", "base_url", "allowed_models", "api_key_env", "timeout_seconds")
        .first()
    )
    if row is None:
        return None
    endpoint, base_url, allowed, api_key_env, timeout = row
    return EndpointConfig(endpoint, base_url, tuple(allowed), api_key_env, float(timeout))


def provider_for(config: EndpointConfig, api_key: str | None):
    """Return the process's provider for this configuration, creating it on first use."""
    cache_key = (config, api_key)
    provider = _providers.get(cache_key)
    if provider is not None:
        return provider
    with _providers_lock:
        provider = _providers.get(cache_key)
        if provider is None:
            try:
                provider = OpenAICompatibleProvider(
                    config.base_url, api_key, config.timeout_seconds, config.allowed_models
                )
            except ProviderConfigurationError as error:
                return UnavailableModel(ENDPOINT_UNUSABLE.format(name=config.name, reason=error))
            if len(_providers) >= PROVIDER_CACHE_SIZE:
                _providers.clear()  # configurations changed a lot; the dropped clients close when collected
            _providers[cache_key] = provider
    return provider


# --- requests ----------------------------------------------------------------------------------------------


def refuse_constant(constant: str) -> None:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"non-standard constant {constant}")


def parse_json_object(body: bytes, allowed: frozenset[str], required: frozenset[str]) -> dict[str, Any]:
    """Return the JSON object of a request body; raise MalformedJson or InvalidRequest (with details)."""
    try:
        document = json.loads(body, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error) or "too deeply nested"
        raise MalformedJson(MALFORMED_JSON.format(reason=reason)) from None
    if not isinstance(document, dict):
        raise InvalidRequest(details=[detail("", "type", "the body must be a JSON object")])
    problems = [
        detail(name, "unknown_field", "is not a field of this request")
        for name in document
        if name not in allowed
    ]
    problems += [detail(name, "required", "is required") for name in sorted(required) if name not in document]
    if problems:
        raise InvalidRequest(details=problems)
    return document


def detail(field: str, code: str, message: str) -> dict[str, str]:
    """Return one validation detail."""
    return {"field": field, "code": code, "message": message}


def checked_idempotency_key(value: str | None) -> str | None:
    """Return the Idempotency-Key header value, None when absent; raise InvalidIdempotencyKey."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_PATTERN.match(value):
        raise InvalidIdempotencyKey(IDEMPOTENCY_KEY_INVALID.format(limit=IDEMPOTENCY_KEY_MAX_LENGTH))
    return value


# --- executing ---------------------------------------------------------------------------------------------


def run_execution(
    *,
    grant: KeyGrant,
    bundle: str,
    pipeline: str,
    body: bytes,
    idempotency_key: str | None,
    started: float,
) -> ExecutionResult:
    """Execute `pipeline` of the version of `bundle` live for the key and return the recorded answer."""
    document = parse_json_object(body, EXECUTION_FIELDS, EXECUTION_FIELDS)
    if idempotency_key is None:
        return execute_and_record(grant, bundle, pipeline, document, None, None, started)
    request_hash = content_hash({"bundle": bundle, "pipeline": pipeline, "body": document})
    with idempotency_lock(grant.id, idempotency_key):
        existing = idempotent_decision(grant.id, idempotency_key)
        if existing is not None:
            return replay(*existing, request_hash=request_hash, idempotency_key=idempotency_key)
        return execute_and_record(grant, bundle, pipeline, document, request_hash, idempotency_key, started)


def execute_and_record(
    grant: KeyGrant,
    bundle: str,
    pipeline_name: str,
    document: dict[str, Any],
    request_hash: str | None,
    idempotency_key: str | None,
    started: float,
) -> ExecutionResult:
    """Run the live version's pipeline, write its decision record, and return the answer (fail closed)."""
    if not grant.may_execute(bundle):
        raise BundleOutOfScope(BUNDLE_OUT_OF_SCOPE.format(bundle=bundle))
    release = live_release(bundle, grant.environment_id)
    compiled = compiled_version(release.digest)
    pipeline = pipeline_of(compiled, pipeline_name)
    keep_payload = pipeline.store_payload
    model = model_for(pipeline.model.get("endpoint"))
    recording = RecordingModel(model) if keep_payload else None
    caller = {"key": grant.name, "environment": release.environment}
    decision = engine_execute(compiled, pipeline_name, document["input"], recording or model, caller=caller)
    data = decision_data(
        decision,
        release=release,
        caller=caller,
        request_hash=request_hash,
        idempotency_key=idempotency_key,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    if keep_payload:
        data["output"] = decision.output
        data["payload"] = {
            "input": redacted_input(document["input"], decision, pipeline),
            "model_output": recording.text,
        }
    try:
        with transaction.atomic():
            entry = record(
                actor=grant, action=DECISION_ACTION, target=(VERSION_TARGET, release.version_id), data=data
            )
    except IntegrityError:
        existing = idempotent_decision(grant.id, idempotency_key) if idempotency_key else None
        if existing is None:
            metrics.observe_unrecorded(tenant=schema())
            raise DecisionNotRecorded() from None
        return replay(*existing, request_hash=request_hash, idempotency_key=idempotency_key)
    except DatabaseFailure as error:
        logger.error("runtime: decision not recorded, output withheld: %s", error.__class__.__name__)
        metrics.observe_unrecorded(tenant=schema())
        raise DecisionNotRecorded() from None
    metrics.observe_decision(
        tenant=schema(),
        bundle=bundle,
        status=decision.status,
        denied_by=decision.denied_by,
        seconds=time.perf_counter() - started,
    )
    return ExecutionResult(status_code(data), decision_body(entry.pk, data, decision.output))


def decision_data(
    decision: Decision,
    *,
    release: Release,
    caller: dict[str, Any],
    request_hash: str | None,
    idempotency_key: str | None,
    latency_ms: float,
) -> dict[str, Any]:
    """Return the data of a decision record: identities, outcome, policy results and hashes, no payload."""
    return decision.as_record(
        environment=release.environment,
        caller=caller,
        latency_ms=latency_ms,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )


def redacted_input(value: Any, decision: Decision, pipeline: Pipeline) -> Any:
    """Return the input's entity fields minus those redacted by policies or classified pii or secret."""
    if not isinstance(value, dict):
        return None
    hidden = set(decision.redactions)
    hidden.update(
        name for name, label in pipeline.input.classifications.items() if label in HIDDEN_CLASSIFICATIONS
    )
    fields = pipeline.input.fields
    return {name: field for name, field in value.items() if name in fields and name not in hidden}


def status_code(data: dict[str, Any]) -> int:
    """Return the HTTP status of a decision: 200 decided, 400 invalid input, 502 model, 500 bundle."""
    status = data["status"]
    if status == STATUS_ERROR:
        return 502 if ErrorKind.of_reason(data.get("reason")) is ErrorKind.MODEL_FAILED else 500
    return STATUS_CODES[status]


def decision_body(decision_id: int, data: dict[str, Any], output: Any) -> dict[str, Any]:
    """Return the response body of a recorded decision (the error shape for 4xx/5xx statuses)."""
    status = data["status"]
    if status in (STATUS_ALLOWED, STATUS_DENIED):
        return {
            "decision_id": decision_id,
            "status": status,
            "output": output if status == STATUS_ALLOWED else None,
            "bundle": {"name": data["bundle"], "version": data["version"], "digest": data["digest"]},
            "environment": data["environment"],
            "pipeline": data["pipeline"],
            "denied_by": data["denied_by"],
            "policies": data["policies"],
            "redactions": data["redactions"],
            "decision_hash": data["decision_hash"],
        }
    if status == STATUS_INVALID_INPUT:
        code, message = "invalid_input", INVALID_INPUT.format(pipeline=data["pipeline"])
    elif status == STATUS_INVALID_OUTPUT:
        code, message = "invalid_model_output", INVALID_MODEL_OUTPUT.format(pipeline=data["pipeline"])
    elif status_code(data) == 502:
        code, message = "model_failed", MODEL_FAILED_MESSAGE.format(reason=data["reason"])
    elif ErrorKind.of_reason(data["reason"]) is ErrorKind.PROMPT_TOO_LARGE:
        code, message = ErrorKind.PROMPT_TOO_LARGE.value, data["reason"]  # still a 500: the bundle's fault
    else:
        code, message = "execution_failed", data["reason"] or status
    return {
        "error": {
            "code": code,
            "message": message,
            "details": data["errors"],
            "decision_id": decision_id,
            "status": status,
        }
    }


# --- idempotency -------------------------------------------------------------------------------------------


@contextmanager
def idempotency_lock(key_id: int, idempotency_key: str) -> Iterator[None]:
    """Serialise requests of one runtime key with one Idempotency-Key across all runtime processes."""
    digest = hashlib.sha256(f"runtime-idempotency:{schema()}:{key_id}:{idempotency_key}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
        except DatabaseFailure:
            pass  # the session is gone, and its advisory locks with it


def idempotent_decision(key_id: int, idempotency_key: str) -> tuple[int, dict[str, Any]] | None:
    """Return (id, data) of the decision recorded for this key and Idempotency-Key, or None."""
    with connection.cursor() as cursor:
        cursor.execute(IDEMPOTENT_DECISION_SQL, [str(key_id), idempotency_key])
        row = cursor.fetchone()
    return (row[0], json_value(row[1])) if row else None


def replay(
    decision_id: int, data: dict[str, Any], *, request_hash: str, idempotency_key: str
) -> ExecutionResult:
    """Return the first answer for an Idempotency-Key, or raise when it was used for another request."""
    if data.get("request_hash") != request_hash:
        raise IdempotencyKeyReused(IDEMPOTENCY_KEY_REUSED.format(key=idempotency_key))
    return ExecutionResult(
        status_code(data), decision_body(decision_id, data, data.get("output")), replayed=True
    )


# --- reading and verifying decisions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A `runtime.decision` record read through the `runtime_decision` view."""

    id: int
    created_at: Any
    key_id: str
    key_name: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    record_hash: str

    def is_intact(self) -> bool:
        """Return whether the stored record hash matches the record's content."""
        canonical = canonical_record(
            tenant=schema(),
            created_at=self.created_at,
            actor_kind=ActorKind.RUNTIME_KEY,
            actor_id=self.key_id,
            actor_name=self.key_name,
            action=DECISION_ACTION,
            target_type=self.target_type,
            target_id=self.target_id,
            data=self.data,
        )
        return record_hash(canonical) == self.record_hash

    def as_dict(self) -> dict[str, Any]:
        """Return the record as the runtime API shows it."""
        return {
            "decision_id": self.id,
            "created_at": self.created_at.isoformat(),
            "key": {"id": int(self.key_id), "name": self.key_name},
            "record_hash": self.record_hash,
            **self.data,
        }


def recorded_decision(grant: KeyGrant, decision_id: int) -> RecordedDecision:
    """Return decision `decision_id` if the key's environment and bundle scope cover it; else 404."""
    with connection.cursor() as cursor:
        cursor.execute(DECISION_SQL, [decision_id])
        row = cursor.fetchone()
    if row is None:
        raise DecisionNotFound(DECISION_NOT_FOUND.format(id=decision_id))
    decision = RecordedDecision(*row[:6], json_value(row[6]), row[7])
    in_scope = grant.may_execute(decision.data.get("bundle", ""))
    if not in_scope or decision.data.get("environment") != key_environment_name(grant):
        raise DecisionNotFound(DECISION_NOT_FOUND.format(id=decision_id))
    return decision


def key_environment_name(grant: KeyGrant) -> str | None:
    """Return the name of the key's environment (None when nothing was ever deployed there)."""
    with connection.cursor() as cursor:
        cursor.execute(KEY_ENVIRONMENT_SQL, [grant.environment_id])
        row = cursor.fetchone()
    return row[0] if row else None


def verify_decision(*, grant: KeyGrant, decision_id: int, body: bytes) -> dict[str, Any]:
    """Recompute a recorded decision from the original input and compare every hash with the record."""
    document = parse_json_object(body, VERIFY_FIELDS, frozenset({"input"}))
    model_output = document.get("model_output")
    if model_output is not None and not isinstance(model_output, str):
        raise InvalidRequest(
            details=[detail("model_output", "type", "must be a string (the model's raw answer)")]
        )
    recorded = recorded_decision(grant, decision_id)
    data = recorded.data
    compiled = compiled_version(data["digest"])
    model = replay_model(data, model_output)
    decision = engine_execute(compiled, data["pipeline"], document["input"], model, caller=data.get("caller"))
    mismatches = [
        {"field": field, "recorded": before, "recomputed": after}
        for field, before, after in compared_fields(data, decision)
        if before != after
    ]
    return {
        "decision_id": recorded.id,
        "reproduced": not mismatches,
        "mismatches": mismatches,
        "record_intact": recorded.is_intact(),
        "bundle": {"name": data["bundle"], "version": data["version"], "digest": data["digest"]},
    }


def replay_model(data: dict[str, Any], model_output: str | None) -> ReplayModel:
    """Return the replay model for a recorded decision; raise InvalidRequest when its answer is needed."""
    retained = (data.get("payload") or {}).get("model_output")
    text = model_output if model_output is not None else retained
    failure = model_failure(data.get("reason"))
    model_answered = (data.get("hashes") or {}).get("output") is not None
    if text is None and model_answered:
        raise InvalidRequest(details=[detail("model_output", "required", MODEL_OUTPUT_REQUIRED)])
    return ReplayModel(text, data.get("usage") or {}, failure or NO_REPLAY_OUTPUT)


def compared_fields(data: dict[str, Any], decision: Decision) -> list[tuple[str, Any, Any]]:
    """Return (field, recorded, recomputed) for every value verification compares."""
    recorded_hashes = data.get("hashes") or {}
    return [
        ("input_hash", recorded_hashes.get("input"), decision.hashes.get("input")),
        ("prompt_hash", recorded_hashes.get("prompt"), decision.hashes.get("prompt")),
        ("output_hash", recorded_hashes.get("output"), decision.hashes.get("output")),
        ("status", data.get("status"), decision.status),
        ("decision_hash", data.get("decision_hash"), decision.decision_hash),
    ]
