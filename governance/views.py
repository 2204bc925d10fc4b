"""Console pages of governance changes: pending and recent changes with Approve / Reject / Cancel."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.errors import DomainError
from governance.selectors import access_change, active_admin_count, governance_changes, pending_changes
from governance.services import BOOTSTRAP_ADMINS, change_approve, change_cancel, change_reject
from tenancy.console import console_page, error_page, fresh_authentication_required
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, membership_of

ERROR_TEMPLATE = "governance/error.html"
RECENT = 50
APPROVED_MESSAGE = "You approved change #{id}; it is now {status}."
REJECTED_MESSAGE = "You rejected change #{id}."
CANCELLED_MESSAGE = "You cancelled change #{id}."
SINGLE_ADMIN_BANNER = (
    "This tenant has a single admin: governance changes (rules, roles, grants) apply at once, with no second "
    "pair of eyes, until a second admin exists. Add a second admin."
)


def single_admin_banner(request) -> str:
    """Return the bootstrap warning for admins of a tenant with fewer than two admins, else ''."""
    tenant = current_tenant()
    member = membership_of(getattr(request, "user", None), tenant)
    if member is None or not member.can(Capability.MANAGE_MEMBERSHIPS):
        return ""
    return SINGLE_ADMIN_BANNER if active_admin_count(tenant) < BOOTSTRAP_ADMINS else ""


@console_page(ERROR_TEMPLATE)
def change_list(request):
    """List pending governance changes (with buttons for those the member may decide) and recent ones."""
    member = membership_of(request.user, current_tenant())
    may_decide = member.can(Capability.APPROVE_GOVERNANCE)
    rows = [
        {
            "change": change,
            "can_decide": may_decide
            and change.requested_by_id != request.user.pk
            and not any(approval.approver_id == request.user.pk for approval in change.approvals.all()),
            "is_beneficiary": change.beneficiary_id == request.user.pk,
            "can_cancel": change.requested_by_id == request.user.pk,
        }
        for change in pending_changes()
    ]
    recent = [change for change in governance_changes()[:RECENT] if change.status != "pending"]
    return render(request, "governance/changes.html", {"rows": rows, "recent": recent})


def decide(request, change_id: int, service, message: str):
    """Run a decision service on change `change_id` and go back to the list (errors on the error page)."""
    try:
        change = access_change(request.user, change_id)
        change = service(actor=request.user, change=change, comment=request.POST.get("comment", ""))
    except DomainError as error:
        return error_page(request, error, ERROR_TEMPLATE)
    messages.success(request, message.format(id=change.pk, status=change.status))
    return redirect("governance-changes")


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def change_approve_view(request, change_id: int):
    """Approve a change (another admin); it applies when approvals suffice."""
    return decide(request, change_id, change_approve, APPROVED_MESSAGE)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def change_reject_view(request, change_id: int):
    """Reject a change (a comment is required)."""
    return decide(request, change_id, change_reject, REJECTED_MESSAGE)


@console_page(ERROR_TEMPLATE)
@require_POST
def change_cancel_view(request, change_id: int):
    """Cancel a pending change (its requester only)."""
    return decide(request, change_id, change_cancel, CANCELLED_MESSAGE)
