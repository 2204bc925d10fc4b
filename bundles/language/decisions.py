"""The outcome of one execution: its status, its error kind when it failed, its hashes and its record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import rfc8785

from audit.canonical import canonical_json

STATUS_ALLOWED = "allowed"
STATUS_DENIED = "denied"
STATUS_INVALID_INPUT = "invalid_input"
STATUS_INVALID_OUTPUT = "invalid_output"
STATUS_ERROR = "error"
STATUSES = (STATUS_ALLOWED, STATUS_DENIED, STATUS_INVALID_INPUT, STATUS_INVALID_OUTPUT, STATUS_ERROR)

# Reasons of status `error`.
RENDER_FAILED = "template {template} could not be rendered: {reason}"
# Starts with the code itself: the runtime answers it as `prompt_too_large` (see ErrorKind.of_reason).
PROMPT_TOO_LARGE = "prompt_too_large: template {template} was stopped at a limit: {reason}"
MODEL_FAILED = "model call failed: {reason}"
NOT_A_MODEL_RESPONSE = "the model returned {type_name}, not a ModelResponse with text"


class ErrorKind(StrEnum):
    """Why an execution ended with status `error`."""

    MODEL_FAILED = "model_failed"  # the model could not answer (transport, timeout, refusal)
    RENDER_FAILED = "render_failed"  # the bundle's template failed in the sandbox
    PROMPT_TOO_LARGE = "prompt_too_large"  # the template passed a render limit (size, iterations, width)
    NOT_A_MODEL_RESPONSE = "not_a_model_response"  # the model callable broke its contract

    @property
    def reason(self) -> str:
        """Return the reason template of this kind."""
        return REASONS[self]

    @classmethod
    def of_reason(cls, reason: str | None) -> ErrorKind | None:
        """Return the kind of a recorded reason (records keep the reason, not the kind), or None."""
        for kind, template in REASONS.items():
            if (reason or "").startswith(template.split("{", 1)[0]):
                return kind
        return None


REASONS = {
    ErrorKind.MODEL_FAILED: MODEL_FAILED,
    ErrorKind.RENDER_FAILED: RENDER_FAILED,
    ErrorKind.PROMPT_TOO_LARGE: PROMPT_TOO_LARGE,
    ErrorKind.NOT_A_MODEL_RESPONSE: NOT_A_MODEL_RESPONSE,
}


def model_failure(reason: str | None) -> str | None:
    """Return the model's own failure inside a recorded `model_failed` reason, or None for other reasons."""
    if ErrorKind.of_reason(reason) is not ErrorKind.MODEL_FAILED:
        return None
    return reason[len(MODEL_FAILED.split("{", 1)[0]) :]


@dataclass(slots=True)
class Decision:
    """The outcome of one execution; `decision_hash` covers everything but the timings and error kind."""

    status: str
    pipeline: str
    bundle: dict[str, str]
    model: dict[str, Any]
    output: dict[str, Any] | None = None
    denied_by: str | None = None
    reason: str | None = None
    policies: list[dict[str, Any]] = field(default_factory=list)
    redactions: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    hashes: dict[str, str | None] = field(default_factory=dict)
    usage: dict[str, int | None] = field(default_factory=dict)
    decision_hash: str = ""
    # Set when status is `error`; `reason` says the same in words.
    error_kind: ErrorKind | None = None
    # Nanoseconds per phase; not part of the record (not deterministic).
    timings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible, deterministic form (with its hash, without timings)."""
        record = self.hashed_fields()
        record["decision_hash"] = self.decision_hash
        return record

    def hashed_fields(self) -> dict[str, Any]:
        """Return the fields `decision_hash` is computed over."""
        return {
            "status": self.status,
            "pipeline": self.pipeline,
            "bundle": self.bundle,
            "model": self.model,
            "output": self.output,
            "denied_by": self.denied_by,
            "reason": self.reason,
            "policies": self.policies,
            "redactions": self.redactions,
            "errors": self.errors,
            "hashes": self.hashes,
            "usage": self.usage,
        }

    def as_record(
        self,
        *,
        environment: str,
        caller: dict[str, Any],
        latency_ms: float,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> dict[str, Any]:
        """Return the data of this decision's record: identities, outcome, policy results and hashes."""
        data = {
            "bundle": self.bundle["name"],
            "version": self.bundle["version"],
            "digest": self.bundle["digest"],
            "pipeline": self.pipeline,
            "environment": environment,
            "status": self.status,
            "denied_by": self.denied_by,
            "reason": self.reason,
            "policies": self.policies,
            "redactions": self.redactions,
            "errors": self.errors,
            "hashes": self.hashes,
            "decision_hash": self.decision_hash,
            "usage": self.usage,
            "model": self.model,
            "caller": caller,
            "latency_ms": round(latency_ms, 3),
        }
        if idempotency_key is not None:  # what a retry is compared with and answered from
            data["idempotency_key"] = idempotency_key
            data["request_hash"] = request_hash
            data["output"] = self.output
        return data

    @property
    def fired(self) -> list[str]:
        """Return the names of the policies that fired."""
        return [result["name"] for result in self.policies if result["fired"]]


def content_hash(value: Any) -> str:
    """Return the sha256 hex of the canonical JSON of `value` (of its repr if it is not I-JSON)."""
    try:
        data = canonical_json(value)
    except rfc8785.CanonicalizationError:
        # Only invalid inputs get here (validation refuses NaN, unsafe integers); hash them all the same.
        data = b"repr:" + repr(value).encode("utf-8", "backslashreplace")
    return hashlib.sha256(data).hexdigest()


def text_hash(text: str) -> str:
    """Return the sha256 hex of the UTF-8 bytes of `text`."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def prompt_hash(system: str, prompt: str) -> str:
    """Return the hash of what the model was shown (system and prompt, unambiguously joined)."""
    return content_hash({"system": system, "prompt": prompt})
