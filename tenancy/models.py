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
    groups = ArrayField(models.CharField(max_length=64), default=list, blank=True)
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


TOKEN_PREFIX_LENGTH = 8


class ApiToken(models.Model):
    """A member's personal API token for one tenant: `ct_<prefix>_<secret>`, shown once, stored hashed.

    Only the SHA-256 of the secret is kept. Tokens migrated from the former DRF tokens (40 hex digits, no
    prefix) keep `prefix` empty and are found by the hash of the whole key.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, unique=True, null=True, blank=True)
    secret_hash = models.CharField(max_length=64, db_index=True, help_text="SHA-256 (hex) of the secret.")
    scopes = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    revoked_reason = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.display})"

    @property
    def display(self) -> str:
        """Return the token as it may be shown after creation: its prefix only."""
        return f"ct_{self.prefix}_…" if self.prefix else "(migrated token)"

    @property
    def is_legacy(self) -> bool:
        """Return whether this token was migrated from a DRF token (no prefix)."""
        return not self.prefix


class SignInFailure(models.Model):
    """One failed sign-in (console, token endpoint or re-authentication), counted for the lockout."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=45, db_index=True)
    tenant = models.CharField(max_length=63, blank=True, default="", help_text="Schema name; empty: public.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"{self.username} from {self.address} at {self.created_at}"


class SignInLock(models.Model):
    """A username or a source address that may not sign in until `locked_until`."""

    class Kind(models.TextChoices):
        USERNAME = "username", "Username"
        ADDRESS = "address", "Source address"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=150)
    locked_until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="signinlock_unique_kind_key")]

    def __str__(self):
        return f"{self.kind} {self.key} until {self.locked_until}"
