"""What promotions adds to other apps: bundle/version facts, the dashboard panel, the demo seeder."""

from django.urls import NoReverseMatch, reverse

from promotions.selectors import (
    bundle_live_facts,
    gates_summary,
    latest_gate_run,
    pending_approvals_for,
    version_deployments,
    version_passed_gates,
)
from tenancy.roles import Capability
from tenancy.selectors import current_tenant, membership_of

PENDING_PANEL_TEMPLATE = "promotions/panels/pending_approvals.html"


def iso(value):
    """Return a datetime as ISO 8601 text (facts must be JSON-compatible)."""
    return value.isoformat() if value is not None else None


def version_gate_facts(version) -> dict:
    """Return `gates` (the status deciding this digest, the latest run) and deployments per environment."""
    summary = gates_summary(version)
    latest = latest_gate_run(version)
    gates = {
        "digest": version.digest,
        "passed": version_passed_gates(version),
        "status": summary["status"] if summary else None,
        "run_id": summary["run_id"] if summary else None,
        "pass_rate": summary["pass_rate"] if summary else None,
        "policy_coverage": summary["policy_coverage"] if summary else None,
        "finished_at": iso(summary["finished_at"]) if summary else None,
        "latest_run": {"id": latest.pk, "status": latest.status} if latest else None,
    }
    deployments = version_deployments(version)
    return {
        "gates": gates,
        "deployments": {
            name: {
                "live": facts["live"],
                "deployed": [{**row, "at": iso(row["at"])} for row in facts["deployed"]],
            }
            for name, facts in deployments.items()
        },
        "live_in": sorted(name for name, facts in deployments.items() if facts["live"]),
    }


def bundle_deployment_facts(bundle) -> dict:
    """Return `live`: the live version of `bundle` per environment (null where nothing is live)."""
    return {
        "live": {
            name: ({**facts, "since": iso(facts["since"])} if facts else None)
            for name, facts in bundle_live_facts(bundle).items()
        }
    }


def promotion_url(request_id: int) -> str:
    """Return the console URL of promotion request `request_id`."""
    try:
        return reverse("promotions-detail", args=[request_id])
    except NoReverseMatch:
        return f"/promotions/{request_id}/"


def pending_approvals_panel(request):
    """Dashboard panel: the promotion requests this member may approve now."""
    if not request.user.is_authenticated:
        return None
    membership = membership_of(request.user, current_tenant())
    if membership is None or not membership.can(Capability.APPROVE_PROMOTION):
        return None
    pending = pending_approvals_for(request.user)
    rows = [
        {
            "request": item,
            "url": promotion_url(item.pk),
            "gates_passed": version_passed_gates(item.version),
            "waiting_for_gates": item.environment.requires_gates and not version_passed_gates(item.version),
        }
        for item in pending
    ]
    return PENDING_PANEL_TEMPLATE, {"rows": rows}
