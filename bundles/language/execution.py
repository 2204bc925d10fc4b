"""Run one pipeline of a compiled bundle on one input, purely and deterministically.

validate input → `pre` policies (deny stops, redact removes fields) → render template → call the model →
parse and validate the output → `post` policies → Decision. The model is an argument, so quality gates
(replayed answers) and the runtime (real providers) run exactly this code. No Django, no I/O of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from time import perf_counter_ns
from typing import Any

from jinja2.sandbox import SecurityError

from bundles.language.compiler import CompiledBundle, Pipeline
from bundles.language.decisions import (
    STATUS_ALLOWED,
    STATUS_DENIED,
    STATUS_ERROR,
    STATUS_INVALID_INPUT,
    STATUS_INVALID_OUTPUT,
    Decision,
    ErrorKind,
    content_hash,
    prompt_hash,
    text_hash,
)
from bundles.language.fields import Entity, FieldError
from bundles.language.limits import PromptTooLargeError
from bundles.language.models import Model, ModelError, ModelRequest, ModelResponse
from policies import EvaluationContext, Policy, PolicyResult, evaluate_policies, redact

CODE_NOT_JSON = "not_json"
NOT_JSON = "the model's answer is not JSON: {reason}"
NON_STANDARD_JSON = "non-standard JSON constant {constant}"

_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.S)


def execute(
    bundle: CompiledBundle,
    pipeline: str,
    input: Any,
    model: Model,
    *,
    caller: Mapping[str, Any] | None = None,
) -> Decision:
    """Return the Decision of running `pipeline` on `input` with `model`; raise only for a bad pipeline."""
    run = Execution(bundle, bundle.pipeline(pipeline), input, caller)
    run.perform(model)
    return run.decide()


class Execution:
    """The state of one execution as it moves through the phases; `decide()` freezes it into a Decision."""

    __slots__ = (
        "_clock",
        "bundle",
        "context",
        "denied_by",
        "error_kind",
        "errors",
        "hashes",
        "input",
        "output",
        "pipeline",
        "reason",
        "redactions",
        "results",
        "status",
        "timings",
        "usage",
    )

    def __init__(
        self, bundle: CompiledBundle, pipeline: Pipeline, input: Any, caller: Mapping[str, Any] | None
    ):
        self._clock = perf_counter_ns()
        self.bundle = bundle
        self.pipeline = pipeline
        self.input = input
        self.context = EvaluationContext(
            {
                "input": input,
                "pipeline": pipeline.name,
                "caller": dict(caller or {}),
                "bundle": bundle.identity,
            }
        )
        self.status = STATUS_ALLOWED
        self.output: dict[str, Any] | None = None
        self.denied_by: str | None = None
        self.reason: str | None = None
        self.error_kind: ErrorKind | None = None
        self.results: list[PolicyResult] = []
        self.redactions: list[str] = []
        self.errors: list[FieldError] = []
        self.hashes: dict[str, str | None] = {"input": None, "prompt": None, "output": None}
        self.usage: dict[str, int | None] = {"prompt_tokens": None, "completion_tokens": None}
        self.timings: dict[str, int] = {}

    def lap(self, phase: str) -> None:
        """Add the time since the previous lap to `phase`."""
        now = perf_counter_ns()
        self.timings[phase] = self.timings.get(phase, 0) + now - self._clock
        self._clock = now

    def perform(self, model: Model) -> None:
        """Run the phases in order, stopping at the first that ends the execution."""
        self.errors = self.pipeline.input.validate(self.input)
        self.lap("validation")
        if self.errors:
            self.status = STATUS_INVALID_INPUT
            return
        prompt_input = self.apply_policies(self.pipeline.pre, self.input, self.pipeline.input)
        self.lap("policies")
        if prompt_input is None:
            return
        rendered = self.render(prompt_input)
        self.lap("rendering")
        if rendered is None:
            return
        text = self.ask(model, ModelRequest(rendered[0], rendered[1], dict(self.pipeline.model)))
        self.lap("model")
        if text is None:
            return
        output = self.parse(text)
        self.lap("parsing")
        if output is None:
            return
        self.context.set("output", output)
        self.output = self.apply_policies(self.pipeline.post, output, self.pipeline.output)
        self.lap("policies")

    def apply_policies(self, policies: tuple[Policy, ...], record: dict[str, Any], entity: Entity) -> Any:
        """Evaluate one stage's policies; return the record left after redactions, or None when denied."""
        results = evaluate_policies(policies, self.context, field_classifications=entity.classifications)
        self.results.extend(results)
        redacted = [name for result in results for name in result.redacted]
        if redacted:
            record, removed = redact(record, redacted)
            self.redactions.extend(name for name in removed if name not in self.redactions)
        if results and results[-1].denies:
            self.status = STATUS_DENIED
            self.denied_by = results[-1].name
            return None
        return record

    def render(self, prompt_input: dict[str, Any]) -> tuple[str, str] | None:
        """Return the rendered (system, prompt), or None with status `error` when the sandbox refuses."""
        template = self.pipeline.template
        try:
            system, prompt = template.render(prompt_input)
        except PromptTooLargeError as error:
            return self.fail(ErrorKind.PROMPT_TOO_LARGE, template=template.name, reason=error.args[0])
        except SecurityError as error:
            return self.fail(
                ErrorKind.RENDER_FAILED, template=template.name, reason=f"SecurityError: {error}"
            )
        except Exception as error:  # the template is bundle content: any failure of it is an `error` decision
            reason = f"{type(error).__name__}: {error}"
            return self.fail(ErrorKind.RENDER_FAILED, template=template.name, reason=reason)
        self.hashes["prompt"] = prompt_hash(system, prompt)
        return system, prompt

    def ask(self, model: Model, request: ModelRequest) -> str | None:
        """Return the model's answer text, or None with status `error` when the model fails."""
        try:
            response = model(request)
        except ModelError as error:
            return self.fail(ErrorKind.MODEL_FAILED, reason=str(error) or type(error).__name__)
        if not isinstance(response, ModelResponse) or not isinstance(response.text, str):
            return self.fail(ErrorKind.NOT_A_MODEL_RESPONSE, type_name=type(response).__name__)
        self.usage = {
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
        }
        self.hashes["output"] = text_hash(response.text)
        return response.text

    def parse(self, text: str) -> dict[str, Any] | None:
        """Return the validated output, or None with status `invalid_output` and its errors."""
        try:
            output = parse_model_output(text)
        except ValueError as error:
            self.errors = [FieldError("", CODE_NOT_JSON, NOT_JSON.format(reason=error))]
        else:
            self.errors = self.pipeline.output.validate(output)
        if self.errors:
            self.status = STATUS_INVALID_OUTPUT
            return None
        return output

    def fail(self, kind: ErrorKind, **details: str) -> None:
        """Record status `error`, its kind and reason; return None so phases can `return self.fail(...)`."""
        self.status = STATUS_ERROR
        self.error_kind = kind
        self.reason = kind.reason.format(**details)
        return None

    def decide(self) -> Decision:
        """Return the Decision with its hashes."""
        self.hashes["input"] = content_hash(self.input)
        decision = Decision(
            status=self.status,
            pipeline=self.pipeline.name,
            bundle=self.bundle.identity,
            model=dict(self.pipeline.model),
            output=self.output if self.status == STATUS_ALLOWED else None,
            denied_by=self.denied_by,
            reason=self.reason,
            policies=[result.to_dict() for result in self.results],
            redactions=self.redactions,
            errors=[error.to_dict() for error in self.errors],
            hashes=self.hashes,
            usage=self.usage,
            error_kind=self.error_kind,
        )
        decision.decision_hash = content_hash(decision.hashed_fields())
        self.lap("hashing")
        decision.timings = self.timings
        return decision


def parse_model_output(text: str) -> Any:
    """Return the JSON value of a model answer (surrounding whitespace and a ```json fence tolerated)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced is not None:
        body = fenced.group(1).strip()
    return json.loads(body, parse_constant=refuse_constant)


def refuse_constant(constant: str) -> None:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(NON_STANDARD_JSON.format(constant=constant))
