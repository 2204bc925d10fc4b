"""Reads of governance change requests."""

from governance.exceptions import CHANGE_NOT_FOUND, ChangeNotFound
from governance.models import ChangeDecision, ChangeStatus, GovernanceApproval, GovernanceChangeRequest
from tenancy.models import Membership
from tenancy.roles import Capability, Role
from tenancy.selectors import require_capability

CHANGE_PENDING_MESSAGE = (
    "This change loosens control: governance change #{id} waits for another admin's approval (Governance)."
)


def is_pending_change(result) -> bool:
    """Return whether a service's result is a governance change request waiting for approval."""
    return isinstance(result, GovernanceChangeRequest)


def active_admin_count(tenant) -> int:
    """Return how many active users hold the admin role in `tenant`."""
    return Membership.objects.filter(
        tenant=tenant, is_active=True, user__is_active=True, roles__contains=[Role.ADMIN]
    ).count()


def approvers_of(change: GovernanceChangeRequest) -> list[str]:
    """Return the usernames of the admins who approved `change`, in order."""
    approvals = GovernanceApproval.objects.filter(change=change, decision=ChangeDecision.APPROVE)
    return [approval.approver.get_username() for approval in approvals.select_related("approver")]


def change_facts(change: GovernanceChangeRequest) -> dict:
    """Return what audit records say about `change`."""
    return {
        "change": change.pk,
        "kind": change.kind,
        "target": change.target,
        "summary": change.summary,
        "status": change.status,
        "before": change.before,
        "proposed": change.proposed,
        "requested_by": change.requested_by.get_username() if change.requested_by else None,
        "beneficiary": change.beneficiary.get_username() if change.beneficiary else None,
        "required_approvals": change.required_approvals,
    }


def governance_changes(*, status: str | None = None):
    """Return the tenant's change requests, newest first (optionally only those with `status`)."""
    changes = GovernanceChangeRequest.objects.select_related("requested_by", "beneficiary").prefetch_related(
        "approvals__approver"
    )
    return changes.filter(status=status) if status else changes


def pending_changes():
    """Return the pending change requests, oldest first."""
    return governance_changes(status=ChangeStatus.PENDING).order_by("created_at", "id")


def access_change(actor, change_id: int) -> GovernanceChangeRequest:
    """Return change request `change_id` for a member who may view it, else ChangeNotFound."""
    require_capability(actor, Capability.VIEW)
    change = governance_changes().filter(pk=change_id).first()
    if change is None:
        raise ChangeNotFound(CHANGE_NOT_FOUND.format(id=change_id))
    return change
