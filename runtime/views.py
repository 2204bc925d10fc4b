"""Console pages of the runtime (control plane): decisions browser, decision, runtime keys, model endpoints.

Mounted by the control plane's URLconf (runtime/urls.py); the runtime process never serves them. Views parse
forms, call one service or selector and render; refusals render the error's status page.
"""

from __future__ import annotations

from datetime import UTC

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bundles.selectors import bundle_list
from core.errors import DomainError
from core.pagination import console_cursor_page
from governance.selectors import CHANGE_PENDING_MESSAGE, is_pending_change
from promotions.models import GateRun
from promotions.selectors import environments
from runtime.conf import runtime_setting
from runtime.forms import DecisionFilterForm, ModelEndpointForm, RuntimeKeyForm
from runtime.selectors import (
    DecisionFilters,
    access_decision,
    access_model_endpoint,
    access_runtime_key,
    decision_bundles,
    decisions,
    governance_coverage,
    model_endpoints,
    runtime_keys,
)
from runtime.services import (
    model_endpoint_create,
    model_endpoint_delete,
    model_endpoint_update,
    runtime_key_create,
    runtime_key_revoke,
)
from tenancy.console import console_page
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, membership_of, require_capability

ERROR_TEMPLATE = "runtime/error.html"
DECISIONS_PER_PAGE = 50
VERSION_PAGE_URL_NAME = "bundles-version"
KEY_CREATED_MESSAGE = "Runtime key {name!r} created. Copy it now: it is shown only once."
KEY_REVOKED_MESSAGE = "Runtime key {name!r} revoked; the runtime refuses it within a second."
ENDPOINT_CREATED_MESSAGE = "Model endpoint {name!r} created."
ENDPOINT_SAVED_MESSAGE = "Model endpoint {name!r} saved."
ENDPOINT_DELETED_MESSAGE = "Model endpoint {name!r} deleted."


def can(request, capability: str) -> bool:
    """Return whether the member's roles include `capability`."""
    membership = membership_of(request.user, current_tenant())
    return bool(membership and membership.can(capability))


def version_url(bundle: str, version: str) -> str:
    """Return the console URL of a version's page ('' if the bundles console does not offer one)."""
    try:
        return reverse(VERSION_PAGE_URL_NAME, args=[bundle, version])
    except NoReverseMatch:
        return ""


# --- decisions ---------------------------------------------------------------------------------------------


@require_GET
@console_page(ERROR_TEMPLATE)
def decision_list(request):
    """Browse decisions by bundle, version, status, fired policy and time, newest first."""
    form = DecisionFilterForm(request.GET or None, bundle_names=decision_bundles())
    filters = DecisionFilters()
    if form.is_valid():
        data = form.cleaned_data
        filters = DecisionFilters(
            bundle=data["bundle"],
            version=data["version"].strip(),
            status=data["status"],
            policy=data["policy"].strip(),
            since=as_utc(data["since"]),
            until=as_utc(data["until"]),
        )
    rows = decisions(filters).only("id", "created_at", "actor_name", "data")
    page, query = console_cursor_page(rows, request, DECISIONS_PER_PAGE)
    return render(
        request,
        "runtime/decisions.html",
        {
            "form": form,
            "page": page,
            "query": query,
            "filtered": filters != DecisionFilters(),
        },
    )


def as_utc(moment):
    """Return an aware datetime (naive input is UTC), or None."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if timezone.is_naive(moment) else moment


@require_GET
@console_page(ERROR_TEMPLATE)
def decision_detail(request, decision_id: int):
    """Show one decision: outcome, policy results, redactions, hashes, latency, version and its gates."""
    entry = access_decision(request.user, decision_id)
    data = entry.data
    gate_run = GateRun.objects.filter(digest=data.get("digest", "")).order_by("-created_at", "-id").first()
    return render(
        request,
        "runtime/decision.html",
        {
            "entry": entry,
            "data": data,
            "version_url": version_url(data.get("bundle", ""), data.get("version", "")),
            "gate_run": gate_run,
            "fired": [policy for policy in data.get("policies", []) if policy.get("fired")],
        },
    )


# --- runtime keys ------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@console_page(ERROR_TEMPLATE)
def key_list(request):
    """List runtime keys; operators create one (its secret is shown on this response only)."""
    may_manage = can(request, Capability.MANAGE_RUNTIME_KEYS)
    form = RuntimeKeyForm(
        request.POST if request.method == "POST" else None,
        environment_names=[environment.name for environment in environments()],
        bundle_names=[bundle.name for bundle in bundle_list()],
        default=runtime_setting("RUNTIME_DEFAULT_ENVIRONMENT"),
    )
    created = None
    status = 200
    if request.method == "POST":
        require_capability(request.user, Capability.MANAGE_RUNTIME_KEYS)
        if form.is_valid():
            try:
                created = runtime_key_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    environment=form.cleaned_data["environment"],
                    bundles=form.cleaned_data["bundles"],
                )
            except DomainError as error:
                form.add_error(None, error.message)
                status = error.status
            else:
                if created.change is not None:
                    messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=created.change.pk))
                    status = 202
                else:
                    messages.success(request, KEY_CREATED_MESSAGE.format(name=created.key.name))
                    status = 201
        else:
            status = 400
    return render(
        request,
        "runtime/keys.html",
        {"keys": runtime_keys(), "form": form, "may_manage": may_manage, "created": created},
        status=status,
    )


@require_POST
@console_page(ERROR_TEMPLATE)
def key_revoke(request, key_id: int):
    """Revoke a runtime key (operators)."""
    require_capability(request.user, Capability.MANAGE_RUNTIME_KEYS)
    key = runtime_key_revoke(actor=request.user, key=access_runtime_key(request.user, key_id))
    messages.success(request, KEY_REVOKED_MESSAGE.format(name=key.name))
    return redirect("runtime-keys")


# --- model endpoints ---------------------------------------------------------------------------------------


def endpoint_values(form: ModelEndpointForm) -> dict:
    """Return the service arguments of a valid endpoint form."""
    values = dict(form.cleaned_data)
    values["api_key_env"] = values.get("api_key_env") or ""
    return values


def add_service_error(form: ModelEndpointForm, error: DomainError) -> None:
    """Show a service refusal on the form, per field when the error names fields."""
    fields = {detail.get("field") for detail in error.details if isinstance(detail, dict)}
    for detail in error.details:
        field = detail.get("field") if isinstance(detail, dict) else None
        form.add_error(field if field in form.fields else None, detail.get("message", error.message))
    if not fields:
        form.add_error(None, error.message)


@require_http_methods(["GET", "POST"])
@console_page(ERROR_TEMPLATE)
def endpoint_list(request):
    """List model endpoints; operators add one."""
    may_manage = can(request, Capability.MANAGE_MODEL_ENDPOINTS)
    form = ModelEndpointForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        require_capability(request.user, Capability.MANAGE_MODEL_ENDPOINTS)
        if form.is_valid():
            try:
                endpoint = model_endpoint_create(actor=request.user, **endpoint_values(form))
            except DomainError as error:
                add_service_error(form, error)
                status = error.status
            else:
                if is_pending_change(endpoint):
                    messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=endpoint.pk))
                    return redirect("runtime-endpoints")
                messages.success(request, ENDPOINT_CREATED_MESSAGE.format(name=endpoint.name))
                return redirect("runtime-endpoints")
        else:
            status = 400
    return render(
        request,
        "runtime/endpoints.html",
        {"endpoints": model_endpoints(), "form": form, "may_manage": may_manage},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@console_page(ERROR_TEMPLATE)
def endpoint_detail(request, name: str):
    """Show one model endpoint; operators change it."""
    endpoint = access_model_endpoint(request.user, name)
    may_manage = can(request, Capability.MANAGE_MODEL_ENDPOINTS)
    initial = {
        "base_url": endpoint.base_url,
        "allowed_models": ", ".join(endpoint.allowed_models),
        "api_key_env": endpoint.api_key_env,
        "timeout_seconds": endpoint.timeout_seconds,
    }
    form = ModelEndpointForm(
        request.POST if request.method == "POST" else None, initial=initial, editing=True
    )
    status = 200
    if request.method == "POST":
        require_capability(request.user, Capability.MANAGE_MODEL_ENDPOINTS)
        if form.is_valid():
            try:
                result = model_endpoint_update(
                    actor=request.user, endpoint=endpoint, changes=endpoint_values(form)
                )
            except DomainError as error:
                add_service_error(form, error)
                status = error.status
            else:
                if is_pending_change(result):
                    messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=result.pk))
                    return redirect("runtime-endpoint", name=endpoint.name)
                messages.success(request, ENDPOINT_SAVED_MESSAGE.format(name=endpoint.name))
                return redirect("runtime-endpoint", name=endpoint.name)
        else:
            status = 400
    return render(
        request,
        "runtime/endpoint.html",
        {
            "endpoint": endpoint,
            "form": form,
            "may_manage": may_manage,
            "history": endpoint.history.all()[:20],
        },
        status=status,
    )


@require_POST
@console_page(ERROR_TEMPLATE)
def endpoint_delete(request, name: str):
    """Delete a model endpoint (operators)."""
    require_capability(request.user, Capability.MANAGE_MODEL_ENDPOINTS)
    endpoint = access_model_endpoint(request.user, name)
    model_endpoint_delete(actor=request.user, endpoint=endpoint)
    messages.success(request, ENDPOINT_DELETED_MESSAGE.format(name=name))
    return redirect("runtime-endpoints")


# --- dashboard ---------------------------------------------------------------------------------------------


def governance_panel(request):
    """Dashboard panel: governance coverage of the last 7 days, overall and per bundle."""
    if not can(request, Capability.VIEW):
        return None
    return "runtime/panels/governance.html", governance_coverage()
