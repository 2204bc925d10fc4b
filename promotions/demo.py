"""Demo content of promotions: default environments, approvers, gates queued for the worker, live versions.

The seeder never runs gates itself: it queues the versions whose gates did not pass (the system asks, not a
demo user) and promotes what already passed. It runs again in the worker (`promotions.seed_demo`) until
every demo version has a finished gate run, so the first `make run` ends with the full demo too, while a
second `make run` finds everything in place and changes nothing.
"""

from bundles.models import Bundle, BundleVersion
from bundles.selectors import versions_of
from core.errors import DomainError
from promotions.models import Deployment, GateRun, PromotionRequest, PromotionStatus
from promotions.queue import SEED_DEMO, enqueue_task
from promotions.selectors import (
    access_environment,
    environment_approvers,
    live_version,
    version_passed_gates,
    was_live_in,
)
from promotions.services.environments import environment_approval_grant, environments_ensure_defaults
from promotions.services.gates import ACTIVE_GATE_STATUSES, gate_run_start
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.selectors import current_tenant, membership_of

LIVE_EVERYWHERE = "claims-triage"
WAITING_FOR_APPROVAL = "support-routing"
DEMO_JUSTIFICATION = "Demo: {version} passed its gates."
DEMO_ROLES = ("author", "reviewer")
DEMO_ROUNDS = 40
DEMO_ROUND_SECONDS = 3.0


def seed_promotions(*, tenant, users: dict, stdout, rounds_left: int = DEMO_ROUNDS) -> bool:
    """Make the demo show live versions and a pending approval as far as passed gates allow; idempotent.

    Return True when the demo is complete. While gates it waits for are queued or running, the seeder is
    queued again for the worker (`rounds_left` more times, every DEMO_ROUND_SECONDS) and False is returned.
    """
    environments_ensure_defaults(actor=None)
    staging, current = access_environment(None, "staging"), access_environment(None, "current")
    reviewer = users["reviewer"]
    for environment in (staging, current):
        # Only a fresh environment gets the demo reviewer: a grant an admin revoked stays revoked.
        if not environment_approvers(environment) and membership_of(reviewer, current_tenant()) is not None:
            environment_approval_grant(actor=None, environment=environment, user=reviewer, granted=True)
    waiting = gates_queued_for_demo()
    author = users["author"]
    # Every release of claims-triage goes live in order, so current has a history to roll back through.
    for claims in releases_in_order(LIVE_EVERYWHERE):
        if not all(
            promote(claims, environment, author=author, reviewer=reviewer)
            for environment in (staging, current)
        ):
            break
    support = newest(WAITING_FOR_APPROVAL)
    if support is not None and promote(support, staging, author=author, reviewer=reviewer):
        promote(support, current, author=author, reviewer=None)
    if not waiting:
        stdout.write("  Promotions: staging and current with live versions; reviewer approves promotions.")
        return True
    stdout.write(
        f"  Promotions: gates of {waiting} version(s) queued; the worker completes the demo when they pass."
    )
    if rounds_left > 0:
        user_ids = {role: user.pk for role, user in users.items() if role in DEMO_ROLES}
        enqueue_task(SEED_DEMO, countdown=DEMO_ROUND_SECONDS, user_ids=user_ids, rounds_left=rounds_left - 1)
    return False


def gates_queued_for_demo() -> int:
    """Queue the gates of every version without a passed run (none is run here); return how many wait."""
    waiting = 0
    for version in BundleVersion.objects.select_related("bundle").order_by("id"):
        if version_passed_gates(version):
            continue
        latest = GateRun.objects.filter(digest=version.digest).order_by("-id").first()
        if latest is None or latest.status in ACTIVE_GATE_STATUSES:
            run = gate_run_start(actor=None, version=version)
            waiting += run.status in ACTIVE_GATE_STATUSES
    return waiting


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


def promote(version: BundleVersion, environment, *, author, reviewer) -> bool:
    """Make `version` live in `environment` through a real request (approved by `reviewer` when given).

    Return whether it was ever live there; nothing is requested when its turn has not come.
    """
    if Deployment.objects.filter(version=version, environment=environment).exists():
        return True
    required = environment.requires_live_in
    if required is not None and not was_live_in(version, required):
        return False
    request = PromotionRequest.objects.filter(
        version__bundle=version.bundle, environment=environment, status=PromotionStatus.PENDING
    ).first()
    try:
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
    except DomainError:
        # A demo user whose roles an admin changed may no longer request or approve: leave it as it is.
        return False
    return live_version(version.bundle, environment) == version
