"""Deployments, the append-only release pointer: apply a ready promotion request, fail one, roll back.

The facts every audit record and notification about a request carries are stated here too, because applying
a request is where its story ends; the request and gate services build on them.
"""

from django.db import transaction
from django.utils import timezone

from audit.services import record
from bundles.models import Bundle, BundleVersion
from core.text import require_within
from promotions.actions import PromotionAction, PromotionEvent
from promotions.exceptions import (
    ALREADY_LIVE,
    ALREADY_LIVE_REASON,
    NO_PREVIOUS_VERSION,
    NOT_PREVIOUSLY_LIVE,
    NOTHING_LIVE,
    AlreadyLive,
    JustificationRequired,
    NoPreviousVersion,
    NothingLive,
    NotPreviouslyLive,
)
from promotions.models import Deployment, DeploymentKind, Environment, PromotionRequest, PromotionStatus
from promotions.selectors import (
    approving_reviewers,
    default_rollback_target,
    groups_covered,
    live_deployment,
    request_rules,
    version_passed_gates,
    was_live_in,
)
from promotions.services.outbox import outbox_publish
from promotions.services.preconditions import locked_environment, require
from tenancy.roles import Capability


def username(user) -> str | None:
    """Return the user's name, or None for the system."""
    return user.get_username() if user is not None else None


def request_facts(request: PromotionRequest) -> dict:
    """Return what audit records and notifications say about `request`."""
    version = request.version
    return {
        "request": request.pk,
        "bundle": version.bundle.name,
        "version": version.version,
        "digest": version.digest,
        "environment": request.environment.name,
        "status": request.status,
        "requested_by": username(request.requested_by),
    }


def promotion_apply_if_ready(*, actor, request: PromotionRequest) -> bool:
    """Deploy `request` (environment locked by the caller) when gates passed and approvals suffice.

    The request is decided under the rules it was made with (its snapshot), never the environment's current
    ones. The deployment names the reviewers whose approvals made it (`approved_by`); its actor is whoever's
    action made the request ready, and when the system applied it (gates finished) the last approver, or the
    requester when no approval was needed.
    """
    if request.status != PromotionStatus.PENDING:
        return False
    environment = request.environment
    rules = request_rules(request)
    if rules["requires_gates"] and not version_passed_gates(request.version):
        return False
    reviewers = approving_reviewers(request)
    if len(reviewers) < rules["required_approvals"]:
        return False
    if not groups_covered(reviewers, rules["required_groups"]):
        return False
    approved_by = [reviewer.get_username() for reviewer in reviewers]
    bundle = request.version.bundle
    live = live_deployment(bundle, environment)
    if live is not None and live.version_id == request.version_id:
        promotion_fail(
            request, ALREADY_LIVE_REASON.format(version=request.version, environment=environment.name)
        )
        return False
    deployment = Deployment.objects.create(
        bundle=bundle,
        environment=environment,
        version=request.version,
        kind=DeploymentKind.PROMOTE,
        request=request,
        actor=actor or (reviewers[-1] if reviewers else request.requested_by),
        approved_by=approved_by,
        justification=request.justification,
        previous=live,
    )
    close_request(request, status=PromotionStatus.PROMOTED, reason="", actor=actor)
    facts = {
        **request_facts(request),
        "deployment": deployment.pk,
        "kind": deployment.kind,
        "previous_version": live.version.version if live else None,
        "previous_deployment": live.pk if live else None,
        "approved_by": approved_by,
    }
    record(actor=actor, action=PromotionAction.DEPLOYMENT_CREATED, target=deployment, data=facts)
    outbox_publish(PromotionEvent.PROMOTION_PROMOTED, facts)
    return True


def close_request(request: PromotionRequest, *, status: str, reason: str, actor) -> None:
    """Give a locked, pending `request` its final status and reason, in history as changed by `actor`."""
    request.status = status
    request.status_reason = reason
    request.decided_at = timezone.now()
    request._history_user = actor
    request.save(update_fields=["status", "status_reason", "decided_at"])


def promotion_fail(request: PromotionRequest, reason: str) -> None:
    """End `request` (environment locked by the caller) as failed with `reason`."""
    close_request(request, status=PromotionStatus.FAILED, reason=reason, actor=None)
    facts = {**request_facts(request), "reason": reason}
    record(actor=None, action=PromotionAction.PROMOTION_FAILED, target=request, data=facts)
    outbox_publish(PromotionEvent.PROMOTION_FAILED, facts)


def deployment_rollback(
    *, actor, bundle: Bundle, environment: Environment, to_version=None, justification: str
) -> Deployment:
    """Point `environment` back to a version of `bundle` once live there (default: the one before); at once.

    `to_version` is a BundleVersion of the bundle, its version string, or None.
    """
    require(actor, Capability.ROLLBACK)
    justification = require_within("justification", (justification or "").strip())
    if not justification:
        raise JustificationRequired()
    with transaction.atomic():
        environment = locked_environment(environment)
        live = live_deployment(bundle, environment)
        if live is None:
            raise NothingLive(NOTHING_LIVE.format(bundle=bundle.name, environment=environment.name))
        if to_version is None:
            target = default_rollback_target(bundle, environment)
            if target is None:
                raise NoPreviousVersion(
                    NO_PREVIOUS_VERSION.format(bundle=bundle.name, environment=environment.name)
                )
        else:
            target = rollback_target(bundle, environment, to_version)
            if target.pk == live.version_id:
                raise AlreadyLive(ALREADY_LIVE.format(version=target, environment=environment.name))
        deployment = Deployment.objects.create(
            bundle=bundle,
            environment=environment,
            version=target,
            kind=DeploymentKind.ROLLBACK,
            actor=actor,
            justification=justification,
            previous=live,
        )
        facts = {
            "deployment": deployment.pk,
            "bundle": bundle.name,
            "environment": environment.name,
            "from_version": live.version.version,
            "to_version": target.version,
            "digest": target.digest,
            "previous_deployment": live.pk,
            "justification": justification,
            "explicit_target": to_version is not None,
        }
        record(actor=actor, action=PromotionAction.ROLLBACK, target=deployment, data=facts)
        outbox_publish(PromotionEvent.ROLLED_BACK, {**facts, "actor": username(actor)})
    return deployment


def rollback_target(bundle: Bundle, environment: Environment, to_version) -> BundleVersion:
    """Return the named version of `bundle` if it was ever live in `environment`; else NotPreviouslyLive."""
    label = to_version.version if isinstance(to_version, BundleVersion) else str(to_version)
    target = BundleVersion.objects.filter(bundle=bundle, version=label).select_related("bundle").first()
    if target is None or not was_live_in(target, environment):
        raise NotPreviouslyLive(
            NOT_PREVIOUSLY_LIVE.format(bundle=bundle.name, version=label, environment=environment.name)
        )
    return target
