"""Console pages of tenancy: sign-in, the dashboard, memberships, personal API tokens."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.dashboard import dashboard_panels
from core.errors import DomainError
from governance.selectors import CHANGE_PENDING_MESSAGE, is_pending_change
from tenancy.console import FORBIDDEN_TEMPLATE, console_page, error_page, fresh_authentication_required
from tenancy.exceptions import MEMBER_NOT_FOUND, MemberNotFound
from tenancy.forms import ApiTokenForm, MembershipForm, MembershipGroupsForm, TenantLoginForm
from tenancy.middleware import bind_session_to_tenant
from tenancy.roles import ROLE_CAPABILITIES, Capability
from tenancy.selectors import current_tenant, members_of, require_capability
from tenancy.services import membership_groups_set, membership_set
from tenancy.signin import client_address, mark_authenticated
from tenancy.sso.selectors import sso_config_of, sso_only_for
from tenancy.sso.services import break_glass_record
from tenancy.tokens import access_token, api_token_create, api_token_revoke, tokens_visible_to

NEW_TOKEN_SESSION_KEY = "contractor_new_token"
TOKEN_CREATED_MESSAGE = "Token {name!r} created. Copy it now: it is shown only once."
TOKEN_REVOKED_MESSAGE = "Token {name!r} revoked."


class LoginView(auth_views.LoginView):
    """Sign in to this host; the session is bound to it."""

    template_name = "tenancy/login.html"
    authentication_form = TenantLoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        """Show the form's errors; while the username or the address is locked, with 429 and Retry-After."""
        response = super().form_invalid(form)
        if form.locked is not None:
            response.status_code = form.locked.status
            response["Retry-After"] = str(form.locked.retry_after)
        return response

    def get_context_data(self, **kwargs):
        """Add the tenant's single sign-on (when enabled) for the "Sign in with single sign-on" button."""
        context = super().get_context_data(**kwargs)
        config = sso_config_of(current_tenant())
        context["sso"] = config if config is not None and config.enabled else None
        return context

    def form_valid(self, form):
        """Log in, then bind the session to this host's tenant and note the time of the sign-in.

        A staff member's password sign-in on an "SSO only" tenant is the break-glass: it is audited.
        """
        response = super().form_valid(form)
        bind_session_to_tenant(self.request)
        mark_authenticated(self.request.session)
        tenant = current_tenant()
        if sso_only_for(tenant):
            break_glass_record(tenant=tenant, user=form.get_user(), address=client_address(self.request))
        return response

    def get_default_redirect_url(self):
        """Send platform staff to the admin, members to the dashboard."""
        if current_tenant() is None:
            return "/admin/"
        return super().get_default_redirect_url()


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only)."""


@login_required
def dashboard(request):
    """Show the tenant, the member's roles and the panels the apps contribute."""
    try:
        membership = require_capability(request.user, Capability.VIEW)
    except DomainError as error:
        return error_page(request, error, FORBIDDEN_TEMPLATE)
    return render(
        request,
        "tenancy/dashboard.html",
        {
            "panels": dashboard_panels(request),
            "role_capabilities": {r: sorted(ROLE_CAPABILITIES[r]) for r in membership.roles},
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@fresh_authentication_required
def memberships(request):
    """List members; admins set roles."""
    tenant = current_tenant()
    try:
        membership = require_capability(request.user, Capability.VIEW)
        if request.method == "POST":
            require_capability(request.user, Capability.MANAGE_MEMBERSHIPS)
    except DomainError as error:  # a refusal is a 403 page, not a server error
        return error_page(request, error, FORBIDDEN_TEMPLATE)
    form = MembershipForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
        if user is None or not user.is_active:
            form.add_error("username", MEMBER_NOT_FOUND.format(username=form.cleaned_data["username"]))
        else:
            try:
                result = membership_set(
                    actor=request.user, tenant=tenant, user=user, roles=form.cleaned_data["roles"]
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                if is_pending_change(result):
                    messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=result.pk))
                else:
                    messages.success(request, f"Roles of {user.username} saved.")
                return redirect("memberships")
    return render(
        request,
        "tenancy/memberships.html",
        {
            "members": members_of(tenant),
            "form": form,
            "groups_form": MembershipGroupsForm(),
            "can_manage": membership.can(Capability.MANAGE_MEMBERSHIPS),
        },
    )


GROUPS_FORM_INVALID = "Give a member's username and their groups, comma-separated."


@login_required
@require_POST
@fresh_authentication_required
def membership_groups(request):
    """Set a member's groups (admins); adding a group waits for another admin's approval."""
    tenant = current_tenant()
    try:
        require_capability(request.user, Capability.MANAGE_MEMBERSHIPS)
        form = MembershipGroupsForm(request.POST)
        if not form.is_valid():
            messages.error(request, GROUPS_FORM_INVALID)
            return redirect("memberships")
        username = form.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise MemberNotFound(MEMBER_NOT_FOUND.format(username=username))
        result = membership_groups_set(
            actor=request.user, tenant=tenant, user=user, groups=form.cleaned_data["groups"]
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("memberships")
    if is_pending_change(result):
        messages.warning(request, CHANGE_PENDING_MESSAGE.format(id=result.pk))
    else:
        messages.success(request, f"Groups of {username} saved.")
    return redirect("memberships")


def token_cipher() -> Fernet:
    """Return the cipher that keeps a new token's secret unreadable in the session until it is shown."""
    key = hashlib.sha256(b"contractor.new-api-token:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


@console_page(FORBIDDEN_TEMPLATE)
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    """List the member's API tokens; create one (its secret is shown once, on the page redirected to)."""
    tenant = current_tenant()
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(
                actor=request.user,
                tenant=tenant,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"] or None,
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
            for detail in error.details:
                form.add_error(None, f"{detail.get('field')}: {detail.get('message')}")
        else:
            sealed = token_cipher().encrypt(created.secret.encode()).decode()
            request.session[NEW_TOKEN_SESSION_KEY] = {"id": created.token.pk, "sealed": sealed}
            messages.success(request, TOKEN_CREATED_MESSAGE.format(name=created.token.name))
            return redirect("tokens-created")
    status = 400 if form.errors else 200
    context = {"tokens": tokens_visible_to(request.user, tenant), "form": form, "now": timezone.now()}
    return render(request, "tenancy/tokens.html", context, status=status)


@never_cache
@console_page(FORBIDDEN_TEMPLATE)
def api_token_created(request):
    """Show a just-created token's secret once (a reload shows nothing: it left the session)."""
    new = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if not new:
        return redirect("tokens")
    try:
        secret = token_cipher().decrypt(new["sealed"].encode()).decode()
    except (InvalidToken, KeyError, TypeError):
        return redirect("tokens")
    token = access_token(request.user, current_tenant(), new["id"])
    return render(request, "tenancy/token_created.html", {"token": token, "secret": secret})


@console_page(FORBIDDEN_TEMPLATE)
@require_POST
def api_token_revoke_view(request, token_id: int):
    """Revoke one of the member's tokens."""
    token = access_token(request.user, current_tenant(), token_id)
    try:
        api_token_revoke(actor=request.user, token=token)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, TOKEN_REVOKED_MESSAGE.format(name=token.name))
    return redirect("tokens")
