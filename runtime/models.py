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


class DecisionCounts(models.Model):
    """The group of decisions a rollup row counts, and its counts (hourly and daily rows alike)."""

    GROUP = ("bundle", "version", "digest", "pipeline", "environment", "status")

    bundle = models.CharField(max_length=63)
    version = models.CharField(max_length=64)
    digest = models.CharField(max_length=71)
    pipeline = models.CharField(max_length=63)
    environment = models.CharField(max_length=40)
    status = models.CharField(max_length=20)
    executions = models.BigIntegerField(default=0)
    verified = models.BigIntegerField(default=0)
    latency_ms_total = models.FloatField(default=0.0)

    class Meta:
        abstract = True


class DecisionRollup(DecisionCounts):
    """How many decisions one hour saw for one bundle version, pipeline, environment and status.

    Maintained incrementally by runtime.rollups from the decision records (never edited by hand): governance
    coverage, the dashboard and the decisions browser's filter choices read these rows instead of scanning
    the log. `verified` counts the records whose stored hash matched their content when they were rolled up.
    """

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", *DecisionCounts.GROUP], name="runtime_decision_rollup_group"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="runtime_rollup_hour")]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H}h {self.bundle}@{self.version} {self.status}: {self.executions}"


class DecisionDailyRollup(DecisionCounts):
    """The same counts as DecisionRollup, per UTC day: long windows read a row a day instead of 24."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", *DecisionCounts.GROUP], name="runtime_decision_daily_group"
            )
        ]
        indexes = [models.Index(fields=["day"], name="runtime_daily_rollup_day")]

    def __str__(self):
        return f"{self.day} {self.bundle}@{self.version} {self.status}: {self.executions}"


class DecisionBundle(models.Model):
    """A bundle that has decisions: how many, the hour of its latest (the browser's filter choices)."""

    bundle = models.CharField(max_length=63, primary_key=True)
    executions = models.BigIntegerField(default=0)
    last_hour = models.DateTimeField()

    def __str__(self):
        return self.bundle


class DecisionRollupState(models.Model):
    """How far the rollups reach: every decision with an id up to `rolled_up_to` is counted in them.

    `horizon_id` / `horizon_xid` / `horizon_at`: the id sequence's value, the snapshot's xmax and the time
    read by the previous run; once every transaction that could hold an id up to `horizon_id` has ended,
    the next run may roll up to it (ids are handed out before commit, so a lower id can commit later).
    """

    rolled_up_to = models.BigIntegerField(default=0)
    horizon_id = models.BigIntegerField(null=True)
    horizon_xid = models.CharField(max_length=24, blank=True, default="")
    horizon_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"decisions rolled up to #{self.rolled_up_to}"
