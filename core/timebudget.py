"""The runtime's time budget as a pure rule, for the settings (which may import only core) and the runtime's
system check alike: a model call (MODEL_TIMEOUT_CAP) plus the margin for everything else
(RUNTIME_RECORD_MARGIN) must end before gunicorn's RUNTIME_WORKER_TIMEOUT."""

from __future__ import annotations

TIMEOUT_BUDGET = (
    "MODEL_TIMEOUT_CAP ({cap:g} s) + RUNTIME_RECORD_MARGIN ({margin:g} s) must be less than "
    "RUNTIME_WORKER_TIMEOUT ({worker:g} s), and each must be above 0: otherwise a slow model call outlives "
    "the runtime worker and its request ends without a recorded decision."
)


def timeout_budget_problem(*, worker: float, cap: float, margin: float) -> str | None:
    """Return why the runtime's time budget is unsafe, or None when cap + margin < worker timeout."""
    if min(worker, cap, margin) <= 0 or cap + margin >= worker:
        return TIMEOUT_BUDGET.format(cap=cap, margin=margin, worker=worker)
    return None
