"""Console pages of the audit log: records, one record, verification, change history.

The membership middleware sets `request.membership`; the capability is checked by name so this module
imports no other app.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from audit import history
from audit.models import Record
from audit.selectors import record_is_intact, records
from audit.verification import latest_run, run_report, verification_run_request
from core.api import parse_query_time
from core.errors import DomainError
from core.pagination import console_cursor_page

VIEW_AUDIT = "view_audit"
PAGE_SIZE = 50
FILTERS = ("action", "actor", "target_type", "target_id", "since", "until")


def audit_access(view):
    """Allow members whose roles include view_audit; 403 page for other members."""

    @login_required
    def guarded(request, *args, **kwargs):
        membership = getattr(request, "membership", None)
        if membership is None or not membership.can(VIEW_AUDIT):
            reason = "Your roles do not allow reading the audit log (auditor or admin)."
            return render(request, "403.html", {"reason": reason}, status=403)
        return view(request, *args, **kwargs)

    guarded.__name__ = view.__name__
    guarded.__doc__ = view.__doc__
    return guarded


@audit_access
def record_list(request):
    """List records, newest first, filtered by action, actor, target and time."""
    chosen = {name: request.GET.get(name, "").strip() for name in FILTERS}
    try:
        times = {name: parse_query_time(name, chosen[name]) for name in ("since", "until")}
    except DomainError as error:
        return render(request, "error.html", {"reason": error.message, "error": error}, status=error.status)
    queryset = records(
        action=chosen["action"] or None,
        actor_name=chosen["actor"] or None,
        target_type=chosen["target_type"] or None,
        target_id=chosen["target_id"] or None,
        since=times["since"],
        until=times["until"],
    )
    try:
        page, query = console_cursor_page(queryset, request, PAGE_SIZE)
    except DomainError as error:
        return render(request, "error.html", {"reason": error.message, "error": error}, status=error.status)
    actions = Record.objects.order_by("action").values_list("action", flat=True).distinct()
    return render(
        request,
        "audit/records.html",
        {"page": page, "filters": chosen, "actions": actions, "query": query},
    )


@audit_access
def record_detail(request, record_id: int):
    """Show one record, its canonical data and whether its hash verifies."""
    entry = get_object_or_404(Record, pk=record_id)
    return render(request, "audit/record.html", {"record": entry, "intact": record_is_intact(entry)})


@audit_access
@require_http_methods(["GET", "POST"])
def verify(request):
    """Show the latest verification run of the log (GET); start one (POST, then back to the page)."""
    if request.method == "POST":
        verification_run_request(actor=request.user)
        return redirect("audit-verify")
    return render(request, "audit/verify.html", {"report": run_report(latest_run())})


@audit_access
def history_index(request):
    """List the history-tracked models and their latest changes."""
    models = [
        {
            "label": label,
            "name": history.model_verbose_name(label),
            "changes": history.recent_changes(label, limit=5),
        }
        for label in history.tracked_models()
    ]
    return render(request, "audit/history_index.html", {"models": models})


@audit_access
def history_model(request, label: str):
    """List the latest changes of one tracked model, with the fields each changed."""
    if label not in history.tracked_models():
        raise Http404("Not a tracked model.")
    object_id = request.GET.get("object_id") or None
    if object_id is not None and not object_id.isdigit():
        raise Http404("Object ids are numbers.")
    changes = history.recent_changes(label, object_id=object_id, limit=200)
    return render(
        request,
        "audit/history_model.html",
        {
            "label": label,
            "name": history.model_verbose_name(label),
            "changes": changes,
            "object_id": object_id,
        },
    )
