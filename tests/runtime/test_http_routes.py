"""The runtime process serves its execution API, probes and metrics, nothing else, and always answers JSON."""

import httpx
import pytest
from django.conf import settings

from runtime.exceptions import ROUTE_NOT_FOUND, UNKNOWN_TENANT

pytestmark = pytest.mark.django_db

CONTROL_PLANE_PATHS = [
    "/",
    "/admin/",
    "/admin/login/",
    "/login/",
    "/api/v1/bundles/",
    "/api/v1/auth/token/",
    "/api/v1/runtime-keys/",
    "/api/schema/",
    "/runtime-keys/",
    "/decisions/",
    "/static/css/console.css",
    "/v1/execute/claims-triage/triage/",
    "/v1/bench/bare/claims-triage/triage",
]


@pytest.mark.parametrize("path", CONTROL_PLANE_PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_control_plane_paths_answer_a_json_404_on_the_runtime(client, path, method):
    response = client.http.request(method, path, headers=client.headers())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == {"code": "route_not_found", "message": ROUTE_NOT_FOUND, "details": []}


def test_an_unknown_host_answers_a_json_404(runtime, world):
    headers = {"Host": "nobody.localhost", "Authorization": "Bearer x"}
    response = httpx.post(f"{runtime.address}/v1/execute/claims-triage/triage", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_tenant"
    assert response.json()["error"]["message"] == UNKNOWN_TENANT


def test_the_public_host_executes_nothing(client):
    client.host = settings.CONTRACTOR["BASE_DOMAIN"]
    response = client.execute(
        "claims-triage", "triage", {"claim_id": "C1", "amount": 1, "description": "car"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_tenant"


def test_a_wrong_method_answers_a_json_405(client):
    response = client.get("/v1/execute/claims-triage/triage")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("host", ["nobody.localhost", "localhost"])
def test_probes_answer_on_any_host(runtime, host):
    assert httpx.get(f"{runtime.address}/healthz", headers={"Host": host}).json() == {"status": "ok"}
    ready = httpx.get(f"{runtime.address}/readyz", headers={"Host": host})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_metrics_expose_executions_latency_and_denials(client):
    allowed = client.execute("claims-lab", "triage", {"claim_id": "C1", "amount": 10, "description": "car"})
    denied = client.execute(
        "claims-lab", "triage", {"claim_id": "C2", "amount": 900000, "description": "fire"}
    )
    assert (allowed.status_code, denied.json()["status"]) == (200, "denied")
    text = client.get("/metrics").text
    tenant = client.host.split(".")[0].replace("-", "_")
    assert (
        f'contractor_runtime_executions_total{{bundle="claims-lab",status="allowed",tenant="{tenant}"}}'
        in text
    )
    assert (
        f'contractor_runtime_executions_total{{bundle="claims-lab",status="denied",tenant="{tenant}"}}'
        in text
    )
    assert (
        f'contractor_runtime_denials_total{{bundle="claims-lab",policy="amount-limit",tenant="{tenant}"}}'
        in text
    )
    assert (
        f'contractor_runtime_execution_seconds_bucket{{bundle="claims-lab",le="0.5",tenant="{tenant}"}}'
        in text
    )
