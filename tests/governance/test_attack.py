"""The attack of issue 10: one tenant admin alone loosening every control until a 5,000,000 claim runs.

Each step must fail at the first loosening and leave production as it was: the live version, the rules of
`current`, and the decision the live version takes on a 5,000,000 claim (denied by amount-limit).
"""

import pytest

from bundles.language.compiler import compile_bundle
from bundles.language.execution import execute
from bundles.language.models import ReplayModel
from bundles.models import Bundle
from governance.models import GovernanceChangeRequest
from promotions.models import Deployment
from promotions.selectors import live_deployment
from promotions.services.promotion_requests import promotion_approve, promotion_request_create
from tenancy.models import Membership
from tests.bundles.bundle_factories import CLAIMS, example_files, with_version
from tests.bundles.test_api_push import PUSH_URL, push_json
from tests.promotions.promotion_factories import atomic, environment, error_code, push_version, run_gates

HUGE_CLAIM = {"claim_id": "C9", "amount": 5_000_000, "description": "total loss"}
ROUTE_AUTO = '{"queue": "auto", "reason": "fine"}'


def never_firing_files() -> dict[str, str]:
    """claims-triage 9.9.9 whose amount-limit can never fire, with a one-case suite that passes."""
    files = with_version(example_files(CLAIMS), "9.9.9")
    files["policies/amount-limit.yaml"] = files["policies/amount-limit.yaml"].replace(
        "when: input.amount > 100000", "when: input.amount < 0"
    )
    files["suites/golden.yaml"] = (
        "name: golden\npipeline: triage\nthresholds: {pass_rate: 1.0}\ncases:\n"
        "  - name: one\n    input: {claim_id: C1, amount: 10, description: dent}\n"
        f"    model_output: '{ROUTE_AUTO}'\n    expect: {{status: allowed}}\n"
    )
    return files


@pytest.fixture
def production(team):
    """claims-triage 1.2.0 live in staging and current, promoted by the book (author, then a reviewer)."""
    version = push_version(team.author, "1.2.0")
    run_gates(team.author, version)
    for name in ("staging", "current"):
        request = atomic(
            promotion_request_create,
            actor=team.author,
            version=version,
            environment=environment(name),
            justification="release",
        )
        if request.status == "pending":
            atomic(promotion_approve, actor=team.reviewer, request=request)
    return version


def live_decision_on_huge_claim():
    """Return the live version of claims-triage in current and its decision on a 5,000,000 claim."""
    live = live_deployment(Bundle.objects.get(name=CLAIMS), environment("current"))
    version = live.version
    decision = execute(
        compile_bundle(version.content, version.digest), "triage", HUGE_CLAIM, ReplayModel(ROUTE_AUTO)
    )
    return version, decision


def test_the_attack_fails_at_the_first_loosening_step_and_production_is_unchanged(team, clients, production):
    mallory = clients["admin"]
    before_version, before_decision = live_decision_on_huge_claim()
    assert before_decision.status == "denied"
    deployments_before = Deployment.objects.count()

    # 1. Give herself author and reviewer: a loosening, so it waits for another admin.
    roles = mallory.put(
        f"/api/v1/memberships/{team.admin.username}/",
        {"roles": ["admin", "author", "reviewer"]},
        format="json",
    )
    assert roles.status_code == 202
    change = roles.json()["governance_change"]
    assert (change["kind"], change["status"], change["beneficiary"]) == (
        "membership.roles",
        "pending",
        team.admin.username,
    )
    assert Membership.objects.get(user=team.admin, tenant__schema_name="alpha").roles == ["admin"]
    # ... and she cannot approve it herself (requester), nor through a second token.
    self_approval = mallory.post(f"/api/v1/governance/changes/{change['id']}/approve/", {}, format="json")
    assert (self_approval.status_code, error_code(self_approval)) == (403, "self_approval")

    # 2. Push grant on the bundle for herself: pending too.
    grant = mallory.put(f"/api/v1/bundles/{CLAIMS}/push-grants/{team.admin.username}/")
    assert grant.status_code == 202
    assert grant.json()["governance_change"]["kind"] == "bundle.push_grant"

    # 3. Push a version whose amount-limit never fires: she holds no author role, so it is refused.
    pushed = push_json(mallory, never_firing_files(), url=PUSH_URL)
    assert pushed.status_code == 403

    # 4. Drop the approvals of current to 0: pending, the rule is unchanged.
    rule = mallory.patch("/api/v1/environments/current/", {"required_approvals": 0}, format="json")
    assert rule.status_code == 202
    assert rule.json()["governance_change"]["proposed"]["required_approvals"] == 0
    assert environment("current").required_approvals == 1

    # 5. Request staging, then current: she may not request promotions at all.
    for name in ("staging", "current"):
        body = {"bundle": CLAIMS, "version": "1.2.0", "environment": name, "justification": "x"}
        requested = mallory.post("/api/v1/promotions/", body, format="json")
        assert requested.status_code == 403

    # Nothing she asked for applied; none of it can be approved by her.
    pending = GovernanceChangeRequest.objects.filter(status="pending", requested_by=team.admin)
    assert pending.count() == 3
    for waiting in pending:
        refused = mallory.post(f"/api/v1/governance/changes/{waiting.pk}/approve/", {}, format="json")
        assert error_code(refused) == "self_approval"
    after_version, after_decision = live_decision_on_huge_claim()
    assert after_version.pk == before_version.pk
    assert after_decision.status == "denied"
    assert after_decision.denied_by == "amount-limit"
    assert Deployment.objects.count() == deployments_before
    current = environment("current")
    assert (current.required_approvals, current.requires_gates, current.forbid_author_approval) == (
        1,
        True,
        True,
    )


def test_even_with_the_roles_approved_separation_of_duties_keeps_her_from_approving_her_own_version(
    team, clients, production
):
    """Suppose the second admin wrongly approves her roles: as an author she still cannot approve."""
    mallory, alice = clients["admin"], clients["admin2"]
    roles = mallory.put(
        f"/api/v1/memberships/{team.admin.username}/",
        {"roles": ["admin", "author", "reviewer"]},
        format="json",
    )
    change_id = roles.json()["governance_change"]["id"]
    approved = alice.post(f"/api/v1/governance/changes/{change_id}/approve/", {}, format="json")
    assert approved.json()["status"] == "applied"
    # She now holds author and reviewer; a grant of approve_promotion on current is refused outright.
    grant = mallory.put(f"/api/v1/environments/current/approvers/{team.admin.username}/")
    assert (grant.status_code, error_code(grant)) == (403, "separation_of_duties")
