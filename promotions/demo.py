"""Demo content of promotions: default environments, approvers, gates run inline, live versions."""

from guardian.shortcuts import get_perms

from bundles.models import Bundle, BundleVersion
from bundles.selectors import versions_of
from promotions.models import Deployment, PromotionRequest, PromotionStatus
from promotions.selectors import (
    access_environment,
    live_version,
    version_passed_gates,
)
from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
from promotions.services.gates import gate_run_execute, gate_run_start
from promotions.services.promotion_requests import promotion_approve, promotion_request_create

LIVE_EVERYWHERE = "claims-triage"
WAITING_FOR_APPROVAL = "support-routing"
DEMO_JUSTIFICATION = "Demo: {version} passed its gates."


def seed_promotions(*, tenant, users: dict, stdout) -> None:
    """Make the demo show live versions and a pending approval; idempotent."""
    environments_ensure_defaults(actor=None)
    staging, current = access_environment(None, "staging"), access_environment(None, "current")
    for environment in (staging, current):
        if "approve_promotion" not in get_perms(users["reviewer"], environment):
            environment_approval_grant(
                actor=users["admin"], environment=environment, user=users["reviewer"], granted=True
            )
    for version in BundleVersion.objects.select_related("bundle").order_by("id"):
        if not version_passed_gates(version):
            run = gate_run_start(actor=users["author"], version=version, enqueue=False)
            gate_run_execute(gate_run_id=run.pk)
    author, reviewer = users["author"], users["reviewer"]
    # Every release of claims-triage goes live in order, so current has a history to roll back through.
    for claims in releases_in_order(LIVE_EVERYWHERE):
        for environment in (staging, current):
            if not Deployment.objects.filter(version=claims, environment=environment).exists():
                promote(claims, environment, author=author, reviewer=reviewer)
    support = newest(WAITING_FOR_APPROVAL)
    if support is not None:
        promote(support, staging, author=author, reviewer=reviewer)
        promote(support, current, author=author, reviewer=None)
    stdout.write("  Promotions: staging and current with live versions; reviewer approves promotions.")


def releases_in_order(name: str) -> list[BundleVersion]:
    """Return the versions of bundle `name` that passed their gates, lowest first."""
    bundle = Bundle.objects.filter(name=name).first()
    if bundle is None:
        return []
    passed = [version for version in reversed(versions_of(bundle)) if version_passed_gates(version)]
    return [BundleVersion.objects.select_related("bundle").get(pk=version.pk) for version in passed]


def newest(name: str) -> BundleVersion | None:
    """Return the highest version of bundle `name` that passed its gates."""
    bundle = Bundle.objects.filter(name=name).first()
    if bundle is None:
        return None
    for version in versions_of(bundle):
        if version_passed_gates(version):
            return BundleVersion.objects.select_related("bundle").get(pk=version.pk)
    return None


def promote(version: BundleVersion, environment, *, author, reviewer) -> None:
    """Make `version` live in `environment` through a real request (approved by `reviewer` when given)."""
    if live_version(version.bundle, environment) == version:
        return
    request = PromotionRequest.objects.filter(
        version__bundle=version.bundle, environment=environment, status=PromotionStatus.PENDING
    ).first()
    if request is None:
        request = promotion_request_create(
            actor=author,
            version=version,
            environment=environment,
            justification=DEMO_JUSTIFICATION.format(version=version),
        )
    if (
        request.status == PromotionStatus.PENDING
        and reviewer is not None
        and request.version_id == version.pk
    ):
        promotion_approve(actor=reviewer, request=request, comment="Demo approval.")
