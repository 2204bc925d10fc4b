"""Platform admin: tenants, their hosts and memberships (public host only)."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_tenants.admin import TenantAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from governance.selectors import is_pending_change
from tenancy.models import Domain, Membership, Tenant
from tenancy.services import membership_set, tenant_created_record

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


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ("user", "tenant", "roles", "is_active", "updated_at")
    list_filter = ("tenant", "is_active")
    search_fields = ("user__username", "tenant__schema_name")

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

    def log_addition(self, request, obj, message):
        """Log only what was saved (a change request saves no membership)."""
        if obj.pk is not None:
            return super().log_addition(request, obj, message)
        return None

    def log_change(self, request, obj, message):
        """Log only what was saved (a change request changed no membership)."""
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
        return HttpResponseRedirect(reverse("admin:tenancy_membership_changelist"))

    def has_delete_permission(self, request, obj=None):
        """Memberships are deactivated, never deleted."""
        return False
