"""Console forms of tenancy."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm

from tenancy.exceptions import NOT_A_MEMBER, SignInLocked
from tenancy.roles import Role, Scope
from tenancy.selectors import current_tenant, membership_of
from tenancy.signin import authenticate_or_lock
from tenancy.sso.exceptions import SSO_ONLY
from tenancy.sso.selectors import sso_only_for


def may_use_password(username: str, tenant) -> bool:
    """Return whether `username` may sign in with a password on `tenant`'s host.

    Where the tenant is "SSO only", only platform staff may (break-glass). Decided before the password is
    checked, so a refusal tells nothing about the password.
    """
    if not sso_only_for(tenant):
        return True
    return get_user_model().objects.filter(username=username, is_active=True, is_staff=True).exists()


class TenantLoginForm(AuthenticationForm):
    """Log in; on a tenant host only members may, on the public host only platform staff.

    The password is checked under the sign-in lockout; while locked, `locked` holds the SignInLocked error.
    """

    locked: SignInLocked | None = None

    def clean(self):
        """Check the password (counting failures towards the lockout), then whether the user may sign in."""
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            if not may_use_password(username, current_tenant()):
                raise forms.ValidationError(SSO_ONLY, code="sso_only")
            try:
                self.user_cache = authenticate_or_lock(self.request, username=username, password=password)
            except SignInLocked as error:
                self.locked = error
                raise forms.ValidationError(error.message, code=error.code) from error
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user):
        """Refuse users who cannot act on this host."""
        super().confirm_login_allowed(user)
        tenant = current_tenant()
        if tenant is None:
            if not user.is_staff:
                raise forms.ValidationError("Only platform administrators sign in here.", code="not_staff")
        elif membership_of(user, tenant) is None:
            raise forms.ValidationError(NOT_A_MEMBER, code="not_a_member")


class MembershipForm(forms.Form):
    """Set a user's roles in the tenant."""

    username = forms.CharField(max_length=150)
    roles = forms.MultipleChoiceField(
        choices=Role.choices, widget=forms.CheckboxSelectMultiple, required=False
    )


class MembershipGroupsForm(forms.Form):
    """Set a member's groups (comma-separated; the service checks the names)."""

    username = forms.CharField(max_length=150)
    groups = forms.CharField(max_length=1000, required=False, help_text="Comma-separated; empty: none.")

    def clean_groups(self) -> list[str]:
        """Return the group names typed, without blanks."""
        return [name.strip() for name in self.cleaned_data["groups"].split(",") if name.strip()]


class ApiTokenForm(forms.Form):
    """Create a personal API token (the service validates name, scopes and lifetime)."""

    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: the scopes your roles use.",
    )
    expires_in_days = forms.IntegerField(min_value=1, required=False, help_text="Default 90 days.")
