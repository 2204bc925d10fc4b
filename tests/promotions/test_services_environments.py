"""Environments: the defaults every tenant gets, rule changes with history, approver grants."""

import pytest
from guardian.shortcuts import get_perms

from audit.models import Record
from promotions.exceptions import REQUIRES_ITSELF, USER_NOT_FOUND, InvalidEnvironmentRule, UserNotFound
from promotions.models import Environment
from promotions.selectors import access_environment, environment_approvers, environment_history, environments
from promotions.services.environments import (
    environment_approval_grant,
    environment_update,
    environments_ensure_defaults,
)
from tenancy.exceptions import MissingCapability


def test_every_tenant_schema_starts_with_staging_and_current(in_tenant_a):
    staging, current = list(environments())
    assert (staging.name, staging.requires_gates, staging.required_approvals, staging.requires_live_in) == (
        "staging",
        True,
        0,
        None,
    )
    assert (current.name, current.requires_gates, current.required_approvals) == ("current", True, 1)
    assert current.requires_live_in == staging
    assert [row.history_type for row in environment_history(current)] == ["+"]


def test_ensuring_the_defaults_is_idempotent_and_recreates_a_missing_one(in_tenant_a):
    assert [env.name for env in environments_ensure_defaults()] == ["staging", "current"]
    assert Environment.objects.count() == 2
    assert not Record.objects.filter(action="environment.created").exists()


def test_a_member_without_manage_environments_cannot_change_rules(team):
    current = access_environment(team.author, "current")
    with pytest.raises(MissingCapability) as refused:
        environment_update(actor=team.reviewer, environment=current, required_approvals=0)
    assert refused.value.code == "missing_role"
    current.refresh_from_db()
    assert current.required_approvals == 1


def test_an_admin_changes_rules_with_history_and_an_audit_record(team):
    current = access_environment(team.admin, "current")
    environment_update(
        actor=team.admin, environment=current, required_approvals=2, requires_gates=True, description="Prod."
    )
    current.refresh_from_db()
    assert current.required_approvals == 2
    assert current.description == "Prod."
    latest = environment_history(current).first()
    assert latest.history_type == "~"
    assert latest.required_approvals == 2
    assert latest.history_user_id == team.admin.pk
    assert environment_history(current).count() == 2
    changed = Record.objects.get(action="environment.changed")
    assert changed.actor_name == team.admin.username
    assert changed.data["changed"] == ["required_approvals", "description"]
    assert changed.data["before"]["required_approvals"] == 1
    assert changed.data["after"]["required_approvals"] == 2


def test_a_change_that_changes_nothing_writes_nothing(team):
    current = access_environment(team.admin, "current")
    environment_update(actor=team.admin, environment=current, required_approvals=1)
    assert not Record.objects.filter(action="environment.changed").exists()
    assert environment_history(current).count() == 1


def test_the_prerequisite_can_be_dropped_and_cannot_loop(team):
    staging, current = access_environment(None, "staging"), access_environment(None, "current")
    with pytest.raises(InvalidEnvironmentRule) as refused:
        environment_update(actor=team.admin, environment=current, requires_live_in="current")
    assert refused.value.message == REQUIRES_ITSELF
    with pytest.raises(InvalidEnvironmentRule) as refused:
        environment_update(actor=team.admin, environment=staging, requires_live_in="current")
    assert refused.value.code == "invalid_environment_rule"
    environment_update(actor=team.admin, environment=current, requires_live_in=None)
    current.refresh_from_db()
    assert current.requires_live_in is None


def test_a_member_without_manage_environments_cannot_grant_approvers(team):
    current = access_environment(None, "current")
    with pytest.raises(MissingCapability):
        environment_approval_grant(
            actor=team.author, environment=current, user=team.outsider_reviewer, granted=True
        )
    assert "approve_promotion" not in get_perms(team.outsider_reviewer, current)


def test_an_admin_grants_and_revokes_approve_promotion_with_audit_records(team):
    current = access_environment(None, "current")
    environment_approval_grant(
        actor=team.admin, environment=current, user=team.outsider_reviewer, granted=True
    )
    assert team.outsider_reviewer in environment_approvers(current)
    environment_approval_grant(
        actor=team.admin, environment=current, user=team.outsider_reviewer, granted=False
    )
    assert team.outsider_reviewer not in environment_approvers(current)
    assert list(
        Record.objects.filter(target_type="promotions.environment", target_id=str(current.pk))
        .order_by("id")
        .values_list("action", "data__user")
    ) == [
        ("environment.approver_granted", team.outsider_reviewer.username),
        ("environment.approver_revoked", team.outsider_reviewer.username),
    ]


def test_a_grant_to_someone_outside_the_tenant_is_refused(team, tenant_b, make_member):
    stranger = make_member(tenant_b, "p-stranger", ["reviewer"])
    with pytest.raises(UserNotFound) as refused:
        environment_approval_grant(
            actor=team.admin, environment=access_environment(None, "current"), user=stranger, granted=True
        )
    assert refused.value.message == USER_NOT_FOUND.format(username="p-stranger")
