"""Reads of the control plane for the runtime: keys, model endpoints, decisions, governance coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet, Subquery
from django.db.models.fields.json import KT
from django.utils import timezone

from audit.models import Record
from audit.selectors import record_is_intact
from promotions.models import GateRun, GateStatus
from runtime.exceptions import (
    DECISION_NOT_FOUND,
    ENDPOINT_NOT_FOUND,
    INVALID_DAYS,
    RUNTIME_KEY_NOT_FOUND,
    DecisionNotFound,
    InvalidDays,
    ModelEndpointNotFound,
    RuntimeKeyNotFound,
)
from runtime.grants import DECISION_ACTION
from runtime.models import ModelEndpoint, RuntimeKey

CURRENT_ENVIRONMENT = "current"
DEFAULT_COVERAGE_DAYS = 7
MAX_COVERAGE_DAYS = 366
VERIFY_CHUNK = 2000


# --- keys and endpoints ------------------------------------------------------------------------------------


def runtime_keys() -> QuerySet[RuntimeKey]:
    """Return the tenant's runtime keys, newest first, with their environments."""
    return RuntimeKey.objects.select_related("environment", "created_by", "revoked_by").order_by(
        "-created_at", "-id"
    )


def access_runtime_key(actor, key_id) -> RuntimeKey:
    """Return runtime key `key_id` of this tenant, or raise RuntimeKeyNotFound."""
    try:
        return runtime_keys().get(pk=int(key_id))
    except (RuntimeKey.DoesNotExist, TypeError, ValueError):
        raise RuntimeKeyNotFound(RUNTIME_KEY_NOT_FOUND.format(id=key_id)) from None


def model_endpoints() -> QuerySet[ModelEndpoint]:
    """Return the tenant's model endpoints by name."""
    return ModelEndpoint.objects.order_by("name")


def access_model_endpoint(actor, name: str) -> ModelEndpoint:
    """Return model endpoint `name`, or raise ModelEndpointNotFound."""
    endpoint = ModelEndpoint.objects.filter(name=name).first()
    if endpoint is None:
        raise ModelEndpointNotFound(ENDPOINT_NOT_FOUND.format(name=name))
    return endpoint


# --- decisions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionFilters:
    """What the decisions browser narrows by; empty values do not filter."""

    bundle: str = ""
    version: str = ""
    status: str = ""
    policy: str = ""
    since: datetime | None = None
    until: datetime | None = None


def decisions(filters: DecisionFilters = DecisionFilters()) -> QuerySet[Record]:
    """Return the tenant's runtime decisions, newest first, narrowed by `filters`."""
    queryset = Record.objects.filter(action=DECISION_ACTION).order_by("-created_at", "-id")
    if filters.bundle:
        queryset = queryset.filter(data__bundle=filters.bundle)
    if filters.version:
        queryset = queryset.filter(data__version=filters.version)
    if filters.status:
        queryset = queryset.filter(data__status=filters.status)
    if filters.policy:
        queryset = queryset.filter(data__policies__contains=[{"name": filters.policy, "fired": True}])
    if filters.since:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset


def access_decision(actor, decision_id) -> Record:
    """Return decision `decision_id` of this tenant, or raise DecisionNotFound."""
    try:
        return Record.objects.get(pk=int(decision_id), action=DECISION_ACTION)
    except (Record.DoesNotExist, TypeError, ValueError):
        raise DecisionNotFound(DECISION_NOT_FOUND.format(id=decision_id)) from None


def decision_bundles() -> list[str]:
    """Return the names of the bundles that have decisions (for the browser's filter)."""
    return list(
        Record.objects.filter(action=DECISION_ACTION)
        .order_by()
        .values_list("data__bundle", flat=True)
        .distinct()
    )


# --- governance coverage -----------------------------------------------------------------------------------

# One pass over the window's decisions: per bundle (and overall, the ROLLUP row), how many executions ran,
# how many through `current`, and how many of those ran a digest whose gates passed.
COVERAGE_SQL = """
WITH passed AS (
    SELECT DISTINCT digest FROM promotions_gaterun WHERE status = %(passed)s
), decision AS (
    SELECT data ->> 'bundle' AS bundle,
           (data ->> 'environment') = %(current)s AS through_current,
           (data ->> 'digest') IN (SELECT digest FROM passed) AS gated
    FROM audit_record
    WHERE action = %(action)s AND created_at >= %(since)s
)
SELECT bundle,
       count(*) AS executions,
       count(*) FILTER (WHERE through_current) AS through_current,
       count(*) FILTER (WHERE through_current AND gated) AS gated
FROM decision
GROUP BY ROLLUP (bundle)
ORDER BY bundle NULLS FIRST
"""


@dataclass
class Coverage:
    """Governance coverage of one bundle (or of all, `bundle` None) over the window."""

    bundle: str | None
    executions: int = 0
    through_current: int = 0
    gated: int = 0
    verified: int = 0

    @property
    def ratio(self) -> float | None:
        """Return the share of executions that were governed end to end (None without executions)."""
        return self.verified / self.executions if self.executions else None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "bundle": self.bundle,
            "executions": self.executions,
            "through_current": self.through_current,
            "with_passed_gates": self.gated,
            "with_verifying_record": self.verified,
            "ratio": round(self.ratio, 6) if self.ratio is not None else None,
        }


def checked_days(value: Any) -> int:
    """Return the coverage window in days; raise InvalidDays."""
    if value in (None, ""):
        return DEFAULT_COVERAGE_DAYS
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise InvalidDays(INVALID_DAYS.format(limit=MAX_COVERAGE_DAYS)) from None
    if not 1 <= days <= MAX_COVERAGE_DAYS:
        raise InvalidDays(INVALID_DAYS.format(limit=MAX_COVERAGE_DAYS))
    return days


def governance_coverage(days: int = DEFAULT_COVERAGE_DAYS, now: datetime | None = None) -> dict[str, Any]:
    """Return governance coverage (DESIGN §1) over the last `days`: overall and per bundle.

    An execution counts as governed when it ran a version live in `current`, whose digest passed its gates,
    and whose decision record verifies (its stored hash matches its content). Counting happens in one
    aggregate query; only the record hashes of the governed candidates are recomputed here, because the
    canonical form they cover (RFC 8785) cannot be computed in SQL.
    """
    since = (now or timezone.now()) - timedelta(days=days)
    with connection.cursor() as cursor:
        cursor.execute(
            COVERAGE_SQL,
            {
                "passed": GateStatus.PASSED,
                "current": CURRENT_ENVIRONMENT,
                "action": DECISION_ACTION,
                "since": since,
            },
        )
        rows = cursor.fetchall()
    overall = Coverage(None)
    per_bundle: dict[str, Coverage] = {}
    for bundle, executions, through_current, gated in rows:
        coverage = Coverage(bundle, executions, through_current, gated)
        if bundle is None:
            overall = coverage
        else:
            per_bundle[bundle] = coverage
    if overall.gated:
        for bundle, intact in verified_counts(since).items():
            per_bundle[bundle].verified = intact
            overall.verified += intact
    return {
        "days": days,
        "since": since.isoformat(),
        "overall": overall.as_dict(),
        "bundles": [per_bundle[name].as_dict() for name in sorted(per_bundle)],
    }


def verified_counts(since: datetime) -> dict[str, int]:
    """Return, per bundle, how many governed candidate decisions since `since` have an intact record."""
    passed_digests = GateRun.objects.filter(status=GateStatus.PASSED).values("digest")
    candidates = (
        Record.objects.filter(action=DECISION_ACTION, created_at__gte=since)
        .annotate(environment=KT("data__environment"), digest=KT("data__digest"))
        .filter(environment=CURRENT_ENVIRONMENT, digest__in=Subquery(passed_digests))
        .order_by("id")
    )
    counts: dict[str, int] = {}
    for entry in candidates.iterator(chunk_size=VERIFY_CHUNK):
        if record_is_intact(entry):
            bundle = entry.data.get("bundle")
            counts[bundle] = counts.get(bundle, 0) + 1
    return counts
