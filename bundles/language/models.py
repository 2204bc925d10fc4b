"""How the engine talks to a model, and the models every caller shares: replayed and recording.

The engine receives the model as an argument, so quality gates and suites (replayed answers) and the runtime
(real providers) run the same code. A model is any callable from `ModelRequest` to `ModelResponse` that
raises `ModelError` when it cannot answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NO_MODEL_OUTPUT = "no recorded model output"


class ModelError(Exception):
    """The model could not answer (transport failure, timeout, refusal); the decision is `error`."""


class MissingModelOutput(ModelError):
    """A replayed execution reached the model, but no answer was recorded for it."""


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What the engine sends to a model: the rendered system and prompt, and the pipeline's model params."""

    system: str
    prompt: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A model's raw answer and, when known, its token usage."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


Model = Callable[[ModelRequest], ModelResponse]


class ReplayModel:
    """Answer a recorded output with its recorded usage, or fail the way the recorded call failed."""

    def __init__(self, text: str | None, usage: dict[str, Any] | None = None, failure: str = NO_MODEL_OUTPUT):
        self.text = text
        self.usage = usage or {}
        self.failure = failure
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> ModelResponse:
        """Return the recorded answer; raise MissingModelOutput (with the recorded failure) without one."""
        self.requests.append(request)
        if self.text is None:
            raise MissingModelOutput(self.failure)
        return ModelResponse(self.text, self.usage.get("prompt_tokens"), self.usage.get("completion_tokens"))


class RecordingModel:
    """Wrap a model and keep its raw answer (for pipelines that store their payload)."""

    def __init__(self, model: Model):
        self.model = model
        self.text: str | None = None

    def __call__(self, request: ModelRequest) -> ModelResponse:
        """Return the wrapped model's answer, keeping its text."""
        response = self.model(request)
        self.text = response.text
        return response
