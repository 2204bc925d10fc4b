"""Verify a past decision (DESIGN §7): recompute it with the recorded version and compare every hash.

The model is not called again: its recorded answer (given by the caller, or retained by a pipeline that
stores its payload) is replayed, and a recorded model failure fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bundles.language.decisions import Decision, model_failure
from bundles.language.execution import execute as engine_execute
from bundles.language.models import ReplayModel
from core.api import field_error
from runtime.access import KeyGrant, access_decision, compiled_version
from runtime.exceptions import InvalidRequest

NO_REPLAY_OUTPUT = "replay: no model output was given or retained"
MODEL_OUTPUT_REQUIRED = (
    "model_output is required: the model answered this decision and its answer was not retained"
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One value of a decision that the recomputation did not reproduce."""

    field: str
    recorded: Any
    recomputed: Any


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of verifying one decision: what differs, and whether its record is intact."""

    decision_id: int
    mismatches: tuple[Mismatch, ...]
    record_intact: bool
    bundle: dict[str, str]

    @property
    def reproduced(self) -> bool:
        """Return whether the recomputation matched every recorded value."""
        return not self.mismatches

    def as_dict(self) -> dict[str, Any]:
        """Return the verification as the runtime API shows it."""
        return {
            "decision_id": self.decision_id,
            "reproduced": self.reproduced,
            "mismatches": [
                {"field": item.field, "recorded": item.recorded, "recomputed": item.recomputed}
                for item in self.mismatches
            ],
            "record_intact": self.record_intact,
            "bundle": self.bundle,
        }


def verify_decision(
    *, grant: KeyGrant, decision_id: int, input: Any, model_output: str | None = None
) -> Verification:
    """Recompute decision `decision_id` (in the key's scope) from its input and compare it with the record."""
    recorded = access_decision(grant, decision_id)
    data = recorded.data
    compiled = compiled_version(data["digest"])
    model = replay_model(data, model_output)
    decision = engine_execute(compiled, data["pipeline"], input, model, caller=data.get("caller"))
    mismatches = tuple(
        Mismatch(field, before, after)
        for field, before, after in compared_fields(data, decision)
        if before != after
    )
    return Verification(
        decision_id=recorded.id,
        mismatches=mismatches,
        record_intact=recorded.is_intact(),
        bundle={"name": data["bundle"], "version": data["version"], "digest": data["digest"]},
    )


def replay_model(data: dict[str, Any], model_output: str | None) -> ReplayModel:
    """Return the replay model for a recorded decision; raise InvalidRequest when its answer is needed."""
    retained = (data.get("payload") or {}).get("model_output")
    text = model_output if model_output is not None else retained
    failure = model_failure(data.get("reason"))  # what the model said when the recorded call failed
    model_answered = (data.get("hashes") or {}).get("output") is not None
    if text is None and model_answered:
        raise InvalidRequest(details=[field_error("model_output", "required", MODEL_OUTPUT_REQUIRED)])
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
