"""Security rules of the runtime's control-plane services: below the views, and in the runtime's own reads.

A model endpoint names the environment variable holding its API key, and the runtime sends that variable's
value to the endpoint's base_url, which tenant operators choose: only variables meant for model API keys may
be named, never the process's own secrets. Keys and endpoints are managed by operators, and the services say
so themselves.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from bundles.language.models import ModelError, ModelRequest
from runtime import endpoint_models
from runtime.exceptions import API_KEY_ENV_NOT_ALLOWED, InvalidModelEndpoint
from runtime.models import ModelEndpoint
from runtime.services import (
    BAD_API_KEY_ENV,
    model_endpoint_create,
    model_endpoint_delete,
    model_endpoint_update,
    runtime_key_create,
    runtime_key_revoke,
)
from tenancy.exceptions import MISSING_CAPABILITY, MissingCapability, NotAMember

PLATFORM_VARIABLES = [
    "SECRET_KEY",
    "DATABASE_URL",
    "RUNTIME_DATABASE_URL",
    "RUNTIME_DB_PASSWORD",
    "REDIS_URL",
]
PLATFORM_SECRET = "platform-secret-never-to-leave-the-process"


class CapturingModelServer:
    """A local OpenAI-compatible endpoint that records the Authorization header of every call."""

    def __init__(self):
        self.authorizations: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                server.authorizations.append(self.headers.get("Authorization"))
                body = json.dumps({"choices": [{"message": {"content": '{"queue": "auto"}'}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def operator(in_tenant_a, tenant_a, make_member):
    return make_member(tenant_a, "sec-operator", ["operator"])


@pytest.fixture
def model_server():
    with CapturingModelServer() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_runtime_caches():
    endpoint_models.clear_caches()
    yield
    endpoint_models.clear_caches()


def model_request() -> ModelRequest:
    return ModelRequest(system="", prompt="route C1", params={"name": "dev-model"})


@pytest.mark.parametrize("roles", [["author"], ["reviewer"], ["auditor"], ["admin"]])
def test_the_key_and_endpoint_services_refuse_members_who_are_not_operators(
    in_tenant_a, tenant_a, make_member, operator, roles
):
    member = make_member(tenant_a, f"sec-{roles[0]}", roles)
    endpoint = model_endpoint_create(
        actor=operator, name="dev", base_url="http://127.0.0.1:9/v1", allowed_models=["dev-model"]
    )
    key = runtime_key_create(actor=operator, name="ci").key
    attempts = [
        lambda: runtime_key_create(actor=member, name="smuggled"),
        lambda: runtime_key_revoke(actor=member, key=key),
        lambda: model_endpoint_create(
            actor=member, name="evil", base_url="http://evil.example/v1", allowed_models=["m"]
        ),
        lambda: model_endpoint_update(actor=member, endpoint=endpoint, changes={"base_url": "http://e.x/v1"}),
        lambda: model_endpoint_delete(actor=member, endpoint=endpoint),
    ]
    capabilities = ["manage_runtime_keys"] * 2 + ["manage_model_endpoints"] * 3
    for attempt, capability in zip(attempts, capabilities, strict=True):
        with pytest.raises(MissingCapability) as refused, transaction.atomic():
            attempt()
        assert refused.value.message == MISSING_CAPABILITY.format(capability=capability)
    endpoint.refresh_from_db()
    key.refresh_from_db()
    assert (endpoint.base_url, key.revoked_at) == ("http://127.0.0.1:9/v1", None)
    assert ModelEndpoint.objects.count() == 1


def test_the_key_service_refuses_a_member_of_another_tenant(in_tenant_a, tenant_b, make_member):
    stranger = make_member(tenant_b, "sec-stranger", ["operator"])
    with pytest.raises(NotAMember):
        runtime_key_create(actor=stranger, name="smuggled")


@pytest.mark.parametrize("variable", PLATFORM_VARIABLES)
def test_an_endpoint_may_not_name_a_platform_variable_as_its_api_key(operator, model_server, variable):
    with pytest.raises(InvalidModelEndpoint) as refused, transaction.atomic():
        model_endpoint_create(
            actor=operator,
            name="leaky",
            base_url=model_server.base_url,
            allowed_models=["dev-model"],
            api_key_env=variable,
        )
    assert refused.value.details == [{"field": "api_key_env", "code": "invalid", "message": BAD_API_KEY_ENV}]
    endpoint = model_endpoint_create(
        actor=operator, name="fine", base_url=model_server.base_url, allowed_models=["dev-model"]
    )
    with pytest.raises(InvalidModelEndpoint), transaction.atomic():
        model_endpoint_update(actor=operator, endpoint=endpoint, changes={"api_key_env": variable})
    assert not ModelEndpoint.objects.filter(api_key_env=variable).exists()


def test_an_api_key_variable_is_accepted_and_its_value_sent_to_the_endpoint(
    operator, model_server, monkeypatch
):
    monkeypatch.setenv("TEAM_MODEL_API_KEY", "sk-team-key")
    model_endpoint_create(
        actor=operator,
        name="team",
        base_url=model_server.base_url,
        allowed_models=["dev-model"],
        api_key_env="TEAM_MODEL_API_KEY",
    )
    assert endpoint_models.model_for("team")(model_request()).text == '{"queue": "auto"}'
    assert model_server.authorizations == ["Bearer sk-team-key"]


@pytest.mark.parametrize("variable", PLATFORM_VARIABLES)
def test_the_runtime_never_sends_a_platform_variable_an_endpoint_row_names(
    in_tenant_a, model_server, monkeypatch, variable
):
    monkeypatch.setenv(variable, PLATFORM_SECRET)
    # A row written before names were restricted (or by hand): the runtime must refuse it on its own.
    ModelEndpoint.objects.create(
        name="leaky", base_url=model_server.base_url, allowed_models=["dev-model"], api_key_env=variable
    )
    with pytest.raises(ModelError) as failed:
        endpoint_models.model_for("leaky")(model_request())
    assert str(failed.value) == API_KEY_ENV_NOT_ALLOWED.format(variable=variable, name="leaky")
    assert model_server.authorizations == []


def test_a_platform_may_give_each_tenant_its_own_key_variables(operator, model_server, monkeypatch):
    per_tenant = {
        **settings.CONTRACTOR,
        "MODEL_API_KEY_ENV_PATTERN": r"\ACONTRACTOR_{tenant}_[A-Z0-9_]*API_KEY\Z",
    }
    monkeypatch.setenv("CONTRACTOR_BETA_API_KEY", "sk-beta-only")
    with override_settings(CONTRACTOR=per_tenant):
        with pytest.raises(InvalidModelEndpoint), transaction.atomic():
            model_endpoint_create(
                actor=operator,
                name="borrowed",
                base_url=model_server.base_url,
                allowed_models=["dev-model"],
                api_key_env="CONTRACTOR_BETA_API_KEY",
            )
        own = model_endpoint_create(
            actor=operator,
            name="own",
            base_url=model_server.base_url,
            allowed_models=["dev-model"],
            api_key_env="CONTRACTOR_ALPHA_API_KEY",
        )
    assert own.api_key_env == "CONTRACTOR_ALPHA_API_KEY"
