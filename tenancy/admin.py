"""Platform admin: tenants, their hosts and memberships (public host only)."""

from django.contrib import admin
from django_tenants.admin import TenantAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from tenancy.models import Domain, Membership, Tenant
from tenancy.services import membership_set, tenant_created_record


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
