"""Console pages of bundles: list, bundle, version, diff, upload, push grants and the draft editor."""

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bundles.diff import diff_line_classes, diff_versions, summary_sentences
from bundles.exceptions import DRAFT_PUBLISHED
from bundles.extensions import bundle_facts, bundle_panels, version_facts, version_panels
from bundles.forms import GRANT, DiffForm, DraftForm, PushGrantForm, UploadForm
from bundles.language.archive import BundleArchiveError, read_archive
from bundles.language.checks import validate_files
from bundles.selectors import (
    access_bundle,
    access_draft,
    access_version,
    bundle_list,
    grantee_named,
    open_drafts,
    push_grantees,
    recent_versions,
    versions_of,
)
from bundles.services import (
    PUSH_CODENAME,
    bundle_push_grant,
    bundle_version_push,
    draft_create,
    draft_discard,
    draft_publish,
    draft_save,
)
from core.errors import DomainError
from governance.selectors import CHANGE_PENDING_MESSAGE, is_pending_change
from tenancy.console import console_page, fresh_authentication_required
from tenancy.roles import Capability
from tenancy.selectors import holds_object_permission, require_capability

ERROR_TEMPLATE = "bundles/error.html"
GENERAL = ""  # the group of errors that belong to no file of the draft


def push_rights(membership) -> dict[str, bool]:
    """Return what the member's roles allow for pushing (the per-bundle grant is checked separately)."""
    return {
        "can_create": membership.can(Capability.CREATE_BUNDLE),
        "can_push": membership.can(Capability.PUSH_VERSION),
    }


def error_rows(errors) -> list[dict]:
    """Return validation or archive errors (BundleError or dicts) as dicts, in order."""
    return [error if isinstance(error, dict) else error.to_dict() for error in errors]


def source_line(files: dict[str, str], error: dict) -> str | None:
    """Return the source line an error points at, or None."""
    line, text = error.get("line"), files.get(error.get("file") or "")
    if not line or text is None:
        return None
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else None


def group_errors(errors: list[dict], files: dict[str, str]) -> dict[str, list[dict]]:
    """Return errors by file (GENERAL for those outside the files), each with its source line."""
    groups: dict[str, list[dict]] = {}
    for error in errors:
        key = error.get("file") if error.get("file") in files else GENERAL
        groups.setdefault(key, []).append({**error, "source": source_line(files, error)})
    return groups


MAX_FACT_DEPTH = 4


def fact_node(value, depth: int = 0) -> dict:
    """Return a JSON value as a tree the `_value.html` template renders: text, a map or a list."""
    if value is None:
        return {"kind": "text", "text": "—"}
    if isinstance(value, bool):
        return {"kind": "text", "text": "yes" if value else "no"}
    if isinstance(value, str | int | float):
        return {"kind": "text", "text": str(value)}
    if depth >= MAX_FACT_DEPTH:
        return {"kind": "text", "text": json.dumps(value, sort_keys=True, default=str)}
    if isinstance(value, dict):
        if not value:
            return {"kind": "text", "text": "—"}
        items = [(str(key).replace("_", " "), fact_node(child, depth + 1)) for key, child in value.items()]
        return {"kind": "map", "items": items}
    if isinstance(value, list | tuple):
        if all(item is None or isinstance(item, str | int | float | bool) for item in value):
            return {"kind": "text", "text": ", ".join(str(item) for item in value) or "none"}
        return {"kind": "list", "items": [fact_node(item, depth + 1) for item in value]}
    return {"kind": "text", "text": str(value)}


def fact_rows(facts: dict) -> list[dict]:
    """Return extension facts as rows of a label and a renderable value tree."""
    return [
        {"key": key.replace("_", " "), "slug": key, "node": fact_node(value)} for key, value in facts.items()
    ]


def numbered(text: str) -> list[tuple[int, str]]:
    """Return the lines of a text with their 1-based numbers."""
    return list(enumerate(text.splitlines(), start=1))


@require_GET
@console_page(ERROR_TEMPLATE)
def bundle_list_page(request):
    """List the tenant's bundles with their latest version."""
    membership = require_capability(request.user, Capability.VIEW)
    rights = push_rights(membership)
    return render(
        request,
        "bundles/list.html",
        {"bundles": bundle_list(), "can_upload": rights["can_create"] or rights["can_push"]},
    )


@require_GET
@console_page(ERROR_TEMPLATE)
def bundle_page(request, name: str):
    """Show a bundle: versions, the member's drafts, push grants (admins manage them), other apps' panels."""
    membership = require_capability(request.user, Capability.VIEW)
    bundle = access_bundle(request.user, name)
    versions = versions_of(bundle)
    parents = {version.pk: version.version for version in versions}
    can_manage = membership.can(Capability.MANAGE_MEMBERSHIPS)
    can_push_here = push_rights(membership)["can_push"] and holds_object_permission(
        request.user, PUSH_CODENAME, bundle
    )
    return render(
        request,
        "bundles/bundle.html",
        {
            "bundle": bundle,
            "versions": [(version, parents.get(version.parent_id)) for version in versions],
            "latest": versions[0] if versions else None,
            "diff_from": versions[1].version if len(versions) > 1 else None,
            "drafts": open_drafts(request.user, bundle) if can_push_here else [],
            "can_push_here": can_push_here,
            "can_manage_grants": can_manage,
            "grantees": push_grantees(bundle),
            "grant_form": PushGrantForm() if can_manage else None,
            "facts": fact_rows(bundle_facts(bundle)),
            "panels": bundle_panels(request, bundle),
        },
    )


@require_POST
@console_page(ERROR_TEMPLATE)
@fresh_authentication_required
def push_grant_change(request, name: str):
    """Grant or revoke a member's push_version on the bundle (admins)."""
    require_capability(request.user, Capability.MANAGE_MEMBERSHIPS)
    bundle = access_bundle(request.user, name)
    form = PushGrantForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a username and whether to grant or revoke.")
        return redirect("bundles-detail", name=bundle.name)
    granted = form.cleaned_data["action"] == GRANT
    try:
        user = grantee_named(form.cleaned_data["username"].strip())
        changed = bundle_push_grant(actor=request.user, bundle=bundle, user=user, granted=granted)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if is_pending_change(changed):
            messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=changed.pk))
            return redirect("bundles-detail", name=bundle.name)
        verb = "may now push" if granted else "may no longer push"
        note = "" if changed else " (unchanged)"
        messages.success(request, f"{user.get_username()} {verb} versions of {bundle.name}{note}.")
    return redirect("bundles-detail", name=bundle.name)


@require_GET
@console_page(ERROR_TEMPLATE)
def version_page(request, name: str, version: str):
    """Show one version: manifest facts, digest, parent, author, every file, other apps' panels."""
    require_capability(request.user, Capability.VIEW)
    found = access_version(request.user, name, version)
    files = [
        {"path": path, "lines": numbered(text), "size": len(text.encode("utf-8"))}
        for path, text in sorted(found.files.items())
    ]
    pipelines = found.manifest.get("pipelines") or []
    return render(
        request,
        "bundles/version.html",
        {
            "version": found,
            "bundle": found.bundle,
            "files": files,
            "pipelines": pipelines,
            "facts": fact_rows(version_facts(found)),
            "panels": version_panels(request, found),
        },
    )


@require_GET
@console_page(ERROR_TEMPLATE)
def diff_page(request, name: str):
    """Compare any two versions: per-file unified diffs and what changed in meaning."""
    require_capability(request.user, Capability.VIEW)
    bundle = access_bundle(request.user, name)
    versions = [version.version for version in versions_of(bundle)]
    data = request.GET.copy()
    if versions:
        data.setdefault("to", versions[0])
        data.setdefault("from", versions[1] if len(versions) > 1 else versions[0])
    form = DiffForm(data, versions=versions)
    context = {"bundle": bundle, "form": form, "diff": None}
    if form.is_valid():
        old = access_version(request.user, name, form.cleaned_data["from"])
        new = access_version(request.user, name, form.cleaned_data["to"])
        diff = diff_versions(old.files, old.content, new.files, new.content)
        context.update(
            old=old,
            new=new,
            diff=diff,
            file_diffs=[{**entry, "lines": diff_line_classes(entry["diff"])} for entry in diff["files"]],
            summary=summary_sentences(diff["summary"]),
        )
    return render(
        request, "bundles/diff.html", context, status=200 if form.is_valid() or not versions else 400
    )


@require_http_methods(["GET", "POST"])
@console_page(ERROR_TEMPLATE)
def upload_page(request):
    """Upload a .tar.gz: a new bundle (named by its bundle.yaml) or a new version of one."""
    membership = require_capability(request.user, Capability.VIEW)
    rights = push_rights(membership)
    if not (rights["can_create"] or rights["can_push"]):
        require_capability(request.user, Capability.PUSH_VERSION)  # raises with the precise message
    form = UploadForm(request.POST or None, request.FILES or None)
    errors, failure = [], None
    if request.method == "POST" and form.is_valid():
        try:
            files = read_archive(form.cleaned_data["archive"].read())
        except BundleArchiveError as error:
            errors, failure = error_rows(error.errors), "The archive could not be read safely."
        else:
            result = validate_files(files)
            if not result.valid:
                errors = [
                    {**error, "source": source_line(files, error)} for error in error_rows(result.errors)
                ]
                failure = f"The bundle has {len(errors)} error(s)."
            else:
                try:
                    pushed = bundle_version_push(
                        actor=request.user, name=result.manifest["name"], files=files, **rights
                    )
                except DomainError as error:
                    errors, failure = error_rows(error.details), error.message
                else:
                    version = pushed.version
                    if pushed.created:
                        messages.success(request, f"Pushed {version.bundle.name} {version.version}.")
                    else:
                        messages.info(
                            request,
                            f"{version.bundle.name} {version.version} was already stored (same digest).",
                        )
                    return redirect("bundles-version", name=version.bundle.name, version=version.version)
    status = 400 if failure else 200
    context = {"form": form, "errors": errors, "failure": failure}
    return render(request, "bundles/upload.html", context, status=status)


@require_POST
@console_page(ERROR_TEMPLATE)
def draft_start(request, name: str):
    """Start a draft copying the latest version's files (needs the push grant on the bundle)."""
    membership = require_capability(request.user, Capability.PUSH_VERSION)
    bundle = access_bundle(request.user, name)
    draft = draft_create(actor=request.user, bundle=bundle, can_push=push_rights(membership)["can_push"])
    base = f" from version {draft.base_version.version}" if draft.base_version else ""
    messages.success(
        request, f"New draft of {bundle.name}{base}. Bump `version` in bundle.yaml to publish it."
    )
    return redirect("bundles-draft", name=bundle.name, draft_id=draft.pk)


@require_http_methods(["GET", "POST"])
@console_page(ERROR_TEMPLATE)
def draft_page(request, name: str, draft_id: int):
    """Edit a draft: one textarea per file, add/remove files; Validate saves and checks, Publish pushes it."""
    membership = require_capability(request.user, Capability.PUSH_VERSION)
    draft = access_draft(request.user, name, draft_id)
    errors: list[dict] = []
    checked, failure = False, None
    form = DraftForm(files=draft.files)
    if request.method == "POST" and draft.published_version_id is not None:
        failure = DRAFT_PUBLISHED.format(version=draft.published_version.version)
    elif request.method == "POST":
        form = DraftForm(request.POST, files=draft.files)
        if not form.is_valid():
            failure = "The draft was not saved: fix the problems marked below."
        else:
            draft = draft_save(actor=request.user, draft=draft, files=form.cleaned_data["files"])
            form = DraftForm(files=draft.files)  # the saved files, the new-file slot emptied
            if request.POST.get("action") == "publish":
                try:
                    result = draft_publish(actor=request.user, draft=draft, **push_rights(membership))
                except DomainError as error:
                    errors, failure = error_rows(error.details), error.message
                else:
                    version = result.version
                    messages.success(request, f"Published {version.bundle.name} {version.version}.")
                    return redirect("bundles-version", name=version.bundle.name, version=version.version)
            else:
                errors, checked = error_rows(validate_files(draft.files).errors), True
    if draft.published_version_id is not None:
        form.make_read_only()
    groups = group_errors(errors, draft.files)
    entries = form.entries()
    for entry in entries:
        entry["errors"] = groups.get(entry["path"], [])
    context = {
        "draft": draft,
        "bundle": draft.bundle,
        "form": form,
        "entries": entries,
        "general_errors": groups.get(GENERAL, []),
        "error_count": len(errors),
        "checked": checked,
        "failure": failure,
        "published": draft.published_version,
    }
    return render(request, "bundles/draft.html", context, status=400 if failure else 200)


@require_POST
@console_page(ERROR_TEMPLATE)
def draft_remove(request, name: str, draft_id: int):
    """Discard a draft."""
    require_capability(request.user, Capability.PUSH_VERSION)
    draft = access_draft(request.user, name, draft_id)
    draft_discard(actor=request.user, draft=draft)
    messages.success(request, "Draft discarded.")
    return redirect(reverse("bundles-detail", kwargs={"name": name}))


def recent_versions_panel(request):
    """Dashboard panel: the versions pushed most recently in this tenant."""
    membership = getattr(request, "membership", None)
    if membership is None or not membership.can(Capability.VIEW):
        return None
    return "bundles/panels/recent_versions.html", {"versions": recent_versions()}
