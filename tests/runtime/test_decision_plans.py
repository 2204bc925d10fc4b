"""The decisions browser's pages are index ranges read in order: their plans, pinned.

The log holds a few thousand decisions of several bundles and statuses (analyzed), and the planner is told not
to sort, scan sequentially or build bitmaps: a plan without a Sort node means an index serves the filter and
the order; the assertions name that index.
"""

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import Record
from core.pagination import Keyset
from runtime.selectors import DecisionFilters, decisions

BUNDLES = ("claims-triage", "support-routing", "kyc-check", "fraud-screen", "returns", "routing")
STATUSES = ("allowed",) * 7 + ("denied", "error", "invalid_output")


@pytest.fixture
def planner_without_shortcuts(in_tenant_a):
    moment = timezone.now() - timedelta(days=7)
    Record.objects.bulk_create(
        Record(
            created_at=moment + timedelta(minutes=n),
            actor_kind="runtime_key",
            actor_id="1",
            actor_name="k",
            action="runtime.decision",
            data={"bundle": BUNDLES[n % len(BUNDLES)], "status": STATUSES[n % len(STATUSES)]},
            record_hash="0" * 64,
        )
        for n in range(6000)
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_record")
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        yield


def plan_of(queryset) -> dict:
    return json.loads(queryset.explain(format="json"))[0]["Plan"]


def nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def index_scans(plan: dict) -> list[str]:
    assert not [node for node in nodes(plan) if "Sort" in node["Node Type"]], plan
    return [node["Index Name"] for node in nodes(plan) if node["Node Type"] == "Index Scan"]


def test_the_newest_decisions_are_read_backwards_from_the_time_index(planner_without_shortcuts):
    plan = plan_of(decisions()[:51])
    assert index_scans(plan) == ["runtime_decision_time"]


def test_a_bundle_and_status_filter_is_one_range_of_its_index_in_order(planner_without_shortcuts):
    plan = plan_of(decisions(DecisionFilters(bundle="claims-triage", status="denied"))[:51])
    assert index_scans(plan) == ["runtime_decision_bundle_status"]
    # a bundle of six: reading the time index and skipping the others' rows is as good, and also in order
    plan = plan_of(decisions(DecisionFilters(bundle="claims-triage"))[:51])
    assert len(index_scans(plan)) == 1
    plan = plan_of(decisions(DecisionFilters(status="error"))[:51])
    assert index_scans(plan) == ["runtime_decision_status"]


def test_a_deep_cursor_page_starts_inside_the_index(planner_without_shortcuts):
    rows = decisions()
    after = Keyset.of(rows).after(rows, [timezone.now() - timedelta(days=3), 12345], backward=False)
    plan = plan_of(after[:51])
    assert index_scans(plan) == ["runtime_decision_time"]
    scan = next(node for node in nodes(plan) if node["Node Type"] == "Index Scan")
    assert "created_at <=" in scan["Index Cond"], scan
