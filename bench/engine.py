"""Measure the pipeline engine alone: decisions per second on one core, and where the time goes.

    python bench/engine.py [--iterations N] [--bundle examples/claims-triage] [--pipeline triage]

Loads the example bundle, compiles it once, and runs the pipeline with a model that answers instantly, so
the figure is the engine's own cost (validation, policies, rendering, parsing, hashing) per decision.
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import cycle
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The repository root is put on the path above.
from bundles.language.compiler import CompiledBundle, compile_bundle  # noqa: E402
from bundles.language.decisions import STATUS_ALLOWED  # noqa: E402
from bundles.language.digest import bundle_digest  # noqa: E402
from bundles.language.execution import execute  # noqa: E402
from bundles.language.models import ModelRequest, ModelResponse  # noqa: E402

DEFAULT_BUNDLE = ROOT / "examples" / "claims-triage"
DEFAULT_PIPELINE = "triage"
DEFAULT_ITERATIONS = 20_000
WARMUP_ITERATIONS = 500
PHASES = ("validation", "policies", "rendering", "model", "parsing", "hashing")
# The model's answer for every call: the engine, not a model, is being measured.
INSTANT_ANSWER = ModelResponse(
    '{"queue": "auto", "reason": "collision"}', prompt_tokens=40, completion_tokens=9
)
# Inputs that go the whole way (model and post policies), with and without a redaction and a warning.
INPUTS = (
    {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"},
    {
        "claim_id": "C5",
        "amount": 300.5,
        "description": "scratched bumper in a parking lot",
        "customer_email": "jane.doe@example.com",
    },
    {"claim_id": "C7", "amount": 2500, "description": "pushed into the car ahead at the lights. " * 10},
)


def load_bundle(directory: Path) -> dict[str, Any]:
    """Return the parsed content of a bundle directory: {relative path: parsed YAML}."""
    return {
        path.relative_to(directory).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(directory.rglob("*.y*ml"))
    }


def instant_model(request: ModelRequest) -> ModelResponse:
    """Answer at once with the same valid decision."""
    return INSTANT_ANSWER


def run(bundle: CompiledBundle, pipeline: str, iterations: int) -> tuple[float, dict[str, int], int]:
    """Return (seconds, nanoseconds per phase, allowed count) for `iterations` executions."""
    inputs = cycle(INPUTS)
    phases = dict.fromkeys(PHASES, 0)
    allowed = 0
    started = time.perf_counter()
    for _ in range(iterations):
        decision = execute(bundle, pipeline, next(inputs), instant_model)
        allowed += decision.status == STATUS_ALLOWED
        for phase, spent in decision.timings.items():
            phases[phase] = phases.get(phase, 0) + spent
    return time.perf_counter() - started, phases, allowed


def report(iterations: int, seconds: float, phases: dict[str, int], allowed: int) -> str:
    """Return the printed summary."""
    instrumented = sum(phases.values()) or 1
    lines = [
        f"decisions: {iterations} ({allowed} allowed) in {seconds:.3f}s",
        f"throughput: {iterations / seconds:,.0f} decisions/s on one core",
        f"latency: {seconds / iterations * 1e6:.1f} µs per decision "
        f"({instrumented / iterations / 1e3:.1f} µs inside the phases)",
        "time per phase:",
    ]
    for phase, spent in phases.items():
        lines.append(
            f"  {phase:<11} {spent / instrumented:6.1%}  {spent / iterations / 1e3:7.2f} µs per decision"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS)
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE)
    arguments = parser.parse_args(argv)
    content = load_bundle(arguments.bundle)
    bundle = compile_bundle(content, bundle_digest(content))
    print(f"bundle: {bundle.name} {bundle.version} {bundle.digest}, pipeline {arguments.pipeline}")
    run(bundle, arguments.pipeline, WARMUP_ITERATIONS)
    seconds, phases, allowed = run(bundle, arguments.pipeline, arguments.iterations)
    print(report(arguments.iterations, seconds, phases, allowed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
