"""Governance changes: a loosening change waits for other admins' approval; tightening applies at once.

The app owning a control classifies each proposed change and asks `governed_change()` whether it may apply
now. It may when it only tightens (or changes nothing that weakens control), or while the tenant is still
bootstrapping (fewer than two active admins: a lone admin can act alone only until there is a second). Any
other loosening becomes a pending GovernanceChangeRequest; it applies, inside the transaction of the approval
that completes it and with its audit records, only if the state it was proposed against still holds.
"""

from contextlib import nullcontext

from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.services import record
from core.text import require_within
from governance.actions import GovernanceAction
from governance.conf import governance_setting
from governance.exceptions import (
    ALREADY_DECIDED,
    BENEFICIARY_APPROVAL,
    CHANGE_NOT_PENDING,
    NOT_THE_REQUESTER,
    STALE_CHANGE,
    BeneficiaryApproval,
    ChangeAlreadyDecided,
    ChangeCommentRequired,
    ChangeNotPending,
    NotTheChangeRequester,
    SelfApprovalOfChange,
    StaleChange,
)
from governance.models import ChangeDecision, ChangeStatus, GovernanceApproval, GovernanceChangeRequest
from governance.registry import change_kind
from governance.selectors import active_admin_count, approvers_of, change_facts
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, require_capability

BOOTSTRAP_ADMINS = 2


def in_tenant_schema(tenant):
    """Return a context that selects `tenant`'s schema unless the connection is already there."""
    if tenant is None or connection.schema_name == tenant.schema_name:
        return nullcontext()
    return schema_context(tenant.schema_name)


def governed_change(
    *,
    actor,
    kind: str,
    target: dict,
    before,
    proposed,
    loosening: bool,
    summary: str,
    beneficiary=None,
    tenant=None,
    sealed: dict | None = None,
) -> GovernanceChangeRequest | None:
    """Return None when the change may apply now, else the pending change request created for it.

    Tightening and neutral changes apply now. A loosening applies now only while `tenant` has fewer than two
    active admins (recorded as a bootstrap change); otherwise it waits for GOVERNANCE_REQUIRED_APPROVALS
    approvals by admins who are neither the requester nor the beneficiary. `sealed` holds what applying
    needs but no reader may see (never in the API, the console, history or the audit log). Call inside the
    caller's transaction.
    """
    tenant = tenant or current_tenant()
    if not loosening:
        return None
    with in_tenant_schema(tenant):
        facts = {"kind": kind, "target": target, "summary": summary, "before": before, "proposed": proposed}
        admins = active_admin_count(tenant)
        if admins < BOOTSTRAP_ADMINS:
            if admins:  # a lone admin acting alone (a tenant without admins is still being created)
                record(actor=actor, action=GovernanceAction.CHANGE_BOOTSTRAP, target=None, data=facts)
            return None
        change = GovernanceChangeRequest(
            kind=kind,
            target=target,
            summary=summary[:300],
            before=before,
            proposed=proposed,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            beneficiary=beneficiary,
            required_approvals=max(1, int(governance_setting("GOVERNANCE_REQUIRED_APPROVALS"))),
            sealed=sealed or {},
        )
        change._history_user = actor
        change.save()
        record(
            actor=actor, action=GovernanceAction.CHANGE_REQUESTED, target=change, data=change_facts(change)
        )
    return change


def require_governance_approver(actor) -> None:
    """Raise unless `actor` is an admin of the current tenant (tokens: scopes admin and approve)."""
    require_capability(actor, Capability.APPROVE_GOVERNANCE)


def locked_change(change: GovernanceChangeRequest) -> GovernanceChangeRequest:
    """Return `change` re-read under a row lock."""
    return (
        GovernanceChangeRequest.objects.select_for_update(of=("self",))
        .select_related("requested_by", "beneficiary")
        .get(pk=change.pk)
    )


def check_change_decider(actor, change: GovernanceChangeRequest) -> None:
    """Raise unless `actor` may decide `change` now (permission refusals before state conflicts)."""
    require_governance_approver(actor)
    if change.requested_by_id is not None and change.requested_by_id == actor.pk:
        raise SelfApprovalOfChange()
    if change.status != ChangeStatus.PENDING:
        raise ChangeNotPending(CHANGE_NOT_PENDING.format(id=change.pk, status=change.status))
    if GovernanceApproval.objects.filter(change=change, approver=actor).exists():
        raise ChangeAlreadyDecided(ALREADY_DECIDED.format(id=change.pk))


def change_approve(*, actor, change: GovernanceChangeRequest, comment: str = "") -> GovernanceChangeRequest:
    """Record `actor`'s approval; apply the change when approvals suffice and its before-state still holds.

    Raises StaleChange (after committing the request as superseded) when the state changed meanwhile.
    """
    require_governance_approver(actor)
    comment = require_within("comment", (comment or "").strip())
    with transaction.atomic():
        change = locked_change(change)
        check_change_decider(actor, change)
        if change.beneficiary_id is not None and change.beneficiary_id == actor.pk:
            raise BeneficiaryApproval(BENEFICIARY_APPROVAL.format(user=actor.get_username()))
        GovernanceApproval.objects.create(
            change=change, approver=actor, decision=ChangeDecision.APPROVE, comment=comment
        )
        approvers = approvers_of(change)
        record(
            actor=actor,
            action=GovernanceAction.CHANGE_APPROVED,
            target=change,
            data={**change_facts(change), "comment": comment, "approvals": len(approvers)},
        )
        stale = False
        if len(approvers) >= change.required_approvals:
            stale = not _apply(change, actor=actor, approved_by=approvers)
    if stale:
        raise StaleChange(STALE_CHANGE.format(id=change.pk))
    return change


def _apply(change: GovernanceChangeRequest, *, actor, approved_by: list[str]) -> bool:
    """Apply an approved `change` (locked) through its kind; supersede it instead when it went stale."""
    kind = change_kind(change.kind)
    if kind.state(change.target) != change.before:
        _close(change, ChangeStatus.SUPERSEDED, "The state it was proposed against changed.", actor)
        record(
            actor=actor, action=GovernanceAction.CHANGE_SUPERSEDED, target=change, data=change_facts(change)
        )
        return False
    extra = {"sealed": change.sealed} if change.sealed else {}
    kind.apply(change.target, change.proposed, actor=actor, approved_by=approved_by, **extra)
    _close(change, ChangeStatus.APPLIED, "", actor)
    record(
        actor=actor,
        action=GovernanceAction.CHANGE_APPLIED,
        target=change,
        data={**change_facts(change), "approved_by": approved_by},
    )
    return True


def _close(change: GovernanceChangeRequest, status: str, reason: str, actor) -> None:
    """Give locked `change` its final status; what was sealed for applying it is no longer kept."""
    change.status = status
    change.status_reason = reason
    change.decided_at = timezone.now()
    change.sealed = {}
    change._history_user = actor
    change.save(update_fields=["status", "status_reason", "decided_at", "sealed"])


def change_reject(*, actor, change: GovernanceChangeRequest, comment: str) -> GovernanceChangeRequest:
    """Reject `change`: one rejection by another admin ends it."""
    require_governance_approver(actor)
    comment = require_within("comment", (comment or "").strip())
    with transaction.atomic():
        change = locked_change(change)
        check_change_decider(actor, change)
        if not comment:
            raise ChangeCommentRequired()
        GovernanceApproval.objects.create(
            change=change, approver=actor, decision=ChangeDecision.REJECT, comment=comment
        )
        _close(change, ChangeStatus.REJECTED, comment, actor)
        record(
            actor=actor,
            action=GovernanceAction.CHANGE_REJECTED,
            target=change,
            data={**change_facts(change), "comment": comment},
        )
    return change


def change_cancel(*, actor, change: GovernanceChangeRequest, comment: str = "") -> GovernanceChangeRequest:
    """Cancel `change`; only its requester may, while it is pending."""
    require_capability(actor, Capability.VIEW)
    comment = require_within("comment", (comment or "").strip())
    with transaction.atomic():
        change = locked_change(change)
        if change.requested_by_id != actor.pk:
            raise NotTheChangeRequester(NOT_THE_REQUESTER.format(id=change.pk))
        if change.status != ChangeStatus.PENDING:
            raise ChangeNotPending(CHANGE_NOT_PENDING.format(id=change.pk, status=change.status))
        _close(change, ChangeStatus.CANCELLED, comment, actor)
        record(
            actor=actor,
            action=GovernanceAction.CHANGE_CANCELLED,
            target=change,
            data={**change_facts(change), "comment": comment},
        )
    return change
