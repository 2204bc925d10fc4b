"""The environments API: rules, live versions, changes by admins with history, approver grants."""

from guardian.shortcuts import get_perms

from audit.models import Record
from bundles.selectors import access_version
from promotions.selectors import environment_history
from promotions.services.promotion_requests import promotion_request_create
from tests.promotions.promotion_factories import environment, error_code, push_version, run_gates


def test_members_read_environments_with_rules_approvers_and_live_versions(team, clients):
    version = push_version(team.author)
    run_gates(team.author, version)
    promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="x"
    )
    body = clients["auditor"].get("/api/v1/environments/").json()
    staging, current = body["results"]
    assert (staging["name"], staging["required_approvals"], staging["requires_live_in"]) == (
        "staging",
        0,
        None,
    )
    assert (current["name"], current["required_approvals"], current["requires_live_in"]) == (
        "current",
        1,
        "staging",
    )
    assert current["approvers"] == sorted([team.reviewer.username, team.reviewer2.username])
    assert [(row["bundle"], row["version"], row["kind"]) for row in staging["live"]] == [
        ("claims-triage", "1.2.0", "promote")
    ]
    assert current["live"] == []


def test_changing_rules_needs_manage_environments(clients):
    response = clients["reviewer"].patch(
        "/api/v1/environments/current/", {"required_approvals": 0}, format="json"
    )
    assert response.status_code == 403
    assert error_code(response) == "missing_role"
    assert environment("current").required_approvals == 1


def test_an_admin_changes_rules_and_the_history_shows_it(team, clients):
    response = clients["admin"].patch(
        "/api/v1/environments/current/", {"required_approvals": 2, "requires_live_in": None}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["required_approvals"], response.json()["requires_live_in"]) == (2, None)
    history = clients["auditor"].get("/api/v1/environments/current/history/").json()["results"]
    assert [(row["history_type"], row["required_approvals"]) for row in history] == [("~", 2), ("+", 1)]
    assert history[0]["history_user_id"] == team.admin.pk
    assert Record.objects.get(action="environment.changed").data["after"]["requires_live_in"] is None
    assert environment_history(environment("current")).count() == 2


def test_invalid_rules_are_refused(clients):
    negative = clients["admin"].patch(
        "/api/v1/environments/current/", {"required_approvals": -1}, format="json"
    )
    assert (negative.status_code, error_code(negative)) == (400, "validation_failed")
    loop = clients["admin"].patch(
        "/api/v1/environments/staging/", {"requires_live_in": "current"}, format="json"
    )
    assert (loop.status_code, error_code(loop)) == (400, "invalid_environment_rule")
    unknown = clients["admin"].patch("/api/v1/environments/prod/", {"required_approvals": 1}, format="json")
    assert (unknown.status_code, error_code(unknown)) == (404, "environment_not_found")


def test_granting_approvers_needs_manage_environments(team, clients):
    path = f"/api/v1/environments/current/approvers/{team.outsider_reviewer.username}/"
    response = clients["reviewer"].put(path)
    assert (response.status_code, error_code(response)) == (403, "missing_role")
    assert "approve_promotion" not in get_perms(team.outsider_reviewer, environment("current"))


def test_an_admin_grants_then_revokes_an_approver(team, clients):
    path = f"/api/v1/environments/current/approvers/{team.outsider_reviewer.username}/"
    granted = clients["admin"].put(path)
    assert granted.status_code == 200
    assert team.outsider_reviewer.username in granted.json()["approvers"]
    revoked = clients["admin"].delete(path)
    assert team.outsider_reviewer.username not in revoked.json()["approvers"]
    assert [
        action
        for action in Record.objects.order_by("id").values_list("action", flat=True)
        if "approver" in action
    ] == ["environment.approver_granted", "environment.approver_revoked"]


def test_granting_to_a_non_member_is_not_found(clients, tenant_b, make_member):
    make_member(tenant_b, "p-beta-only", ["reviewer"])
    response = clients["admin"].put("/api/v1/environments/current/approvers/p-beta-only/")
    assert (response.status_code, error_code(response)) == (404, "user_not_found")


def test_version_and_bundle_details_show_gates_and_deployments(team, clients):
    version = push_version(team.author)
    run = run_gates(team.author, version)
    promotion_request_create(
        actor=team.author, version=version, environment=environment("staging"), justification="x"
    )
    detail = clients["auditor"].get("/api/v1/bundles/claims-triage/versions/1.2.0/").json()
    assert detail["gates"]["status"] == "passed"
    assert detail["gates"]["run_id"] == run.pk
    assert detail["gates"]["digest"] == access_version(None, "claims-triage", "1.2.0").digest
    assert detail["deployments"]["staging"]["live"] is True
    assert detail["deployments"]["current"] == {"live": False, "deployed": []}
    assert detail["live_in"] == ["staging"]
    bundle = clients["auditor"].get("/api/v1/bundles/claims-triage/").json()
    assert bundle["live"]["staging"]["version"] == "1.2.0"
    assert bundle["live"]["current"] is None
