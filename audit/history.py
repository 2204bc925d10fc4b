"""Browsing the change history (django-simple-history) of the tenant's mutable models."""

from dataclasses import dataclass
from itertools import pairwise

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from simple_history.models import registered_models


@dataclass(frozen=True)
class HistoryChange:
    """One historical row, with the fields it changed against the row before it."""

    model_label: str
    object_id: str
    object_repr: str
    history_id: int
    history_type: str
    history_date: object
    user: str
    changes: list[tuple[str, object, object]]


def tracked_models() -> dict[str, type]:
    """Return label -> model for every history-tracked model stored in tenant schemas."""
    tenant_apps = {app.split(".")[-1] for app in settings.TENANT_APPS}
    tracked = {}
    for model in registered_models.values():
        if model._meta.app_label in tenant_apps:
            tracked[model._meta.label_lower] = model
    return dict(sorted(tracked.items()))


def history_model_of(label: str):
    """Return the historical model of tracked model `label`, or None."""
    model = tracked_models().get(label)
    if model is None:
        return None
    return getattr(model, model._meta.simple_history_manager_attribute).model


def recent_changes(label: str, *, object_id: str | None = None, limit: int = 100) -> list[HistoryChange]:
    """Return the latest changes of model `label` (optionally one object), newest first, with field diffs."""
    history_model = history_model_of(label)
    if history_model is None:
        return []
    rows = history_model.objects.order_by("-history_date", "-history_id")
    if object_id is not None:
        rows = rows.filter(id=object_id)
    rows = list(rows[:limit])
    usernames = _usernames({row.history_user_id for row in rows if row.history_user_id})
    previous = _previous_rows(history_model, rows)
    return [
        HistoryChange(
            model_label=label,
            object_id=str(row.id),
            object_repr=str(row.instance) if row.history_type != "-" else f"#{row.id}",
            history_id=row.history_id,
            history_type={"+": "created", "~": "changed", "-": "deleted"}[row.history_type],
            history_date=row.history_date,
            user=usernames.get(row.history_user_id, "system"),
            changes=_changes(row, previous.get(row.history_id)),
        )
        for row in rows
    ]


def _previous_rows(history_model, rows) -> dict[int, object]:
    """Return history_id -> the row just before it for the same object (one query)."""
    object_ids = {row.id for row in rows}
    if not object_ids:
        return {}
    by_object: dict = {}
    for row in history_model.objects.filter(id__in=object_ids).order_by("history_date", "history_id"):
        by_object.setdefault(row.id, []).append(row)
    previous = {}
    for versions in by_object.values():
        for before, after in pairwise(versions):
            previous[after.history_id] = before
    return previous


def _changes(row, before) -> list[tuple[str, object, object]]:
    """Return (field, old, new) for each field `row` changed against `before`."""
    if before is None:
        return []
    delta = row.diff_against(before)
    return [(change.field, change.old, change.new) for change in delta.changes]


def _usernames(user_ids: set[int]) -> dict[int, str]:
    """Return user id -> username for the given ids."""
    return dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))


def model_verbose_name(label: str) -> str:
    """Return the human name of tracked model `label`."""
    return str(apps.get_model(label)._meta.verbose_name).capitalize()
