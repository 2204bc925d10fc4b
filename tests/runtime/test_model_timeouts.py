"""Model calls are bounded below the runtime worker timeout: the cap is checked at start-up, refused above
it by the API and the console, and clamped for rows stored before it."""

import os
import subprocess
import sys

import pytest
from django.test import override_settings

from core.timebudget import TIMEOUT_BUDGET
from runtime.checks import check_timeout_budget
from runtime.endpoint_models import clear_caches, load_endpoint
from runtime.models import ModelEndpoint
from runtime.services import BAD_TIMEOUT
from tests.conftest import session_client, token_client

URL = "/api/v1/model-endpoints/"
ENDPOINT = {"name": "slowish", "base_url": "https://api.models.example/v1", "allowed_models": ["m"]}


@pytest.fixture
def api(in_tenant_a, tenant_a, make_member):
    return token_client(tenant_a, make_member(tenant_a, "mt-operator", ["operator"]))


def refused_timeout(response, cap: float = 20) -> bool:
    error = response.json()["error"]
    return response.status_code == 400 and error["details"] == [
        {"field": "timeout_seconds", "code": "invalid", "message": BAD_TIMEOUT.format(cap=cap)}
    ]


def test_a_timeout_above_the_cap_is_refused_at_creation(api):
    assert refused_timeout(api.post(URL, {**ENDPOINT, "timeout_seconds": 600}, format="json"))
    assert not ModelEndpoint.objects.exists()


def test_a_timeout_above_the_cap_is_refused_on_change(api):
    assert api.post(URL, {**ENDPOINT, "timeout_seconds": 20}, format="json").status_code == 201
    assert refused_timeout(api.patch(f"{URL}slowish/", {"timeout_seconds": 21}, format="json"))
    assert ModelEndpoint.objects.get().timeout_seconds == 20.0


def test_an_endpoint_without_a_timeout_gets_the_default_within_the_cap(api):
    assert api.post(URL, ENDPOINT, format="json").json()["timeout_seconds"] == 10.0
    with override_settings(CONTRACTOR={"MODEL_TIMEOUT_CAP": 4, "RUNTIME_WORKER_TIMEOUT": 10}):
        created = api.post(URL, {**ENDPOINT, "name": "tight"}, format="json")
        assert created.json()["timeout_seconds"] == 4.0
        assert refused_timeout(
            api.post(URL, {**ENDPOINT, "name": "x", "timeout_seconds": 5}, format="json"), 4
        )


def test_the_console_form_names_the_timeout_field_above_the_cap(in_tenant_a, tenant_a, make_member):
    page = session_client(tenant_a, make_member(tenant_a, "mt-console", ["operator"]))
    form = {
        "name": "dev",
        "base_url": "https://m.example/v1",
        "allowed_models": "m",
        "timeout_seconds": "600",
    }
    response = page.post("/model-endpoints/", form)
    assert response.status_code == 400
    assert BAD_TIMEOUT.format(cap=20) in response.content.decode().replace("&#x27;", "'")
    assert not ModelEndpoint.objects.exists()


def test_a_stored_timeout_above_the_cap_is_clamped_when_the_runtime_loads_it(in_tenant_a):
    # A row written before the cap existed (bypassing the services, as an old release would have).
    ModelEndpoint.objects.create(
        name="old", base_url="https://m.example/v1", allowed_models=["m"], timeout_seconds=600
    )
    clear_caches()
    assert load_endpoint("old").timeout_seconds == 20.0


@pytest.mark.parametrize(
    ("worker", "cap", "margin", "fails"),
    [(30, 20, 5, False), (30, 25, 5, True), (30, 28, 5, True), (10, 0, 1, True), (30, 20, 0, True)],
)
def test_the_system_check_refuses_a_cap_that_does_not_fit_the_worker_timeout(worker, cap, margin, fails):
    budget = {"RUNTIME_WORKER_TIMEOUT": worker, "MODEL_TIMEOUT_CAP": cap, "RUNTIME_RECORD_MARGIN": margin}
    with override_settings(CONTRACTOR=budget):
        errors = check_timeout_budget()
    assert [error.id for error in errors] == (["runtime.E001"] if fails else [])


def test_a_runtime_process_refuses_to_start_with_a_cap_beyond_the_worker_timeout():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contractor_site.settings.runtime",
        "MODEL_TIMEOUT_CAP": "28",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert TIMEOUT_BUDGET.format(cap=28, margin=5, worker=30) in result.stderr
