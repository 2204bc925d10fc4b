"""System checks of the runtime: its time budget (core/timebudget.py) holds with the settings in force.

The settings refuse to load when it does not (ImproperlyConfigured at start-up, gunicorn included); this check
(`runtime.E001`) says it again for settings changed afterwards and for `manage.py check`.
"""

from __future__ import annotations

from django.core.checks import Error, register

from core.timebudget import timeout_budget_problem


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
