"""OpenAICompatibleProvider against the real dev model server (and a real misbehaving one) on loopback."""

from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest

from bundles.language.archive import read_directory
from bundles.language.checks import validate_files
from bundles.language.compiler import compile_bundle
from bundles.language.execution import execute
from bundles.language.models import ModelError, ModelRequest, ModelResponse
from devmodel.server import DevModelSettings, load_rules, serve_in_background
from runtime.providers import (
    BAD_BASE_URL_MESSAGE,
    HTTP_STATUS_MESSAGE,
    MALFORMED_RESPONSE_MESSAGE,
    MODEL_NAME_MISSING_MESSAGE,
    MODEL_NOT_ALLOWED_MESSAGE,
    NO_CHOICES,
    NO_CONTENT,
    NOT_JSON,
    UNREACHABLE_MESSAGE,
    MalformedProviderResponse,
    ModelNameMissing,
    ModelNotAllowed,
    OpenAICompatibleProvider,
    ProviderConfigurationError,
    ProviderConnectionFailed,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnreachable,
    chat_request_body,
    parse_chat_completion,
)

API_KEY = "sk-dev-VERY-SECRET-0123456789"
WRONG_KEY = "sk-dev-WRONG-SECRET-9876543210"
CLAIMS_SYSTEM = 'You route insurance claims. Answer only with JSON {"queue": "...", "reason": "..."}.'
SLOW_SECONDS = 5.0
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def claim_request(
    model: str = "small-model", description: str = "rear-ended at a stop light"
) -> ModelRequest:
    """Return the model request the claims-triage pipeline makes."""
    params = {"endpoint": "default", "name": model, "temperature": 0, "seed": 7, "max_tokens": 256}
    return ModelRequest(system=CLAIMS_SYSTEM, prompt=f"Claim C1 for 1200: {description}", params=params)


@pytest.fixture(scope="module")
def dev_model():
    """Run the dev model requiring API_KEY, with dev-slow sleeping SLOW_SECONDS."""
    settings = DevModelSettings(rulebook=load_rules(), api_key=API_KEY, slow_seconds=SLOW_SECONDS)
    with serve_in_background(settings) as running:
        yield running


@pytest.fixture
def provider(dev_model):
    """Return a provider for the dev model with the right key."""
    with OpenAICompatibleProvider(dev_model.base_url, API_KEY, timeout_seconds=5.0) as model:
        yield model


@pytest.fixture
def closed_port() -> int:
    """Return a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _CannedHandler(BaseHTTPRequestHandler):
    """Answer every POST with the server's canned status and body (a provider we do not own, misbehaving)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.canned
        if status is None:
            self.connection.shutdown(socket.SHUT_RDWR)  # hang up without answering
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def canned_server():
    """Return a function that starts a loopback server answering a fixed (status, body); its base URL."""
    servers = []

    def start(status: int | None, body: bytes = b"") -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
        server.canned = (status, body)
        Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_disallowed_model_is_refused_before_any_call(closed_port):
    unreachable = OpenAICompatibleProvider(
        f"http://127.0.0.1:{closed_port}/v1", API_KEY, 1.0, ["small-model"]
    )
    with pytest.raises(ModelNotAllowed) as raised:
        unreachable(claim_request(model="gpt-4o"))
    assert str(raised.value) == MODEL_NOT_ALLOWED_MESSAGE.format(model="gpt-4o")
    assert isinstance(raised.value, ModelError)


def test_a_request_without_a_model_name_is_refused(provider):
    request = ModelRequest(system="", prompt="x", params={"temperature": 0})
    with pytest.raises(ModelNameMissing) as raised:
        provider(request)
    assert str(raised.value) == MODEL_NAME_MISSING_MESSAGE


def test_a_wrong_key_is_an_http_error_that_never_shows_the_key(dev_model):
    with (
        OpenAICompatibleProvider(dev_model.base_url, WRONG_KEY, 5.0) as wrong,
        pytest.raises(ProviderHTTPError) as raised,
    ):
        wrong(claim_request())
    assert str(raised.value) == HTTP_STATUS_MESSAGE.format(status=401)
    assert raised.value.status_code == 401
    for text in (str(raised.value), repr(raised.value), repr(wrong), str(raised.value.__cause__)):
        assert WRONG_KEY not in text
        assert API_KEY not in text


def test_the_dev_model_answer_is_returned_with_its_token_counts(provider):
    response = provider(claim_request())
    assert isinstance(response, ModelResponse)
    assert json.loads(response.text) == {"queue": "auto", "reason": "collision"}
    assert response.prompt_tokens == len(CLAIMS_SYSTEM.split()) + len(claim_request().prompt.split())
    assert response.completion_tokens == len(response.text.split())


def test_the_same_request_gives_the_same_response(provider):
    assert provider(claim_request(description="kitchen fire")) == provider(
        claim_request(description="kitchen fire")
    )


def test_allowed_models_let_the_listed_model_through(dev_model):
    with OpenAICompatibleProvider(dev_model.base_url, API_KEY, 5.0, allowed_models=["dev-echo"]) as model:
        assert model(claim_request(model="dev-echo")).text == "Claim C1 for 1200: rear-ended at a stop light"


def test_http_500_from_the_provider_is_a_model_error(provider):
    with pytest.raises(ProviderHTTPError) as raised:
        provider(claim_request(model="dev-error"))
    assert str(raised.value) == HTTP_STATUS_MESSAGE.format(status=500)
    assert raised.value.status_code == 500


def test_a_slow_provider_times_out_quickly(dev_model):
    with OpenAICompatibleProvider(dev_model.base_url, API_KEY, timeout_seconds=0.3) as impatient:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout) as raised:
            impatient(claim_request(model="dev-slow"))
        elapsed = time.monotonic() - started
    assert str(raised.value) == UNREACHABLE_MESSAGE == "the endpoint could not be reached"
    assert elapsed < 2.0
    assert API_KEY not in str(raised.value)


def test_a_refused_connection_is_a_model_error(closed_port):
    absent = OpenAICompatibleProvider(f"http://127.0.0.1:{closed_port}/v1", API_KEY, 2.0)
    with absent, pytest.raises(ProviderUnreachable) as raised:
        absent(claim_request())
    assert str(raised.value) == UNREACHABLE_MESSAGE
    assert API_KEY not in str(raised.value)


def test_a_provider_hanging_up_mid_request_is_a_model_error(canned_server):
    with (
        OpenAICompatibleProvider(canned_server(None), API_KEY, 2.0) as rude,
        pytest.raises(ProviderConnectionFailed) as raised,
    ):
        rude(claim_request())
    assert str(raised.value) == UNREACHABLE_MESSAGE


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>oops</html>", NOT_JSON),
        (b'{"object": "chat.completion", "choices": []}', NO_CHOICES),
        (b'{"choices": [{"message": {"role": "assistant", "content": null}}]}', NO_CONTENT),
    ],
)
def test_a_2xx_answer_that_is_not_a_chat_completion_is_malformed(canned_server, body, reason):
    with (
        OpenAICompatibleProvider(canned_server(200, body), None, 2.0) as odd,
        pytest.raises(MalformedProviderResponse) as raised,
    ):
        odd(claim_request())
    assert str(raised.value) == MALFORMED_RESPONSE_MESSAGE.format(reason=reason)


def test_missing_or_odd_usage_gives_unknown_token_counts():
    body = {
        "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": True, "completion_tokens": -1},
    }
    assert parse_chat_completion(json.dumps(body).encode()) == ModelResponse("hi", None, None)


def test_the_request_body_carries_system_prompt_and_sampling_params():
    body = chat_request_body("small-model", claim_request())
    assert body == {
        "model": "small-model",
        "messages": [
            {"role": "system", "content": CLAIMS_SYSTEM},
            {"role": "user", "content": "Claim C1 for 1200: rear-ended at a stop light"},
        ],
        "temperature": 0,
        "seed": 7,
        "max_tokens": 256,
    }


def test_an_empty_system_prompt_is_not_sent():
    body = chat_request_body("m", ModelRequest(system="", prompt="p", params={"name": "m", "seed": None}))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "p"}]}


def test_a_base_url_that_is_not_http_is_refused():
    with pytest.raises(ProviderConfigurationError) as raised:
        OpenAICompatibleProvider("ftp://example/v1", None, 1.0)
    assert str(raised.value) == BAD_BASE_URL_MESSAGE


def example_cases() -> list[tuple[str, str, str, dict]]:
    """Return (bundle directory, pipeline, case name, input) of every example case that reaches the model.

    A case with a recorded `model_output` is one its author expects to pass the pre policies.
    """
    cases = []
    for directory in sorted(EXAMPLES.iterdir()):
        content = validate_files(read_directory(directory)).content
        for path in sorted(content):
            if path.startswith("suites/"):
                suite = content[path]
                cases += [
                    (directory.name, suite["pipeline"], case["name"], case["input"])
                    for case in suite["cases"]
                    if "model_output" in case
                ]
    return cases


class CountingModel:
    """Pass every request to `model` and count the calls."""

    def __init__(self, model):
        self.model = model
        self.calls = 0

    def __call__(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return self.model(request)


@pytest.mark.parametrize(("bundle", "pipeline", "case", "record"), example_cases())
def test_the_dev_model_answers_every_example_pipeline_in_its_output_shape(
    provider, bundle, pipeline, case, record
):
    result = validate_files(read_directory(EXAMPLES / bundle))
    model = CountingModel(provider)
    decision = execute(compile_bundle(result.content), pipeline, record, model).to_dict()
    assert model.calls == 1, decision
    # The answer parsed and validated as the output entity; a post policy may still deny it.
    assert decision["status"] in ("allowed", "denied"), decision


@pytest.mark.parametrize(
    ("bundle", "pipeline", "record", "denied_by"),
    [
        (
            "claims-triage",
            "triage",
            {"claim_id": "C6", "amount": 900, "description": "staged rear-end collision"},
            "allowed-queues",
        ),
        (
            "support-routing",
            "route",
            {
                "ticket_id": "T-1004",
                "subject": "Cancel my account",
                "body": "or I dispute the charge",
                "tier": "free",
            },
            "no-free-tier-escalation",
        ),
    ],
)
def test_the_dev_model_shows_the_post_policy_denials_of_the_examples(
    provider, bundle, pipeline, record, denied_by
):
    result = validate_files(read_directory(EXAMPLES / bundle))
    decision = execute(compile_bundle(result.content), pipeline, record, provider).to_dict()
    assert (decision["status"], decision["denied_by"]) == ("denied", denied_by)
