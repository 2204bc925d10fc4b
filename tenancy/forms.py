"""Console forms of tenancy."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from tenancy.exceptions import NOT_A_MEMBER
from tenancy.roles import Role
from tenancy.selectors import current_tenant, membership_of


class TenantLoginForm(AuthenticationForm):
    """Log in; on a tenant host only members may, on the public host only platform staff."""

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
