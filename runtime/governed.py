"""Governed execution: run a parsed request on the version live for a runtime key and record the decision.

One execution: (Idempotency-Key: return the first decision) → the key's target (scope, live release,
compiled version, pipeline) → the engine with the endpoint's model, bounded by the tenant's and the
endpoint's concurrency limits (runtime/limits.py: a refused call is a recorded `tenant_busy` decision) → the
decision record (`runtime.decision`, one INSERT). If the record cannot be written, nothing of the execution
leaves this module: DecisionNotRecorded (fail closed). What the caller is told, and with which status, is
the door's business (runtime/door.py).

Decision records keep hashes, not payloads. Two documented exceptions: a pipeline with `store_payload: true`
keeps its redacted input (fields redacted by policies or classified pii/secret removed) and the model's raw
answer; a request with an Idempotency-Key keeps its validated output, so that a retry receives exactly the
first answer.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import Error as DatabaseFailure
from django.db import IntegrityError, connection, transaction

from audit.services import record
from bundles.language.compiler import Pipeline
from bundles.language.decisions import Decision, ErrorKind, content_hash
from bundles.language.execution import execute as engine_execute
from bundles.language.models import RecordingModel
from runtime import metrics
from runtime.access import KeyGrant, access_target, json_value, schema
from runtime.actions import RuntimeAction
from runtime.endpoint_models import model_for
from runtime.exceptions import IDEMPOTENCY_KEY_REUSED, DecisionNotRecorded, IdempotencyKeyReused
from runtime.limits import bounded, is_busy_reason

logger = logging.getLogger(__name__)

VERSION_TARGET = "bundles.bundleversion"
HIDDEN_CLASSIFICATIONS = frozenset({"pii", "secret"})
# Through the function, not the view: the view's security barrier keeps the lookup off the index (grants.py).
IDEMPOTENT_DECISION_SQL = "SELECT id, data FROM runtime_idempotent_decision(%s, %s)"


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """A parsed execution request: what to run, on which input, under which Idempotency-Key (if any)."""

    bundle: str
    pipeline: str
    input: Any
    idempotency_key: str | None = None

    def request_hash(self) -> str:
        """Return the hash a retry under the same Idempotency-Key must match: the route and the body."""
        return content_hash({"bundle": self.bundle, "pipeline": self.pipeline, "body": {"input": self.input}})


@dataclass(frozen=True, slots=True)
class RecordedExecution:
    """A recorded decision: its record's id and data, the output to answer, its error kind, if replayed."""

    decision_id: int
    data: dict[str, Any]
    output: Any
    error_kind: ErrorKind | None = None
    replayed: bool = False

    @property
    def status(self) -> str:
        """Return the decision's status (allowed, denied, invalid_input, invalid_output, error)."""
        return self.data["status"]


def execute_governed(
    *, grant: KeyGrant, request: ExecutionRequest, started: float | None = None
) -> RecordedExecution:
    """Run `request` on the version live for the key and return its recorded decision (fail closed).

    `started` is the perf_counter() reading when the request arrived (now, when not given): the recorded
    latency runs from it.
    """
    started = time.perf_counter() if started is None else started
    if request.idempotency_key is None:
        return execute_and_record(grant, request, None, started)
    request_hash = request.request_hash()
    with idempotency_lock(grant.id, request.idempotency_key):
        existing = idempotent_decision(grant.id, request.idempotency_key)
        if existing is not None:
            return replay(*existing, request_hash=request_hash, idempotency_key=request.idempotency_key)
        return execute_and_record(grant, request, request_hash, started)


def execute_and_record(
    grant: KeyGrant, request: ExecutionRequest, request_hash: str | None, started: float
) -> RecordedExecution:
    """Run the live version's pipeline, write its decision record, and return it (fail closed)."""
    target = access_target(grant, request.bundle, request.pipeline)
    keep_payload = target.pipeline.store_payload
    endpoint = str(target.pipeline.model.get("endpoint"))
    model = bounded(model_for(endpoint), tenant=schema(), endpoint=endpoint)
    recording = RecordingModel(model) if keep_payload else None
    caller = {"key": grant.name, "environment": target.release.environment}
    decision = engine_execute(
        target.compiled, request.pipeline, request.input, recording or model, caller=caller
    )
    # A call refused as busy is recorded, not under its Idempotency-Key: a retry runs, not replays a 429.
    busy = is_busy_reason(decision.reason)
    data = decision.as_record(
        environment=target.release.environment,
        caller=caller,
        latency_ms=(time.perf_counter() - started) * 1000,
        idempotency_key=None if busy else request.idempotency_key,
        request_hash=None if busy else request_hash,
    )
    if keep_payload:
        data["output"] = decision.output
        data["payload"] = {
            "input": redacted_input(request.input, decision, target.pipeline),
            "model_output": recording.text,
        }
    try:
        with transaction.atomic():
            entry = record(
                actor=grant,
                action=RuntimeAction.DECISION,
                target=(VERSION_TARGET, target.release.version_id),
                data=data,
            )
    except IntegrityError:
        # Another process recorded this Idempotency-Key first (the unique index): answer its decision.
        key = request.idempotency_key
        existing = idempotent_decision(grant.id, key) if key else None
        if existing is None:
            metrics.observe_unrecorded(tenant=schema())
            raise DecisionNotRecorded() from None
        return replay(*existing, request_hash=request_hash, idempotency_key=key)
    except DatabaseFailure as error:
        logger.error("runtime: decision not recorded, output withheld: %s", error.__class__.__name__)
        metrics.observe_unrecorded(tenant=schema())
        raise DecisionNotRecorded() from None
    if busy:
        metrics.observe_busy(tenant=schema())
    metrics.observe_decision(
        tenant=schema(),
        bundle=request.bundle,
        status=decision.status,
        denied_by=decision.denied_by,
        seconds=time.perf_counter() - started,
    )
    return RecordedExecution(entry.pk, data, decision.output, decision.error_kind)


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
    decision_id: int, data: dict[str, Any], *, request_hash: str | None, idempotency_key: str
) -> RecordedExecution:
    """Return the first decision for an Idempotency-Key; raise IdempotencyKeyReused for another request."""
    if data.get("request_hash") != request_hash:
        raise IdempotencyKeyReused(IDEMPOTENCY_KEY_REUSED.format(key=idempotency_key))
    # A record keeps the reason, not the kind: the language knows which reasons are which kind.
    kind = ErrorKind.of_reason(data.get("reason"))
    return RecordedExecution(decision_id, data, data.get("output"), kind, replayed=True)
