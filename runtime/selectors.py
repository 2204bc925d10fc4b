"""Reads of the control plane for the runtime: keys, model endpoints, decisions, governance coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import Record
from promotions.models import GateStatus
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
from runtime.rollups import day_of, hour_of

CURRENT_ENVIRONMENT = "current"
DEFAULT_COVERAGE_DAYS = 7
MAX_COVERAGE_DAYS = 366


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
    """Return the names of the bundles that have decisions (the browser's filter), from the rollups."""
    with connection.cursor() as cursor:
        cursor.execute(DECISION_BUNDLES_SQL, {"action": DECISION_ACTION})
        return [row[0] for row in cursor.fetchall() if row[0]]


# --- governance coverage -----------------------------------------------------------------------------------

# Per bundle (and overall, the ROLLUP row): how many executions ran, how many through `current`, how many of
# those ran a digest whose gates passed, and how many of those have a verified record. The window's decisions
# come from the rollups (runtime/rollups.py: hourly for the first and the current day, daily in between) plus
# the few decisions not rolled up yet (ids above the rollups' reach, read through the primary key); those are
# counted as `verification_pending`, not verified, until the rollup checks their hashes.
COVERAGE_SQL = """
WITH passed AS (
    SELECT DISTINCT digest FROM promotions_gaterun WHERE status = %(passed)s
), reach AS (
    SELECT coalesce((SELECT rolled_up_to FROM runtime_decisionrollupstate WHERE id = 1), 0) AS rolled_up_to
), decision AS (
    SELECT bundle, executions, environment = %(current)s AS through_current,
           digest IN (SELECT digest FROM passed) AS gated, verified, 0 AS pending
    FROM runtime_decisionrollup
    WHERE hour >= %(since)s AND (hour < %(first_full_day)s OR hour >= %(today)s)
    UNION ALL
    SELECT bundle, executions, environment = %(current)s,
           digest IN (SELECT digest FROM passed), verified, 0
    FROM runtime_decisiondailyrollup
    WHERE day >= %(first_full_day)s::date AND day < %(today)s::date
    UNION ALL
    SELECT data ->> 'bundle', 1, (data ->> 'environment') = %(current)s,
           (data ->> 'digest') IN (SELECT digest FROM passed), 0, 1
    FROM audit_record
    WHERE id > (SELECT rolled_up_to FROM reach) AND action = %(action)s AND created_at >= %(since)s
)
SELECT bundle,
       coalesce(sum(executions), 0)::bigint AS executions,
       coalesce(sum(executions) FILTER (WHERE through_current), 0)::bigint AS through_current,
       coalesce(sum(executions) FILTER (WHERE through_current AND gated), 0)::bigint AS gated,
       coalesce(sum(verified) FILTER (WHERE through_current AND gated), 0)::bigint AS verified,
       coalesce(sum(pending) FILTER (WHERE through_current AND gated), 0)::bigint AS pending
FROM decision
GROUP BY ROLLUP (bundle)
ORDER BY bundle NULLS FIRST
"""
DECISION_BUNDLES_SQL = """
SELECT bundle FROM runtime_decisionbundle
UNION
SELECT data ->> 'bundle' FROM audit_record
WHERE id > coalesce((SELECT rolled_up_to FROM runtime_decisionrollupstate WHERE id = 1), 0)
  AND action = %(action)s AND data ? 'bundle'
ORDER BY 1
"""


@dataclass
class Coverage:
    """Governance coverage of one bundle (or of all, `bundle` None) over the window."""

    bundle: str | None
    executions: int = 0
    through_current: int = 0
    gated: int = 0
    verified: int = 0
    pending: int = 0

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
            "verification_pending": self.pending,
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
    and whose decision record verified (its stored hash matched its content when it was rolled up). The window
    starts at the top of the hour `days` ago (rollups are hourly). One query over the window's rollup rows
    and the decisions not rolled up yet; its cost does not grow with the size of the log.
    """
    now = now or timezone.now()
    since = hour_of(now - timedelta(days=days))
    first_full_day = day_of(since) + (timedelta(days=1) if since != day_of(since) else timedelta())
    with connection.cursor() as cursor:
        cursor.execute(
            COVERAGE_SQL,
            {
                "passed": GateStatus.PASSED,
                "current": CURRENT_ENVIRONMENT,
                "action": DECISION_ACTION,
                "since": since,
                "first_full_day": first_full_day,
                "today": day_of(now),
            },
        )
        rows = cursor.fetchall()
    overall = Coverage(None)
    per_bundle: dict[str, Coverage] = {}
    for bundle, executions, through_current, gated, verified, pending in rows:
        coverage = Coverage(bundle, executions, through_current, gated, verified, pending)
        if bundle is None:
            overall = coverage
        else:
            per_bundle[bundle] = coverage
    return {
        "days": days,
        "since": since.isoformat(),
        "overall": overall.as_dict(),
        "bundles": [per_bundle[name].as_dict() for name in sorted(per_bundle)],
    }
