"""Promotion requests and their decisions: request, approve, reject, cancel."""

from django.db import transaction

from audit.services import record
from bundles.models import BundleVersion
from core.text import require_within
from promotions.actions import PromotionAction, PromotionEvent
from promotions.exceptions import (
    ALREADY_DECIDED,
    ALREADY_LIVE,
    AUTHOR_APPROVAL,
    NOT_AN_APPROVER,
    NOT_IN_STAGING,
    NOT_LIVE_IN_REQUIRED_ENVIRONMENT,
    NOT_THE_REQUESTER,
    REQUEST_EXISTS,
    REQUEST_NOT_PENDING,
    SEPARATION_OF_DUTIES,
    WAITING_FOR_GATES_REASON,
    AlreadyDecided,
    AlreadyLive,
    CommentRequired,
    JustificationRequired,
    NotAnApprover,
    NotInStaging,
    NotLiveInRequiredEnvironment,
    NotTheRequester,
    RequestExists,
    RequestNotPending,
    SelfApproval,
    SeparationOfDuties,
)
from promotions.models import (
    Approval,
    ApprovalDecision,
    Environment,
    GateStatus,
    PromotionRequest,
    PromotionStatus,
)
from promotions.selectors import (
    APPROVE_CODENAME,
    approval_count,
    approval_rules,
    live_deployment,
    request_rules,
    was_live_in,
)
from promotions.services.deployments import close_request, promotion_apply_if_ready, request_facts, username
from promotions.services.gates import gate_run_deciding
from promotions.services.outbox import outbox_publish
from promotions.services.preconditions import locked_environment, locked_request, require
from tenancy.roles import Capability, Role
from tenancy.selectors import current_tenant, holds_object_permission, membership_of, require_capability


def promotion_request_create(
    *, actor, version: BundleVersion, environment: Environment, justification: str
) -> PromotionRequest:
    """Request that `version` go live in `environment`; applied at once when gates and approvals suffice."""
    require(actor, Capability.REQUEST_PROMOTION)
    justification = require_within("justification", (justification or "").strip())
    if not justification:
        raise JustificationRequired()
    bundle = version.bundle
    with transaction.atomic():
        environment = locked_environment(environment)
        live = live_deployment(bundle, environment)
        if live is not None and live.version_id == version.pk:
            raise AlreadyLive(ALREADY_LIVE.format(version=version, environment=environment.name))
        pending = PromotionRequest.objects.filter(
            version__bundle=bundle, environment=environment, status=PromotionStatus.PENDING
        ).first()
        if pending is not None:
            raise RequestExists(
                REQUEST_EXISTS.format(id=pending.pk, bundle=bundle.name, environment=environment.name)
            )
        required = environment.requires_live_in
        if required is not None and not was_live_in(version, required):
            if required.name == "staging":
                raise NotInStaging(NOT_IN_STAGING.format(version=version))
            raise NotLiveInRequiredEnvironment(
                NOT_LIVE_IN_REQUIRED_ENVIRONMENT.format(version=version, required=required.name)
            )
        run = None
        if environment.requires_gates:
            run = gate_run_deciding(actor, version)
        request = PromotionRequest(
            version=version,
            environment=environment,
            justification=justification,
            requested_by=actor,
            rules=approval_rules(environment),
        )
        if run is not None and run.status != GateStatus.PASSED:
            request.status_reason = WAITING_FOR_GATES_REASON.format(run_id=run.pk)
        request._history_user = actor
        request.save()
        facts = {
            **request_facts(request),
            "justification": justification,
            "gate_run": run.pk if run else None,
        }
        record(actor=actor, action=PromotionAction.PROMOTION_REQUESTED, target=request, data=facts)
        outbox_publish(PromotionEvent.PROMOTION_REQUESTED, facts)
        promotion_apply_if_ready(actor=actor, request=request)
    return request


def check_decider(actor, request: PromotionRequest) -> None:
    """Raise unless `actor` may decide `request` now (permission refusals before state conflicts)."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    if request.requested_by_id == actor.pk:
        raise SelfApproval()
    if not holds_object_permission(actor, APPROVE_CODENAME, request.environment):
        raise NotAnApprover(NOT_AN_APPROVER.format(environment=request.environment.name))
    check_separation_of_duties(actor, request)
    if request.status != PromotionStatus.PENDING:
        raise RequestNotPending(REQUEST_NOT_PENDING.format(id=request.pk, status=request.status))
    if Approval.objects.filter(request=request, reviewer=actor).exists():
        raise AlreadyDecided(ALREADY_DECIDED.format(id=request.pk))


def check_separation_of_duties(actor, request: PromotionRequest) -> None:
    """Raise SeparationOfDuties where the request's rules forbid author approval and `actor` is an author
    (holds the role) or wrote the version."""
    if not request_rules(request)["forbid_author_approval"]:
        return
    environment = request.environment.name
    if request.version.author_id == actor.pk:
        raise SeparationOfDuties(AUTHOR_APPROVAL.format(environment=environment, version=request.version))
    membership = membership_of(actor, current_tenant())
    if membership is not None and Role.AUTHOR in membership.roles:
        raise SeparationOfDuties(
            SEPARATION_OF_DUTIES.format(environment=environment, username=actor.get_username())
        )


def promotion_approve(*, actor, request: PromotionRequest, comment: str = "") -> PromotionRequest:
    """Record `actor`'s approval of `request`; deploy it when that makes approvals (and gates) suffice."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    require_within("comment", comment or "")
    with transaction.atomic():
        _, request = locked_request(request)
        check_decider(actor, request)
        Approval.objects.create(
            request=request, reviewer=actor, decision=ApprovalDecision.APPROVE, comment=comment
        )
        facts = {
            **request_facts(request),
            "comment": comment,
            "approvals": approval_count(request),
            "required_approvals": request_rules(request)["required_approvals"],
        }
        record(actor=actor, action=PromotionAction.PROMOTION_APPROVED, target=request, data=facts)
        outbox_publish(PromotionEvent.PROMOTION_APPROVED, {**facts, "reviewer": username(actor)})
        promotion_apply_if_ready(actor=actor, request=request)
    return request


def promotion_reject(*, actor, request: PromotionRequest, comment: str) -> PromotionRequest:
    """Reject `request`: one rejection ends it."""
    require_capability(actor, Capability.APPROVE_PROMOTION)
    comment = require_within("comment", (comment or "").strip())
    with transaction.atomic():
        _, request = locked_request(request)
        check_decider(actor, request)
        if not comment:
            raise CommentRequired()
        Approval.objects.create(
            request=request, reviewer=actor, decision=ApprovalDecision.REJECT, comment=comment
        )
        close_request(request, status=PromotionStatus.REJECTED, reason=comment, actor=actor)
        facts = {**request_facts(request), "comment": comment}
        record(actor=actor, action=PromotionAction.PROMOTION_REJECTED, target=request, data=facts)
        outbox_publish(PromotionEvent.PROMOTION_REJECTED, {**facts, "reviewer": username(actor)})
    return request


def promotion_cancel(*, actor, request: PromotionRequest, comment: str = "") -> PromotionRequest:
    """Cancel `request`; only its requester may, and only while it is pending."""
    require_capability(actor, Capability.VIEW)
    require_within("comment", comment or "")
    with transaction.atomic():
        _, request = locked_request(request)
        if request.requested_by_id != actor.pk:
            raise NotTheRequester(NOT_THE_REQUESTER.format(id=request.pk))
        if request.status != PromotionStatus.PENDING:
            raise RequestNotPending(REQUEST_NOT_PENDING.format(id=request.pk, status=request.status))
        close_request(request, status=PromotionStatus.CANCELLED, reason=comment, actor=actor)
        facts = {**request_facts(request), "comment": comment}
        record(actor=actor, action=PromotionAction.PROMOTION_CANCELLED, target=request, data=facts)
        outbox_publish(PromotionEvent.PROMOTION_CANCELLED, facts)
    return request
