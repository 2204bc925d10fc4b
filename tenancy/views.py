"""Console pages of tenancy: sign-in, the dashboard, memberships."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from core.dashboard import dashboard_panels
from core.errors import DomainError
from tenancy.console import FORBIDDEN_TEMPLATE, error_page
from tenancy.forms import MembershipForm, TenantLoginForm
from tenancy.middleware import bind_session_to_tenant
from tenancy.roles import ROLE_CAPABILITIES, Capability
from tenancy.selectors import current_tenant, members_of, require_capability
from tenancy.services import membership_set


class LoginView(auth_views.LoginView):
    """Sign in to this host; the session is bound to it."""

    template_name = "tenancy/login.html"
    authentication_form = TenantLoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        """Log in, then bind the session to this host's tenant."""
        response = super().form_valid(form)
        bind_session_to_tenant(self.request)
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
        if user is None:
            form.add_error("username", "No such user.")
        else:
            try:
                membership_set(actor=request.user, tenant=tenant, user=user, roles=form.cleaned_data["roles"])
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Roles of {user.username} saved.")
                return redirect("memberships")
    return render(
        request,
        "tenancy/memberships.html",
        {
            "members": members_of(tenant),
            "form": form,
            "can_manage": membership.can(Capability.MANAGE_MEMBERSHIPS),
        },
    )
