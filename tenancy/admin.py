"""Platform admin: tenants, their hosts and memberships (public host only)."""

from django import forms
from django.contrib import admin
from django_tenants.admin import TenantAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from tenancy.models import Domain, Membership, SsoConfig, SsoIdentity, Tenant
from tenancy.services import membership_set, tenant_created_record
from tenancy.sso.services import FIELDS as SSO_FIELDS
from tenancy.sso.services import sso_config_apply, sso_config_validate


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


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ("user", "tenant", "roles", "is_active", "updated_at")
    list_filter = ("tenant", "is_active")
    search_fields = ("user__username", "tenant__schema_name")

    def save_model(self, request, obj, form, change):
        """Save through the service, so the change is audited in the tenant's log."""
        saved = membership_set(actor=request.user, tenant=obj.tenant, user=obj.user, roles=obj.roles)
        obj.pk = saved.pk

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
class SsoConfigAdmin(SimpleHistoryAdmin):
    """Single sign-on per tenant (platform operators). The client secret is named, never stored."""

    form = SsoConfigForm
    list_display = ("tenant", "issuer", "client_id", "enabled", "sso_only", "auto_provision", "updated_at")
    list_filter = ("enabled", "sso_only")

    def get_readonly_fields(self, request, obj=None):
        """The tenant of an existing configuration does not change."""
        return ("tenant",) if obj is not None else ()

    def save_form(self, request, form, change):
        """Keep the edited object unsaved; save_model applies it through the service."""
        return form.save(commit=False)

    def save_model(self, request, obj, form, change):
        """Apply the changed fields through sso_config_apply (audited in the tenant's log)."""
        changes = {name: getattr(obj, name) for name in form.changed_fields()}
        obj.pk = sso_config_apply(actor=request.user, tenant=obj.tenant, changes=changes).pk

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
