"""The dev model server, exercised over real HTTP on a free loopback port."""

from __future__ import annotations

import http.client
import json
import time

import httpx
import pytest

from devmodel.server import (
    CREATED_AT,
    DEV_ERROR_MESSAGE,
    MODEL_MISSING_MESSAGE,
    RULES_INVALID_MESSAGE,
    STREAM_UNSUPPORTED_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    DevModelSettings,
    RulesFileError,
    load_rules,
    parse_rules,
    serve_in_background,
)

# The system texts of the example bundles' templates (examples/*/templates/*.yaml).
CLAIMS_SYSTEM = 'You route insurance claims. Answer only with JSON {"queue": "...", "reason": "..."}.'
ROUTE_SYSTEM = (
    "You route customer support tickets to one team: billing, technical, account or escalations.\n"
    'Answer only with JSON: {"team": "<team>", "confidence": <0..1>}.\n'
)
PRIORITY_SYSTEM = (
    "You triage support tickets. Answer only with JSON:\n"
    '{"priority": "low|normal|high|urgent", "summary": "<one sentence, at most 280 characters>"}.\n'
)
SLOW_SECONDS = 0.3


def chat(model: str, *messages: tuple[str, str], **extra) -> dict:
    """Return a chat-completions request body."""
    return {"model": model, "messages": [{"role": role, "content": text} for role, text in messages], **extra}


def claim(description: str) -> dict:
    """Return the request the claims-triage template renders for a claim description."""
    return chat("small-model", ("system", CLAIMS_SYSTEM), ("user", f"Claim C1 for 1200: {description}"))


def ticket(system: str, subject: str) -> dict:
    """Return a support-routing request for a ticket subject."""
    prompt = f"Ticket T-1001 (pro plan)\nSubject: {subject}\n\nSent from my phone."
    return chat("dev-model", ("system", system), ("user", prompt))


def content_of(response: httpx.Response) -> str:
    """Return the assistant message content of a successful completion."""
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def server():
    """Run the dev model with the shipped rules, no key and a short dev-slow delay."""
    settings = DevModelSettings(rulebook=load_rules(), slow_seconds=SLOW_SECONDS)
    with serve_in_background(settings) as running:
        yield running


@pytest.fixture
def client(server):
    """Return an HTTP client bound to the dev model's base URL."""
    with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
        yield http


@pytest.fixture
def keyed_client():
    """Return a client for a dev model that requires the API key 'sekret'."""
    settings = DevModelSettings(rulebook=load_rules(), api_key="sekret")
    with serve_in_background(settings) as running, httpx.Client(base_url=running.base_url) as http:
        yield http


def test_a_missing_bearer_key_is_refused_when_a_key_is_configured(keyed_client):
    response = keyed_client.post("/chat/completions", json=claim("rear-ended"))
    assert response.status_code == 401
    assert response.json()["error"] == {
        "message": UNAUTHORIZED_MESSAGE,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


def test_a_wrong_bearer_key_is_refused_on_every_api_path(keyed_client):
    headers = {"Authorization": "Bearer wrong"}
    assert keyed_client.post("/chat/completions", json=claim("x"), headers=headers).status_code == 401
    assert keyed_client.get("/models", headers=headers).status_code == 401


def test_the_right_bearer_key_is_accepted_and_healthz_needs_none(keyed_client):
    response = keyed_client.post(
        "/chat/completions", json=claim("rear-ended"), headers={"Authorization": "Bearer sekret"}
    )
    assert json.loads(content_of(response)) == {"queue": "auto", "reason": "collision"}
    assert keyed_client.get("http://" + keyed_client.base_url.netloc.decode() + "/healthz").status_code == 200


def test_any_bearer_key_is_ignored_when_no_key_is_configured(client):
    response = client.post(
        "/chat/completions", json=claim("rear-ended"), headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 200


def test_the_same_request_gives_byte_identical_responses(client):
    first = client.post("/chat/completions", json=claim("rear-ended at a stop light"))
    second = client.post("/chat/completions", json=claim("rear-ended at a stop light"))
    assert first.status_code == 200
    assert first.content == second.content
    assert first.json()["created"] == CREATED_AT
    assert first.json()["id"].startswith("chatcmpl-")


def test_the_answer_ignores_sampling_parameters_but_the_id_follows_the_messages(client):
    plain = client.post("/chat/completions", json=claim("rear-ended")).json()
    tuned = client.post(
        "/chat/completions", json={**claim("rear-ended"), "temperature": 1.5, "seed": 3}
    ).json()
    other = client.post("/chat/completions", json=claim("rear-ended twice")).json()
    assert plain == tuned
    assert other["id"] != plain["id"]


def test_the_response_has_the_openai_chat_completion_shape(client):
    body = client.post("/chat/completions", json=claim("rear-ended")).json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "small-model"
    assert body["choices"][0]["index"] == 0
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["system_fingerprint"].startswith("devmodel-")


def test_usage_counts_whitespace_separated_words(client):
    request = chat("dev-echo", ("system", "one two  three"), ("user", "four\tfive\nsix seven"))
    usage = client.post("/chat/completions", json=request).json()["usage"]
    assert usage == {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


def test_dev_echo_answers_the_last_user_message_verbatim(client):
    request = chat(
        "dev-echo",
        ("system", "ignored"),
        ("user", "first"),
        ("assistant", "ignored too"),
        ("user", '  {"queue": "home"}\n  é '),
    )
    assert content_of(client.post("/chat/completions", json=request)) == '  {"queue": "home"}\n  é '


def test_dev_echo_answers_empty_text_without_a_user_message(client):
    response = client.post("/chat/completions", json=chat("dev-echo", ("system", "only a system message")))
    assert content_of(response) == ""
    assert response.json()["usage"]["completion_tokens"] == 0


def test_dev_echo_joins_text_parts_of_a_list_content(client):
    request = {
        "model": "dev-echo",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "b"}]}
        ],
    }
    assert content_of(client.post("/chat/completions", json=request)) == "a b"


def test_dev_error_answers_500_with_an_openai_error_body(client):
    response = client.post("/chat/completions", json=chat("dev-error", ("user", "hello")))
    assert response.status_code == 500
    assert response.json() == {
        "error": {"message": DEV_ERROR_MESSAGE, "type": "server_error", "param": None, "code": "dev_error"}
    }


def test_dev_slow_waits_then_answers_like_the_rules(client):
    started = time.monotonic()
    slow = client.post("/chat/completions", json={**claim("house fire"), "model": "dev-slow"})
    elapsed = time.monotonic() - started
    assert elapsed >= SLOW_SECONDS
    assert json.loads(content_of(slow)) == {"queue": "home", "reason": "property damage"}


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("rear-ended at a stop light", {"queue": "auto", "reason": "collision"}),
        ("Fender bender in a parking lot", {"queue": "auto", "reason": "collision"}),
        ("water leak from the roof", {"queue": "home", "reason": "property damage"}),
        ("KITCHEN FIRE", {"queue": "home", "reason": "property damage"}),
        ("hail dents on the roof of the car", {"queue": "auto", "reason": "vehicle damage"}),
        (
            "third claim this month for the same car",
            {"queue": "fraud-review", "reason": "suspicious pattern"},
        ),
        (
            "staged rear-end collision, suspicious witnesses",
            {"queue": "fraud-review", "reason": "suspicious pattern"},
        ),
        ("lost luggage", {"queue": "auto", "reason": "dev-model default"}),
    ],
)
def test_claims_are_routed_by_the_shipped_rules(client, description, expected):
    assert json.loads(content_of(client.post("/chat/completions", json=claim(description)))) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Please refund the duplicate charge", {"team": "billing", "confidence": 0.9}),
        ("My invoice is wrong", {"team": "billing", "confidence": 0.9}),
        ("The API is down since 9am", {"team": "technical", "confidence": 0.9}),
        ("Every call fails with a 500", {"team": "technical", "confidence": 0.9}),
        ("Cancel my account or I dispute the charge", {"team": "escalations", "confidence": 0.7}),
        ("How do I change my avatar?", {"team": "account", "confidence": 0.5}),
    ],
)
def test_support_tickets_are_routed_to_a_team_by_the_shipped_rules(client, subject, expected):
    assert (
        json.loads(content_of(client.post("/chat/completions", json=ticket(ROUTE_SYSTEM, subject))))
        == expected
    )


@pytest.mark.parametrize(
    ("subject", "priority"),
    [
        ("Outage in eu-west", "high"),
        ("Error when exporting", "high"),
        ("Refund for March", "normal"),
        ("How do I change my avatar?", "low"),
    ],
)
def test_support_tickets_get_a_priority_and_summary_by_the_shipped_rules(client, subject, priority):
    answer = json.loads(content_of(client.post("/chat/completions", json=ticket(PRIORITY_SYSTEM, subject))))
    assert answer["priority"] == priority
    assert set(answer) == {"priority", "summary"}


def test_the_first_matching_rule_wins_case_insensitively_and_default_applies_otherwise():
    rulebook = parse_rules(
        {
            "rules": [{"match": "alpha", "answer": "first"}, {"match": "ALPHA|beta", "answer": "second"}],
            "default": "fallback",
        }
    )
    assert rulebook.answer_for("system\nAlpha and beta") == "first"
    assert rulebook.answer_for("BETA") == "second"
    assert rulebook.answer_for("gamma") == "fallback"


def test_a_custom_rules_file_is_served(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"match": "ping", "answer": "pong"}], "default": "?"}))
    with serve_in_background(DevModelSettings(rulebook=load_rules(rules))) as running:
        response = httpx.post(running.base_url + "/chat/completions", json=chat("m", ("user", "PING")))
    assert content_of(response) == "pong"


def test_an_invalid_regex_in_the_rules_file_is_refused(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"match": "(", "answer": "x"}], "default": ""}))
    with pytest.raises(RulesFileError) as raised:
        load_rules(rules)
    assert str(raised.value).startswith(RULES_INVALID_MESSAGE.format(path=rules, reason="rules[0].match"))


def test_a_request_without_model_is_a_400(client):
    response = client.post("/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == MODEL_MISSING_MESSAGE


def test_invalid_json_and_streaming_are_400(client):
    assert client.post("/chat/completions", content=b"{not json").status_code == 400
    streamed = client.post("/chat/completions", json=chat("dev-echo", ("user", "x"), stream=True))
    assert streamed.status_code == 400
    assert streamed.json()["error"]["message"] == STREAM_UNSUPPORTED_MESSAGE


def test_unknown_paths_are_404_and_wrong_methods_405(client):
    assert client.post("/completions", json={}).status_code == 404
    assert client.get("/chat/completions").status_code == 405


def test_models_and_healthz_answer(server, client):
    models = client.get("/models").json()
    assert [model["id"] for model in models["data"]] == ["dev-model", "dev-echo", "dev-error", "dev-slow"]
    assert httpx.get(server.base_url.removesuffix("/v1") + "/healthz").json() == {"status": "ok"}


def test_one_keep_alive_connection_serves_many_requests_quickly(server):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    body = json.dumps(claim("rear-ended"))
    started = time.monotonic()
    connection.connect()
    first_socket = connection.sock
    for _ in range(200):
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    elapsed = time.monotonic() - started
    assert connection.sock is first_socket
    connection.close()
    assert elapsed < 5.0
