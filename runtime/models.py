"""Runtime keys (who may execute, where) and model endpoints (which model servers pipelines may call).

The runtime process reads these tables as the restricted role `contractor_runtime` (SELECT only); every write
happens in the control plane through runtime.services.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from simple_history.models import HistoricalRecords

from audit.models import ActorKind
from promotions.models import Environment

KEY_PREFIX_LENGTH = 8


class RuntimeKey(models.Model):
    """A credential of the runtime API, scoped to one environment and optionally to some bundles.

    Only the SHA-256 of the secret is stored; the full key (`ck_<prefix>_<secret>`) is shown once at creation.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=KEY_PREFIX_LENGTH, unique=True, help_text="Public part of the key.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 (hex) of the secret part of the key.")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="runtime_keys")
    bundles = ArrayField(
        models.SlugField(max_length=63),
        default=list,
        blank=True,
        help_text="Bundles the key may execute; empty: every bundle live in its environment.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} (ck_{self.prefix}_…)"

    @property
    def audit_actor(self) -> tuple[str, str, str]:
        """Return how this key appears as the actor of an audit record."""
        return ActorKind.RUNTIME_KEY, str(self.pk), self.name

    @property
    def is_revoked(self) -> bool:
        """Return whether the key was revoked."""
        return self.revoked_at is not None

    @property
    def display(self) -> str:
        """Return the key as it may be shown after creation: its prefix only."""
        return f"ck_{self.prefix}_…"


class ModelEndpoint(models.Model):
    """An OpenAI-compatible chat-completions server that pipelines name in `model.endpoint`.

    `api_key_env` is the NAME of an environment variable of the runtime process holding the API key; the key
    itself is never stored.
    """

    name = models.SlugField(max_length=63, unique=True)
    base_url = models.URLField(max_length=500, help_text="API root including its version, e.g. …/v1.")
    allowed_models = ArrayField(models.CharField(max_length=200), default=list)
    api_key_env = models.CharField(max_length=100, blank=True)
    timeout_seconds = models.FloatField(default=10.0)  # at most MODEL_TIMEOUT_CAP (services)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(history_user_id_field=models.IntegerField(null=True))

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
