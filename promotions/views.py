"""Console pages of promotions: requests with Approve / Reject / Cancel, environments with Rollback and rules.

Views parse forms, call one service or selector and render; every rule lives in the services. A refused action
re-renders its page with the service's message and the error's HTTP status; a successful one redirects.
"""

from typing import Any

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from bundles.diff import diff_line_classes, diff_versions, summary_sentences
from bundles.selectors import access_bundle, access_version, bundle_list
from core.errors import DomainError, NotFound
from governance.selectors import CHANGE_PENDING_MESSAGE, is_pending_change
from promotions import selectors
from promotions.exceptions import (
    ALREADY_DECIDED,
    AUTHORS_MAY_NOT_APPROVE,
    NOT_AN_APPROVER,
    REQUEST_NOT_PENDING,
    SELF_APPROVAL,
    USER_NOT_FOUND,
    UserNotFound,
)
from promotions.forms import (
    ApproverForm,
    DecisionForm,
    EnvironmentRulesForm,
    GateRunForm,
    PromotionFilterForm,
    PromotionRequestForm,
    RollbackForm,
)
from promotions.models import Deployment, PromotionRequest, PromotionStatus
from promotions.services.deployments import deployment_rollback
from promotions.services.environments import environment_approval_grant, environment_update
from promotions.services.gates import gate_run_start
from promotions.services.promotion_requests import (
    promotion_approve,
    promotion_cancel,
    promotion_reject,
    promotion_request_create,
)
from tenancy.console import console_page, error_page, fresh_authentication_required
from tenancy.exceptions import MISSING_CAPABILITY, NOT_A_MEMBER
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, membership_of, require_capability

VERSION_PAGE_URL_NAME = "bundles-version"
REQUESTS_PER_PAGE = 100
TIMELINE_LENGTH = 200

NO_SUCH_VERSION = "Name a bundle and one of its versions."
NO_SUCH_BUNDLE = "Name a bundle to roll back."
NOTHING_LIVE_YET = "Nothing is live in {environment} yet."
NOTHING_LIVE_BEFORE = "Nothing was live in {environment} before it: this is the first version there."
ERROR_TEMPLATE = "promotions/error.html"
DIFF_IDENTICAL = "Identical to what is live."
APPROVED_MESSAGE = "You approved request {id}."
PROMOTED_MESSAGE = "Request {id} is promoted: {version} is live in {environment}."
REJECTED_MESSAGE = "You rejected request {id}."
CANCELLED_MESSAGE = "You cancelled request {id}."
REQUESTED_MESSAGE = "Requested the promotion of {version} to {environment} (request {id}: {status})."
GATES_STARTED_MESSAGE = "Gate run {id} of {version}: {status}."
ROLLED_BACK_MESSAGE = "Rolled {bundle} back in {environment}: {version} is live."
RULES_SAVED_MESSAGE = "Rules of {environment} saved."
APPROVER_GRANTED_MESSAGE = "{username} may now approve promotions to {environment}."
APPROVER_REVOKED_MESSAGE = "{username} may no longer approve promotions to {environment}."


def capabilities_of(request) -> frozenset[str]:
    """Return what the member's roles allow in the current tenant."""
    membership = membership_of(request.user, current_tenant())
    return membership.capabilities if membership else frozenset()


def version_url(version) -> str:
    """Return the console URL of a version's page ('' when the bundles console does not offer one)."""
    try:
        return reverse(VERSION_PAGE_URL_NAME, args=[version.bundle.name, version.version])
    except NoReverseMatch:
        return ""


# Presentation helpers -------------------------------------------------------------------------------------


def version_diff(base, version) -> dict[str, Any]:
    """Return the diff of going from `base` (the version live before; may be None) to `version`."""
    if base is None:
        return {"base": None}
    diff = diff_versions(base.files, base.content, version.files, version.content)
    return {
        "base": base,
        "base_url": version_url(base),
        "identical": diff["identical"] or base.pk == version.pk,
        "summary": summary_sentences(diff["summary"]),
        "files": [
            {"path": entry["path"], "status": entry["status"], "lines": diff_line_classes(entry["diff"])}
            for entry in diff["files"]
        ],
    }


def gate_report_context(run) -> dict[str, Any] | None:
    """Return a gate run with its per-suite and per-case results for the templates."""
    if run is None:
        return None
    report = run.report or {}
    return {"run": run, "suites": report.get("suites") or [], "totals": report.get("totals") or {}}


def eligibility_reason(code: str, promotion: PromotionRequest) -> str:
    """Return the sentence explaining an approval_eligibility refusal code."""
    reasons = {
        selectors.REASON_NOT_A_MEMBER: NOT_A_MEMBER,
        selectors.REASON_MISSING_ROLE: MISSING_CAPABILITY.format(capability=Capability.APPROVE_PROMOTION),
        selectors.REASON_SELF_APPROVAL: SELF_APPROVAL,
        selectors.REASON_NOT_AN_APPROVER: NOT_AN_APPROVER.format(environment=promotion.environment.name),
        selectors.REASON_NOT_PENDING: REQUEST_NOT_PENDING.format(id=promotion.pk, status=promotion.status),
        selectors.REASON_ALREADY_DECIDED: ALREADY_DECIDED.format(id=promotion.pk),
        selectors.REASON_SEPARATION_OF_DUTIES: AUTHORS_MAY_NOT_APPROVE.format(
            environment=promotion.environment.name
        ),
    }
    return reasons.get(code, code)


def diff_base(promotion: PromotionRequest):
    """Return the version to compare a request with: what it replaced once promoted, else what is live now."""
    if promotion.status == PromotionStatus.PROMOTED:
        deployment = (
            Deployment.objects.filter(request=promotion)
            .select_related("previous__version__bundle")
            .order_by("id")
            .first()
        )
        if deployment is not None:
            return deployment.previous.version if deployment.previous else None
    return selectors.live_version(promotion.version.bundle, promotion.environment)


# Promotion requests ---------------------------------------------------------------------------------------


@console_page(ERROR_TEMPLATE)
def promotion_list(request):
    """List promotion requests, filtered by status and environment; the member's pending approvals first."""
    names = [environment.name for environment in selectors.environments()]
    form = PromotionFilterForm(request.GET or None, environment_names=names)
    status = environment = None
    if form.is_valid():
        status = form.cleaned_data["status"] or None
        environment = form.cleaned_data["environment"] or None
    requests = selectors.promotion_requests(status=status, environment=environment)[:REQUESTS_PER_PAGE]
    return render(
        request,
        "promotions/list.html",
        {
            "form": form,
            "promotions": [(promotion, version_url(promotion.version)) for promotion in requests],
            "awaiting_you": selectors.pending_approvals_for(request.user),
        },
    )


def promotion_context(request, promotion: PromotionRequest, **extra) -> dict[str, Any]:
    """Return everything the request page shows."""
    eligible, code = selectors.approval_eligibility(request.user, promotion)
    if code == selectors.REASON_MISSING_ROLE and promotion.requested_by_id == request.user.pk:
        code = selectors.REASON_SELF_APPROVAL  # for the requester, that is the reason that matters
    base = diff_base(promotion)
    return {
        "promotion": promotion,
        "version": promotion.version,
        "version_url": version_url(promotion.version),
        "diff": version_diff(base, promotion.version),
        "nothing_live": (
            NOTHING_LIVE_BEFORE if promotion.status == PromotionStatus.PROMOTED else NOTHING_LIVE_YET
        ).format(environment=promotion.environment.name),
        "diff_identical": DIFF_IDENTICAL,
        "gates": gate_report_context(selectors.latest_gate_run(promotion.version)),
        "gates_required": promotion.environment.requires_gates,
        "approvals": list(selectors.approvals_of(promotion)),
        "approval_count": selectors.approval_count(promotion),
        "can_decide": eligible,
        "cannot_decide_reason": "" if eligible else eligibility_reason(code, promotion),
        "can_cancel": promotion.status == PromotionStatus.PENDING
        and promotion.requested_by_id == request.user.pk,
        "decision_form": DecisionForm(),
        "deployments": list(
            Deployment.objects.filter(request=promotion)
            .select_related("environment", "version")
            .order_by("id")
        ),
        **extra,
    }


@console_page(ERROR_TEMPLATE)
def promotion_detail(request, promotion_id: int):
    """Show one request: version, diff against what is live, gates, approvals and the decision buttons."""
    promotion = selectors.access_promotion(request.user, promotion_id)
    return render(request, "promotions/detail.html", promotion_context(request, promotion))


def refused(request, promotion: PromotionRequest, error: DomainError, form=None):
    """Re-render the request page with the refusal message, answering with the error's status."""
    context = promotion_context(request, promotion, error=error.message)
    if form is not None:
        context["decision_form"] = form
    return render(request, "promotions/detail.html", context, status=error.status)


def decide(request, promotion_id: int, service, done_message: str):
    """Apply one decision service to a request from its page's form; re-render the page on refusal."""
    promotion = selectors.access_promotion(request.user, promotion_id)
    form = DecisionForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        promotion = service(actor=request.user, request=promotion, comment=comment)
    except DomainError as error:
        return refused(request, promotion, error, form)
    messages.success(request, done_message.format(id=promotion.pk))
    if promotion.status == PromotionStatus.PROMOTED:
        environment = promotion.environment.name
        messages.success(
            request,
            PROMOTED_MESSAGE.format(id=promotion.pk, version=promotion.version, environment=environment),
        )
    return redirect("promotions-detail", promotion.pk)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def promotion_approve_view(request, promotion_id: int):
    """Approve a request (eligible reviewers); it deploys when gates and approvals suffice."""
    return decide(request, promotion_id, promotion_approve, APPROVED_MESSAGE)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def promotion_reject_view(request, promotion_id: int):
    """Reject a request (eligible reviewers; a comment is required); one rejection ends it."""
    return decide(request, promotion_id, promotion_reject, REJECTED_MESSAGE)


@console_page(ERROR_TEMPLATE)
@require_POST
def promotion_cancel_view(request, promotion_id: int):
    """Cancel a pending request (its requester only)."""
    return decide(request, promotion_id, promotion_cancel, CANCELLED_MESSAGE)


def version_page_or(version, fallback: str) -> str:
    """Return the version's console URL, or `fallback` when there is none."""
    return version_url(version) or fallback


@console_page(ERROR_TEMPLATE)
@require_POST
def promotion_request_view(request):
    """Request a promotion from the version page's panel; back to the version page with the refusal."""
    names = [environment.name for environment in selectors.environments()]
    form = PromotionRequestForm(request.POST, environment_names=names)
    if not form.is_valid():
        return render(
            request, "promotions/request_refused.html", {"form": form, "errors": form.errors}, status=400
        )
    version = access_version(request.user, form.cleaned_data["bundle"], form.cleaned_data["version"])
    environment = selectors.access_environment(request.user, form.cleaned_data["environment"])
    try:
        promotion = promotion_request_create(
            actor=request.user,
            version=version,
            environment=environment,
            justification=form.cleaned_data["justification"],
        )
    except DomainError as error:
        context = {
            "form": form,
            "version": version,
            "version_url": version_url(version),
            "error": error.message,
        }
        return render(request, "promotions/request_refused.html", context, status=error.status)
    messages.success(
        request,
        REQUESTED_MESSAGE.format(
            version=version, environment=environment.name, id=promotion.pk, status=promotion.status
        ),
    )
    return redirect("promotions-detail", promotion.pk)


@console_page(ERROR_TEMPLATE)
@require_POST
def gate_run_view(request):
    """Start (or find) the gate run of a version, then go back to the version page."""
    form = GateRunForm(request.POST)
    if not form.is_valid():
        return error_page(request, NotFound(NO_SUCH_VERSION))
    version = access_version(request.user, form.cleaned_data["bundle"], form.cleaned_data["version"])
    try:
        run = gate_run_start(actor=request.user, version=version)
    except DomainError as error:
        return error_page(request, error, ERROR_TEMPLATE)
    messages.success(request, GATES_STARTED_MESSAGE.format(id=run.pk, version=version, status=run.status))
    return redirect(version_page_or(version, reverse("promotions-list")))


def version_panel(request, version):
    """Return the version page's promotions panel: latest gate run, Run gates, Request promotion, requests."""
    membership = membership_of(request.user, current_tenant())
    if membership is None or not membership.can(Capability.VIEW):
        return None
    names = [environment.name for environment in selectors.environments()]
    return (
        "promotions/_version_panel.html",
        {
            "version": version,
            "gates": gate_report_context(selectors.latest_gate_run(version)),
            "can_run_gates": membership.can(Capability.RUN_GATES),
            "can_request": membership.can(Capability.REQUEST_PROMOTION),
            "gate_form": GateRunForm(initial={"bundle": version.bundle.name, "version": version.version}),
            "request_form": PromotionRequestForm(
                initial={"bundle": version.bundle.name, "version": version.version}, environment_names=names
            ),
            "requests": list(
                PromotionRequest.objects.filter(version=version).select_related("environment")[:20]
            ),
            "deployments": selectors.version_deployments(version),
        },
    )


def register_console_panels() -> None:
    """Add the promotions panel to the console's version page (call from PromotionsConfig.ready())."""
    from bundles import extensions

    extensions.register_version_panel(version_panel, order=50)


# Environments ---------------------------------------------------------------------------------------------


@console_page(ERROR_TEMPLATE)
def environment_list(request):
    """List environments with their rules and what is live in each."""
    live = selectors.live_versions()
    rows = []
    for environment in selectors.environments():
        rows.append(
            {
                "environment": environment,
                "live": [
                    (bundle, deployment, version_url(deployment.version))
                    for bundle, env, deployment in live
                    if env.pk == environment.pk
                ],
                "approvers": selectors.environment_approvers(environment),
            }
        )
    return render(request, "promotions/environments.html", {"rows": rows})


def environment_context(request, environment, **extra) -> dict[str, Any]:
    """Return everything the environment page shows to this member."""
    capabilities = capabilities_of(request)
    live = [
        (bundle, deployment, version_url(deployment.version))
        for bundle, env, deployment in selectors.live_versions()
        if env.pk == environment.pk
    ]
    can_rollback = Capability.ROLLBACK in capabilities
    can_manage = Capability.MANAGE_ENVIRONMENTS in capabilities
    others = [env.name for env in selectors.environments() if env.pk != environment.pk]
    rules_form = extra.pop("rules_form", None) or EnvironmentRulesForm(
        initial={
            "description": environment.description,
            "requires_gates": environment.requires_gates,
            "required_approvals": environment.required_approvals,
            "requires_live_in": environment.requires_live_in.name if environment.requires_live_in else "",
        },
        other_environment_names=others,
    )
    return {
        "environment": environment,
        "live": [
            {
                "bundle": bundle,
                "deployment": deployment,
                "version_url": url,
                "candidates": selectors.rollback_candidates(bundle, environment) if can_rollback else [],
            }
            for bundle, deployment, url in live
        ],
        "timeline": [
            (deployment, version_url(deployment.version))
            for deployment in selectors.deployment_history(environment=environment)[:TIMELINE_LENGTH]
        ],
        "never_deployed": [b for b in bundle_list() if all(b.pk != row[0].pk for row in live)],
        "can_rollback": can_rollback,
        "can_manage": can_manage,
        "rules_form": rules_form if can_manage else None,
        "approver_form": ApproverForm() if can_manage else None,
        "approvers": selectors.environment_approvers(environment),
        **extra,
    }


@console_page(ERROR_TEMPLATE)
def environment_detail(request, name: str):
    """Show an environment: live versions, deployments, Rollback, and (admins) rules and approvers."""
    environment = selectors.access_environment(request.user, name)
    return render(request, "promotions/environment.html", environment_context(request, environment))


def environment_refused(request, environment, message: str, status: int, **extra):
    """Re-render the environment page with a refusal message and status."""
    context = environment_context(request, environment, error=message, **extra)
    return render(request, "promotions/environment.html", context, status=status)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def environment_rollback_view(request, name: str):
    """Roll a bundle back in this environment (operators)."""
    environment = selectors.access_environment(request.user, name)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        return error_page(request, NotFound(NO_SUCH_BUNDLE))
    bundle = access_bundle(request.user, form.cleaned_data["bundle"])
    try:
        deployment = deployment_rollback(
            actor=request.user,
            bundle=bundle,
            environment=environment,
            to_version=form.cleaned_data["to_version"] or None,
            justification=form.cleaned_data["justification"],
        )
    except DomainError as error:
        return environment_refused(request, environment, error.message, error.status)
    messages.success(
        request,
        ROLLED_BACK_MESSAGE.format(
            bundle=bundle.name, environment=environment.name, version=deployment.version
        ),
    )
    return redirect("promotions-environment", environment.name)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def environment_rules_view(request, name: str):
    """Change an environment's promotion rules (admins)."""
    environment = selectors.access_environment(request.user, name)
    others = [env.name for env in selectors.environments() if env.pk != environment.pk]
    form = EnvironmentRulesForm(request.POST, other_environment_names=others)
    if not form.is_valid():
        return environment_refused(request, environment, "Fix the rules below.", 400, rules_form=form)
    try:
        result = environment_update(
            actor=request.user,
            environment=environment,
            description=form.cleaned_data["description"],
            requires_gates=form.cleaned_data["requires_gates"],
            required_approvals=form.cleaned_data["required_approvals"],
            requires_live_in=form.cleaned_data["requires_live_in"] or None,
        )
    except DomainError as error:
        return environment_refused(request, environment, error.message, error.status, rules_form=form)
    if is_pending_change(result):
        messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=result.pk))
        return redirect("promotions-environment", environment.name)
    messages.success(request, RULES_SAVED_MESSAGE.format(environment=environment.name))
    return redirect("promotions-environment", environment.name)


@console_page(ERROR_TEMPLATE)
@require_POST
@fresh_authentication_required
def environment_approvers_view(request, name: str):
    """Grant or revoke a member's approve_promotion on this environment (admins)."""
    environment = selectors.access_environment(request.user, name)
    form = ApproverForm(request.POST)
    if not form.is_valid():
        return environment_refused(request, environment, "Name a member and grant or revoke.", 400)
    username = form.cleaned_data["username"].strip()
    granted = form.cleaned_data["granted"]
    try:
        require_capability(request.user, Capability.MANAGE_ENVIRONMENTS)
        user = selectors.active_member(username)
        if user is None:
            raise UserNotFound(USER_NOT_FOUND.format(username=username))
        change = environment_approval_grant(
            actor=request.user, environment=environment, user=user, granted=granted
        )
    except DomainError as error:
        return environment_refused(request, environment, error.message, error.status)
    if change is not None:
        messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=change.pk))
        return redirect("promotions-environment", environment.name)
    template = APPROVER_GRANTED_MESSAGE if granted else APPROVER_REVOKED_MESSAGE
    messages.success(request, template.format(username=username, environment=environment.name))
    return redirect("promotions-environment", environment.name)
