"""The model provider under the production egress default: refused destinations never see a byte, and every
failure to reach an endpoint reads the same, so that endpoints cannot be used to scan the private network."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest
from django.conf import settings
from django.test import override_settings

import core.egress
from bundles.language.archive import read_directory
from bundles.language.checks import validate_files
from bundles.language.compiler import compile_bundle
from bundles.language.decisions import MODEL_FAILED
from bundles.language.execution import execute
from bundles.language.models import ModelError, ModelRequest
from core.egress import EGRESS_REFUSED, ENDPOINT_UNREACHABLE, EgressPolicy
from runtime.endpoint_models import model_for
from runtime.models import ModelEndpoint
from runtime.providers import (
    BAD_BASE_URL_MESSAGE,
    REFUSED_MESSAGE,
    UNREACHABLE_MESSAGE,
    OpenAICompatibleProvider,
    ProviderConfigurationError,
    ProviderConnectionFailed,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnreachable,
)
from tests.core.test_egress_connections import LOOPBACK_SPELLINGS, accepted_count, listener
from tests.runtime.test_providers import EXAMPLES

API_KEY = "sk-egress-SECRET-0123456789"
PRODUCTION = EgressPolicy()
REQUEST = ModelRequest(system="", prompt="hello", params={"name": "dev-echo"})
SMALL_CLAIM = {"claim_id": "C1", "amount": 1200, "description": "rear-ended at a stop light"}


def failure_of(url: str, policy: EgressPolicy, timeout: float = 2.0) -> ModelError:
    """Return the error one call of a provider for `url` under `policy` raises."""
    with OpenAICompatibleProvider(url, API_KEY, timeout, egress=policy) as provider:
        try:
            provider(REQUEST)
        except ModelError as error:
            return error
    pytest.fail(f"{url} answered")


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_refused_before_connecting(host):
    with listener() as sock:
        failure = failure_of(f"http://{host}:{sock.getsockname()[1]}/v1", PRODUCTION)
        assert accepted_count(sock) == 0
    assert isinstance(failure, ProviderRefused)
    assert str(failure) == REFUSED_MESSAGE == EGRESS_REFUSED == "refused by egress policy"


def test_ipv6_loopback_is_refused_before_connecting():
    with listener("::1") as sock:
        failure = failure_of(f"http://[::1]:{sock.getsockname()[1]}/v1", PRODUCTION)
        assert accepted_count(sock) == 0
    assert isinstance(failure, ProviderRefused)


def test_an_octal_host_the_client_cannot_parse_never_becomes_a_provider():
    with listener() as sock:
        with pytest.raises(ProviderConfigurationError) as raised:
            OpenAICompatibleProvider(f"http://0177.0.0.1:{sock.getsockname()[1]}/v1", API_KEY, 2.0)
        assert accepted_count(sock) == 0
    assert str(raised.value) == BAD_BASE_URL_MESSAGE


def test_a_name_resolving_to_loopback_is_refused_before_connecting(monkeypatch):
    lookups = []

    def fake_dns(host: str, port: int):
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(core.egress, "resolve", fake_dns)
    with listener() as sock:
        failure = failure_of(f"http://models.example:{sock.getsockname()[1]}/v1", PRODUCTION)
        assert accepted_count(sock) == 0
    assert isinstance(failure, ProviderRefused)
    assert lookups == ["models.example"]


@pytest.fixture
def silent_port():
    """Return a loopback port that accepts connections and never answers."""
    with listener() as sock:
        yield sock.getsockname()[1]


@pytest.fixture
def hanging_up_port():
    """Return a loopback port whose server reads the request and hangs up without answering."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)

        def serve():
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(65536)
                    connection.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=serve, daemon=True).start()
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_reset_unresolvable_and_silent_endpoints_read_the_same(
    monkeypatch, closed_port, hanging_up_port, silent_port
):
    def no_such_name(host: str, port: int):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(core.egress, "resolve", no_such_name)
    loopback = EgressPolicy.from_entries(["127.0.0.0/8"])
    cases = [
        (f"http://127.0.0.1:{closed_port}/v1", ProviderUnreachable),
        (f"http://127.0.0.1:{hanging_up_port}/v1", ProviderConnectionFailed),
        ("http://no-such-name.example/v1", ProviderUnreachable),
        (f"http://127.0.0.1:{silent_port}/v1", ProviderTimeout),
    ]
    failures = [failure_of(url, loopback, timeout=0.5) for url, _ in cases]
    assert [type(failure) for failure in failures] == [kind for _, kind in cases]
    assert [str(failure) for failure in failures] == [UNREACHABLE_MESSAGE] * 4
    assert UNREACHABLE_MESSAGE == ENDPOINT_UNREACHABLE == "the endpoint could not be reached"


def test_a_decision_with_a_refused_endpoint_records_the_neutral_text(in_tenant_a):
    with listener() as sock:
        # A row saved before the policy existed (the services refuse such a URL now).
        ModelEndpoint.objects.create(
            name="saved-before-the-policy",
            base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1",
            allowed_models=["dev-model"],
            timeout_seconds=2.0,
        )
        with override_settings(CONTRACTOR={**settings.CONTRACTOR, "EGRESS_ALLOW": []}):
            model = model_for("saved-before-the-policy")
            bundle = compile_bundle(validate_files(read_directory(EXAMPLES / "claims-triage")).content)
            decision = execute(bundle, "triage", SMALL_CLAIM, model)
        assert accepted_count(sock) == 0
    assert (decision.status, decision.reason) == ("error", MODEL_FAILED.format(reason=EGRESS_REFUSED))
