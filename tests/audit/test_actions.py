"""Audit actions are declared once per app, as enum members, and stored under their unchanged names."""

import ast
from pathlib import Path

from django.db import transaction

from audit.models import Record
from audit.selectors import record_is_intact
from audit.services import record
from bundles.actions import BundleAction
from promotions.actions import PromotionAction, PromotionEvent
from runtime.actions import RuntimeAction
from tenancy.actions import TenancyAction

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ("core", "audit", "policies", "bundles", "promotions", "runtime", "tenancy", "contractor_site")


def literal_actions(path: Path) -> list[str]:
    """Return 'file:line' for each record() call in the module at `path` whose action is a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "record"
        ):
            continue
        for keyword in node.keywords:
            if keyword.arg == "action" and any(
                isinstance(part, ast.Constant | ast.JoinedStr) for part in ast.walk(keyword.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_application_code_records_an_action_named_by_a_string_literal():
    offences = [
        place
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts
        for place in literal_actions(path)
    ]
    assert offences == []


def test_a_recorded_enum_member_is_stored_as_its_plain_name_and_its_hash_verifies(in_tenant_a):
    with transaction.atomic():
        entry = record(actor=None, action=PromotionAction.ROLLBACK, target=("thing", "1"))
    stored = Record.objects.get(pk=entry.pk)
    assert type(stored.action) is str
    assert stored.action == "rollback"
    assert Record.objects.filter(action="rollback", pk=entry.pk).exists()
    assert record_is_intact(stored)


def test_the_declared_names_are_the_ones_auditors_and_receivers_rely_on():
    assert BundleAction.VERSION_PUSHED == "bundle.version_pushed"
    assert PromotionAction.PROMOTION_REQUESTED == "promotion.requested"
    assert PromotionAction.DEPLOYMENT_CREATED == "deployment.created"
    assert PromotionAction.ROLLBACK == "rollback"
    assert RuntimeAction.DECISION == "runtime.decision"
    assert TenancyAction.MEMBERSHIP_CHANGED == "membership.changed"
    assert [event.value for event in PromotionEvent] == [
        "promotion.requested",
        "promotion.approved",
        "promotion.rejected",
        "promotion.promoted",
        "promotion.cancelled",
        "promotion.failed",
        "deployment.rolled_back",
        "gate.finished",
    ]


def test_no_two_apps_declare_the_same_action_name():
    names = [
        member.value
        for enum in (BundleAction, PromotionAction, RuntimeAction, TenancyAction)
        for member in enum
    ]
    assert len(names) == len(set(names))
