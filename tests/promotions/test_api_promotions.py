"""The promotions API end to end: gates, requests, approvals, deployments, rollback, and the errors of §9."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Record
from promotions.models import GateRun, GateStatus
from promotions.services.gate_execution import gate_run_execute
from tests.conftest import token_client
from tests.promotions.promotion_factories import (
    environment,
    error_code,
    failing_files,
    push_version,
    run_gates,
)


def gates_path(version: str = "1.2.0") -> str:
    return f"/api/v1/bundles/claims-triage/versions/{version}/gate-runs/"


def request_body(version: str = "1.2.0", env: str = "staging", justification: str = "Ready.") -> dict:
    return {"bundle": "claims-triage", "version": version, "environment": env, "justification": justification}


def test_the_whole_path_from_gates_to_current_and_back(team, clients):
    push_version(team.author, "1.2.0")
    push_version(team.author, "1.3.0")
    author, reviewer, operator = clients["author"], clients["reviewer"], clients["operator"]

    started = author.post(gates_path("1.2.0"))
    assert started.status_code == 202, started.content
    assert started.json()["status"] == "queued"
    gate_run_execute(gate_run_id=started.json()["id"])  # what the worker does
    run = author.get(f"/api/v1/gate-runs/{started.json()['id']}/").json()
    assert run["status"] == "passed"
    assert run["report"]["suites"][0]["cases"][0]["passed"] is True
    assert author.post(gates_path("1.2.0")).status_code == 200  # a passed digest needs no new run

    to_staging = author.post("/api/v1/promotions/", request_body("1.2.0", "staging"), format="json")
    assert to_staging.status_code == 201, to_staging.content
    assert to_staging.json()["status"] == "promoted"

    to_current = author.post("/api/v1/promotions/", request_body("1.2.0", "current"), format="json")
    body = to_current.json()
    assert (body["status"], body["approvals"], body["required_approvals"]) == ("pending", 0, 1)
    assert body["caller"] == {"may_decide": False, "reason": "missing_role"}
    listed = reviewer.get("/api/v1/promotions/?status=pending&environment=current").json()
    assert [row["id"] for row in listed["results"]] == [body["id"]]
    assert reviewer.get(f"/api/v1/promotions/{body['id']}/").json()["caller"] == {
        "may_decide": True,
        "reason": "",
    }

    approved = reviewer.post(f"/api/v1/promotions/{body['id']}/approve/", {"comment": "Fine."}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "promoted"
    assert approved.json()["decisions"][0]["reviewer"] == team.reviewer.username
    assert approved.json()["deployment"] is not None

    # 1.3.0: gates start automatically with the request, which waits for them.
    waiting = author.post("/api/v1/promotions/", request_body("1.3.0", "staging"), format="json").json()
    assert waiting["status"] == "pending"
    gate_run_execute(gate_run_id=GateRun.objects.get(version__version="1.3.0").pk)
    assert author.get(f"/api/v1/promotions/{waiting['id']}/").json()["status"] == "promoted"

    rolled = operator.post(
        "/api/v1/environments/staging/bundles/claims-triage/rollback/",
        {"justification": "Latency regression."},
        format="json",
    )
    assert rolled.status_code == 201, rolled.content
    assert (rolled.json()["version"], rolled.json()["kind"], rolled.json()["previous_version"]) == (
        "1.2.0",
        "rollback",
        "1.3.0",
    )

    environments = author.get("/api/v1/environments/").json()["results"]
    live = {env["name"]: [(row["bundle"], row["version"]) for row in env["live"]] for env in environments}
    assert live == {"staging": [("claims-triage", "1.2.0")], "current": [("claims-triage", "1.2.0")]}
    history = author.get("/api/v1/deployments/?bundle=claims-triage&environment=staging").json()["results"]
    assert [(row["version"], row["kind"]) for row in history] == [
        ("1.2.0", "rollback"),
        ("1.3.0", "promote"),
        ("1.2.0", "promote"),
    ]
    actions = list(Record.objects.order_by("id").values_list("action", flat=True))
    for expected in (
        "gate.started",
        "gate.finished",
        "promotion.requested",
        "promotion.approved",
        "deployment.created",
        "rollback",
    ):
        assert expected in actions


def test_starting_gates_needs_run_gates(team, clients):
    push_version(team.author)
    response = clients["reviewer"].post(gates_path())
    assert response.status_code == 403
    assert error_code(response) == "missing_role"
    assert not GateRun.objects.exists()


def test_gates_of_an_unknown_version_are_not_found(team, clients):
    push_version(team.author)
    response = clients["author"].post(gates_path("9.9.9"))
    assert response.status_code == 404
    assert error_code(response) == "version_not_found"
    assert clients["author"].get("/api/v1/gate-runs/999999/").status_code == 404


def test_requesting_needs_request_promotion(team, clients):
    push_version(team.author)
    response = clients["reviewer"].post("/api/v1/promotions/", request_body(), format="json")
    assert response.status_code == 403
    assert error_code(response) == "missing_role"


@pytest.mark.parametrize(
    ("setup", "body", "status", "code"),
    [
        ("gated", request_body(justification=""), 400, "justification_required"),
        ("failed", request_body(), 409, "gates_not_passed"),
        ("gated", request_body(env="current"), 409, "not_in_staging"),
        ("live", request_body(), 409, "already_live"),
        ("gated", request_body(env="nowhere"), 404, "environment_not_found"),
        ("gated", {**request_body(), "bundle": "nothing"}, 404, "bundle_not_found"),
    ],
)
def test_refused_requests_answer_their_code(team, clients, setup, body, status, code):
    version = push_version(team.author, "1.2.0", failing_files() if setup == "failed" else None)
    run_gates(team.author, version)
    if setup == "live":
        clients["author"].post("/api/v1/promotions/", request_body(), format="json")
    response = clients["author"].post("/api/v1/promotions/", body, format="json")
    assert response.status_code == status, response.content
    assert error_code(response) == code


def test_a_second_pending_request_is_a_conflict(team, clients):
    version = push_version(team.author)
    first = clients["author"].post("/api/v1/promotions/", request_body(), format="json")
    assert first.json()["status"] == "pending"  # waits for gates started with it
    second = clients["author"].post("/api/v1/promotions/", request_body(), format="json")
    assert second.status_code == 409
    assert error_code(second) == "request_exists"
    assert GateRun.objects.filter(digest=version.digest).count() == 1


@pytest.fixture
def pending_current(team, clients):
    version = push_version(team.author)
    run_gates(team.author, version)
    clients["author"].post("/api/v1/promotions/", request_body(), format="json")
    return (
        clients["author"].post("/api/v1/promotions/", request_body(env="current"), format="json").json()["id"]
    )


@pytest.mark.parametrize(
    ("who", "action", "status", "code"),
    [
        ("operator", "approve", 403, "missing_role"),
        ("author", "approve", 403, "missing_role"),
        ("outsider_reviewer", "approve", 403, "not_an_approver"),
        ("outsider_reviewer", "reject", 403, "not_an_approver"),
        ("reviewer", "cancel", 403, "not_the_requester"),
    ],
)
def test_decisions_by_the_wrong_member_are_forbidden(clients, pending_current, who, action, status, code):
    response = clients[who].post(
        f"/api/v1/promotions/{pending_current}/{action}/", {"comment": "x"}, format="json"
    )
    assert response.status_code == status
    assert error_code(response) == code
    assert clients["author"].get(f"/api/v1/promotions/{pending_current}/").json()["status"] == "pending"


def test_the_requester_holding_the_reviewer_role_and_grant_still_cannot_approve(
    team, tenant_a, make_member, clients
):
    from guardian.shortcuts import assign_perm

    both = make_member(tenant_a, "p-both", ["author", "reviewer"])
    assign_perm("approve_promotion", both, environment("current"))
    version = push_version(team.author)
    run_gates(team.author, version)
    client = token_client(tenant_a, both)
    client.post("/api/v1/promotions/", request_body(), format="json")
    own = client.post("/api/v1/promotions/", request_body(env="current"), format="json").json()["id"]
    response = client.post(f"/api/v1/promotions/{own}/approve/", {}, format="json")
    assert response.status_code == 403
    assert error_code(response) == "self_approval"


@pytest.fixture
def pending_current_needing_two(team, clients):
    from promotions.services.environments import environment_update

    environment_update(actor=team.admin, environment=environment("current"), required_approvals=2)
    version = push_version(team.author)
    run_gates(team.author, version)
    clients["author"].post("/api/v1/promotions/", request_body(), format="json")
    return (
        clients["author"].post("/api/v1/promotions/", request_body(env="current"), format="json").json()["id"]
    )


def test_deciding_twice_and_after_the_end_are_conflicts(team, clients, pending_current_needing_two):
    pending_current = pending_current_needing_two
    path = f"/api/v1/promotions/{pending_current}"
    assert clients["reviewer"].post(f"{path}/approve/", {}, format="json").status_code == 200
    again = clients["reviewer"].post(f"{path}/approve/", {}, format="json")
    assert (again.status_code, error_code(again)) == (409, "already_decided")
    no_comment = clients["reviewer2"].post(f"{path}/reject/", {"comment": ""}, format="json")
    assert (no_comment.status_code, error_code(no_comment)) == (400, "comment_required")
    rejected = clients["reviewer2"].post(f"{path}/reject/", {"comment": "Not yet."}, format="json")
    assert rejected.json()["status"] == "rejected"
    late = clients["reviewer2"].post(f"{path}/approve/", {}, format="json")
    assert (late.status_code, error_code(late)) == (409, "request_not_pending")
    cancel = clients["author"].post(f"{path}/cancel/", {}, format="json")
    assert (cancel.status_code, error_code(cancel)) == (409, "request_not_pending")


def test_the_requester_cancels(clients, pending_current):
    response = clients["author"].post(
        f"/api/v1/promotions/{pending_current}/cancel/", {"comment": "Oops."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_promotion_filters_are_validated(clients):
    response = clients["author"].get("/api/v1/promotions/?status=approved")
    assert (response.status_code, error_code(response)) == (400, "invalid_query")


def test_rollback_needs_the_rollback_capability_then_a_justification(team, clients):
    for label in ("1.2.0", "1.3.0"):
        run_gates(team.author, push_version(team.author, label))
        clients["author"].post("/api/v1/promotions/", request_body(label), format="json")
    path = "/api/v1/environments/staging/bundles/claims-triage/rollback/"
    denied = clients["author"].post(path, {"justification": "x"}, format="json")
    assert (denied.status_code, error_code(denied)) == (403, "missing_role")
    blank = clients["operator"].post(path, {"justification": " "}, format="json")
    assert (blank.status_code, error_code(blank)) == (400, "justification_required")
    never = clients["operator"].post(path, {"to_version": "1.4.0", "justification": "x"}, format="json")
    assert (never.status_code, error_code(never)) == (409, "not_previously_live")
    explicit = clients["operator"].post(path, {"to_version": "1.2.0", "justification": "x"}, format="json")
    assert explicit.status_code == 201
    assert explicit.json()["version"] == "1.2.0"


def test_deployments_as_of_answers_what_was_live_then(team, clients):
    run_gates(team.author, push_version(team.author, "1.2.0"))
    clients["author"].post("/api/v1/promotions/", request_body("1.2.0"), format="json")
    between = timezone.now()
    run_gates(team.author, push_version(team.author, "1.3.0"))
    clients["author"].post("/api/v1/promotions/", request_body("1.3.0"), format="json")
    then = clients["auditor"].get("/api/v1/deployments/", {"as_of": between.isoformat()}).json()["results"]
    assert [(row["environment"], row["version"]) for row in then] == [("staging", "1.2.0")]
    now = (
        clients["auditor"]
        .get("/api/v1/deployments/", {"as_of": timezone.now().isoformat()})
        .json()["results"]
    )
    assert [(row["environment"], row["version"]) for row in now] == [("staging", "1.3.0")]
    before = clients["auditor"].get("/api/v1/deployments/", {"as_of": "2000-01-01T00:00:00Z"}).json()
    assert before["results"] == []
    bad = clients["auditor"].get("/api/v1/deployments/", {"as_of": "yesterday"})
    assert (bad.status_code, error_code(bad)) == (400, "invalid_query")


def test_another_tenants_promotion_is_not_found(team, clients, tenant_a, tenant_b, make_member, in_tenant):
    push_version(team.author)
    own = clients["author"].post("/api/v1/promotions/", request_body(), format="json").json()["id"]
    outsider = make_member(tenant_b, "p-beta-reviewer", ["reviewer", "author"])
    in_tenant(tenant_b)
    beta = token_client(tenant_b, outsider)
    response = beta.get(f"/api/v1/promotions/{own}/")
    assert (response.status_code, error_code(response)) == (404, "promotion_not_found")
    approve = beta.post(f"/api/v1/promotions/{own}/approve/", {}, format="json")
    assert (approve.status_code, error_code(approve)) == (404, "promotion_not_found")
    on_alpha = token_client(tenant_a, outsider).get(f"/api/v1/promotions/{own}/")
    assert (on_alpha.status_code, error_code(on_alpha)) == (403, "not_a_member")


def test_running_gates_again_over_the_api_replaces_a_stale_run_instead_of_returning_it(team, clients):
    push_version(team.author, "1.2.0")
    first = clients["author"].post(gates_path("1.2.0")).json()
    assert first["heartbeat_at"] is not None
    GateRun.objects.filter(pk=first["id"]).update(
        status=GateStatus.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    again = clients["author"].post(gates_path("1.2.0"))
    assert again.status_code == 202
    assert again.json()["id"] != first["id"]
    replaced = clients["author"].get(f"/api/v1/gate-runs/{first['id']}/").json()
    assert replaced["status"] == "error"
    assert replaced["error"].startswith(f"replaced by gate run {again.json()['id']}")
