"""Platform admin: tenants, their hosts and memberships (public host only)."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_tenants.admin import TenantAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from governance.selectors import is_pending_change
from tenancy.models import Domain, Membership, SsoConfig, SsoIdentity, Tenant
from tenancy.services import membership_set, tenant_created_record
from tenancy.sso.services import FIELDS as SSO_FIELDS
from tenancy.sso.services import sso_config_change, sso_config_validate

ADMIN_CHANGE_PENDING = (
    "Not saved: this change loosens the tenant's control, so it became governance change #{id} of that "
    "tenant; one of its admins must approve it (console: Governance)."
)


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("schema_name", "name", "is_active", "created_at")
    search_fields = ("schema_name", "name")
    inlines = [DomainInline]

    def save_model(self, request, obj, form, change):
        """Save (creating the schema for a new tenant) and record the creation in the tenant's own log."""
        super().save_model(request, obj, form, change)
        if not change:
            tenant_created_record(actor=request.user, tenant=obj)

    def has_delete_permission(self, request, obj=None):
        """Tenants are deactivated, never deleted (their audit log must survive)."""
        return False


class GovernedSaveMixin:
    """Admin pages whose saves may become governance change requests of a tenant instead of saving.

    `save_model` sets `request.governance_change` to the pending request; the page then says where it went
    and records nothing as added or changed. `changelist` names the page to return to.
    """

    changelist = ""

    def log_addition(self, request, obj, message):
        """Log only what was saved (a change request saves nothing)."""
        if getattr(request, "governance_change", None) is None:
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        """Log only what was saved (a change request changed nothing)."""
        if getattr(request, "governance_change", None) is None:
            return super().log_change(request, obj, message)
        return None

    def response_add(self, request, obj, post_url_continue=None):
        """Say where a governed change went instead of claiming it was added."""
        return self._response_for_pending(request) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        """Say where a governed change went instead of claiming it was saved."""
        return self._response_for_pending(request) or super().response_change(request, obj)

    def _response_for_pending(self, request):
        """Return a redirect with the change request's number when the save became one, else None."""
        change = getattr(request, "governance_change", None)
        if change is None:
            return None
        self.message_user(request, ADMIN_CHANGE_PENDING.format(id=change.pk), level=messages.WARNING)
        return HttpResponseRedirect(reverse(self.changelist))


@admin.register(Membership)
class MembershipAdmin(GovernedSaveMixin, SimpleHistoryAdmin):
    list_display = ("user", "tenant", "roles", "is_active", "updated_at")
    list_filter = ("tenant", "is_active")
    search_fields = ("user__username", "tenant__schema_name")
    changelist = "admin:tenancy_membership_changelist"

    readonly_fields = ("groups",)

    def save_model(self, request, obj, form, change):
        """Save through the service, so the change is governed and audited in the tenant's log.

        A platform operator changing a tenant's memberships makes a governance change of that tenant like
        anyone else: a loosening becomes a change request that a tenant admin must approve, and nothing is
        saved here.
        """
        result = membership_set(actor=request.user, tenant=obj.tenant, user=obj.user, roles=obj.roles)
        if is_pending_change(result):
            request.governance_change = result  # the admin object is shared by every request
            return
        obj.pk = result.pk

    def has_delete_permission(self, request, obj=None):
        """Memberships are deactivated, never deleted."""
        return False


class SsoConfigForm(forms.ModelForm):
    """The fields an operator edits; the service validates them (egress, secret variable, mappings)."""

    issuer = forms.URLField(max_length=300, assume_scheme="https")

    class Meta:
        model = SsoConfig
        fields = ["tenant", *SSO_FIELDS]

    def changed_fields(self) -> list[str]:
        """Return the configuration fields this form changes (all of them for a new configuration)."""
        return [name for name in SSO_FIELDS if self.instance.pk is None or name in self.changed_data]

    def clean(self):
        """Validate the changes as sso_config_apply will, naming each field's error."""
        cleaned = super().clean()
        tenant = cleaned.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        if tenant is None:
            return cleaned
        changes = {name: cleaned[name] for name in self.changed_fields() if name in cleaned}
        try:
            sso_config_validate(tenant=tenant, changes=changes)
        except DomainError as error:
            for detail in error.details:
                field = detail.get("field")
                self.add_error(field if field in self.fields else None, detail.get("message"))
        return cleaned


@admin.register(SsoConfig)
class SsoConfigAdmin(GovernedSaveMixin, SimpleHistoryAdmin):
    """Single sign-on per tenant (platform operators). The client secret is named, never stored."""

    form = SsoConfigForm
    list_display = ("tenant", "issuer", "client_id", "enabled", "sso_only", "auto_provision", "updated_at")
    list_filter = ("enabled", "sso_only")
    changelist = "admin:tenancy_ssoconfig_changelist"

    def get_readonly_fields(self, request, obj=None):
        """The tenant of an existing configuration does not change."""
        return ("tenant",) if obj is not None else ()

    def save_form(self, request, form, change):
        """Keep the edited object unsaved; save_model applies it through the service."""
        return form.save(commit=False)

    def save_model(self, request, obj, form, change):
        """Change the configuration through sso_config_change: a loosening waits for a tenant admin."""
        changes = {name: getattr(obj, name) for name in form.changed_fields()}
        result = sso_config_change(actor=request.user, tenant=obj.tenant, changes=changes)
        if is_pending_change(result):
            request.governance_change = result
            return
        obj.pk = result.pk

    def has_delete_permission(self, request, obj=None):
        """Disable single sign-on (enabled off) instead: identities and the audit trail stay."""
        return False


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    """Which user each provider subject signs in as (read-only: created by sign-ins)."""

    list_display = ("tenant", "issuer", "subject", "user", "last_sign_in_at")
    list_filter = ("tenant",)
    search_fields = ("subject", "user__username")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
