"""Tenants, their host names, and the membership of global users in them."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin
from simple_history.models import HistoricalRecords

from tenancy.roles import Role, capabilities_of


class Tenant(TenantMixin):
    """A customer organisation: one PostgreSQL schema, named after its slug."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=True)

    auto_create_schema = True

    def __str__(self):
        return self.name


class Domain(DomainMixin):
    """A host name routed to a tenant (acme.localhost)."""


class Membership(models.Model):
    """A global user's roles in one tenant; without it the user can do nothing there."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="memberships")
    roles = ArrayField(models.CharField(max_length=20, choices=Role.choices), default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")
        ]

    def __str__(self):
        return f"{self.user} in {self.tenant}: {', '.join(self.roles)}"

    @property
    def capabilities(self) -> frozenset[str]:
        """Return what these roles allow."""
        return capabilities_of(self.roles) if self.is_active else frozenset()

    def can(self, capability: str) -> bool:
        """Return whether these roles include `capability`."""
        return capability in self.capabilities
