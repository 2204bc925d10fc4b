"""Start-up checks of the runtime's time budget: a model call must end before gunicorn's worker timeout.

The rule lives in `timeout_budget_problem`, which the settings call (a misconfigured process refuses to start:
ImproperlyConfigured) and the system check `runtime.E001` calls again (settings changed afterwards, e.g. by
override_settings, and `manage.py check`).
"""

from __future__ import annotations

from django.core.checks import Error, register

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


@register()
def check_timeout_budget(app_configs=None, **kwargs) -> list[Error]:
    """runtime.E001: the model timeout cap plus the record margin fit in the worker timeout."""
    from runtime.conf import runtime_setting

    problem = timeout_budget_problem(
        worker=float(runtime_setting("RUNTIME_WORKER_TIMEOUT")),
        cap=float(runtime_setting("MODEL_TIMEOUT_CAP")),
        margin=float(runtime_setting("RUNTIME_RECORD_MARGIN")),
    )
    return [Error(problem, id="runtime.E001")] if problem else []
