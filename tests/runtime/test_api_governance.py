"""Governance coverage (DESIGN §1): executions through current, with passed gates and a verifying record."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.hashing import record_hash
from audit.models import Record
from audit.services import canonical_form, record
from runtime.access import KeyGrant
from runtime.exceptions import INVALID_DAYS
from runtime.rollups import SETTLE_SECONDS, decision_rollup_advance, rolled_up_to
from runtime.selectors import governance_coverage
from tests.conftest import token_client
from tests.promotions.promotion_factories import failing_files, push_version, run_gates

URL = "/api/v1/metrics/governance/"
CLOCK = [timezone.now()]
KEY = KeyGrant(7, "ci", "x", 1, frozenset(), False)


def decide(bundle: str, digest: str, environment: str, *, days_ago: int = 0, tamper: bool = False) -> Record:
    """Write a runtime decision record as the runtime would (optionally backdated or with a broken hash)."""
    data = {"bundle": bundle, "digest": digest, "environment": environment, "status": "allowed"}
    if not days_ago and not tamper:
        with transaction.atomic():
            return record(actor=KEY, action="runtime.decision", data=data)
    entry = Record(
        created_at=timezone.now() - timedelta(days=days_ago),
        actor_kind="runtime_key",
        actor_id="7",
        actor_name="ci",
        action="runtime.decision",
        data=data,
    )
    from django.db import connection

    entry.record_hash = (
        "0" * 64 if tamper else record_hash(canonical_form(entry, tenant=connection.schema_name))
    )
    entry.save(force_insert=True)
    return entry


def roll_up() -> None:
    """Roll up every decision written so far, as beat runs do (each stated SETTLE_SECONDS after the last)."""
    newest = Record.objects.order_by("-id").values_list("id", flat=True).first() or 0
    CLOCK[0] = max(CLOCK[0], timezone.now())
    while rolled_up_to() < newest:
        CLOCK[0] += timedelta(seconds=SETTLE_SECONDS + 1)
        decision_rollup_advance(now=CLOCK[0])


@pytest.fixture
def digests(in_tenant_a, tenant_a, make_member):
    """Return (passed, failed): a digest whose gates passed and one whose gates failed."""
    author = make_member(tenant_a, "gov-author", ["author"])
    passed = push_version(author, "1.2.0")
    failed = push_version(author, "1.3.0", failing_files())
    assert run_gates(author, passed).status == "passed"
    assert run_gates(author, failed).status == "failed"
    return passed.digest, failed.digest


def test_coverage_counts_only_current_gated_and_verifying_executions(digests):
    passed, failed = digests
    for _ in range(3):
        decide("claims-triage", passed, "current")
    decide("claims-triage", passed, "staging")
    decide("claims-triage", failed, "current")
    decide("claims-triage", passed, "current", tamper=True)
    decide("support-routing", "sha256:unknown", "current")
    decide("claims-triage", passed, "current", days_ago=10)
    roll_up()
    coverage = governance_coverage(days=7)
    assert coverage["overall"] == {
        "bundle": None,
        "executions": 7,
        "through_current": 6,
        "with_passed_gates": 4,
        "with_verifying_record": 3,
        "verification_pending": 0,
        "ratio": round(3 / 7, 6),
    }
    assert coverage["bundles"] == [
        {
            "bundle": "claims-triage",
            "executions": 6,
            "through_current": 5,
            "with_passed_gates": 4,
            "with_verifying_record": 3,
            "verification_pending": 0,
            "ratio": 0.5,
        },
        {
            "bundle": "support-routing",
            "executions": 1,
            "through_current": 1,
            "with_passed_gates": 0,
            "with_verifying_record": 0,
            "verification_pending": 0,
            "ratio": 0.0,
        },
    ]
    assert governance_coverage(days=30)["overall"]["executions"] == 8


def test_coverage_is_one_query_and_counts_decisions_not_rolled_up_yet_as_pending(digests):
    passed, _ = digests
    for _ in range(20):
        decide("claims-triage", passed, "current")
    roll_up()
    for _ in range(5):
        decide("claims-triage", passed, "current")
    with CaptureQueriesContext(connection) as queries:
        coverage = governance_coverage(days=7)
    statements = [query["sql"] for query in queries.captured_queries if not query["sql"].startswith("SET ")]
    assert len(statements) == 1, statements
    assert coverage["overall"]["executions"] == 25
    assert coverage["overall"]["with_passed_gates"] == 25
    assert coverage["overall"]["with_verifying_record"] == 20
    assert coverage["overall"]["verification_pending"] == 5
    roll_up()
    assert governance_coverage(days=7)["overall"]["with_verifying_record"] == 25


def test_coverage_without_executions_has_no_ratio(in_tenant_a):
    assert governance_coverage()["overall"] == {
        "bundle": None,
        "executions": 0,
        "through_current": 0,
        "with_passed_gates": 0,
        "with_verifying_record": 0,
        "verification_pending": 0,
        "ratio": None,
    }


def test_the_coverage_api_needs_membership_and_a_valid_window(
    in_tenant_a, tenant_a, tenant_b, make_member, digests
):
    stranger = make_member(tenant_b, "gov-stranger", ["admin"])
    assert token_client(tenant_a, stranger).get(URL).status_code == 403
    auditor = token_client(tenant_a, make_member(tenant_a, "gov-auditor", ["auditor"]))
    decide("claims-triage", digests[0], "current")
    roll_up()
    response = auditor.get(URL, {"days": 3})
    assert response.status_code == 200
    assert (response.json()["days"], response.json()["overall"]["with_verifying_record"]) == (3, 1)
    assert auditor.get(URL).json()["days"] == 7
    for bad in ("0", "abc", "400"):
        refused = auditor.get(URL, {"days": bad})
        assert refused.status_code == 400
        message = INVALID_DAYS.format(limit=366)
        assert refused.json()["error"] == {
            "code": "invalid_days",
            "message": message,
            "details": [{"field": "days", "code": "invalid_days", "message": message}],
        }


def test_the_dashboard_shows_the_coverage_panel(in_tenant_a, tenant_a, make_member, digests):
    from tests.conftest import session_client

    decide("claims-triage", digests[0], "current")
    roll_up()
    decide("claims-triage", digests[0], "current")
    viewer = session_client(tenant_a, make_member(tenant_a, "gov-viewer", ["auditor"]))
    page = viewer.get("/").content.decode()
    assert 'data-testid="governance-coverage"' in page
    assert 'data-testid="coverage-ratio">50%' in page
    assert "1 more from the last minute is waiting to be verified." in page
    roll_up()
    assert 'data-testid="coverage-ratio">100%' in viewer.get("/").content.decode()
