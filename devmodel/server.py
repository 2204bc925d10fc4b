"""Deterministic OpenAI-compatible chat-completions server for demos, tests and benchmarks.

Standard library only. Start it with ``python -m devmodel --host 127.0.0.1 --port 8002 [--rules FILE]``.

Endpoints
    ``POST /v1/chat/completions``  OpenAI request and response shape (non-streaming).
    ``GET  /v1/models``            the special models plus ``dev-model``.
    ``GET  /healthz``              ``{"status": "ok"}``, never authenticated.

The answer is a pure function of (model name, messages) for a given rules file; every other request field
(temperature, seed, max_tokens, ...) is accepted and ignored:

    ``dev-echo``   answers the content of the last ``user`` message verbatim ("" when there is none).
    ``dev-error``  answers HTTP 500 with an OpenAI error body (``type: server_error``, ``code: dev_error``).
    ``dev-slow``   sleeps ``DEV_MODEL_SLOW_SECONDS`` (default 5, read at start-up) then answers like any other
                   model.
    any other      the rules: the contents of the ``system`` (and ``developer``) and ``user`` messages,
                   in order, joined with a newline, are searched with each rule's ``match`` regex
                   (case-insensitive, ``.`` also matches newlines); the first rule that matches gives the
                   answer, otherwise the rules file's ``default``.

The rules file (``devmodel/rules.json`` unless ``--rules``) is a JSON object
``{"rules": [{"match": "<regex>", "answer": "<text>"}, ...], "default": "<text>"}``.

The response is deterministic too: ``id`` is ``chatcmpl-`` plus the first 24 hex digits of the SHA-256 of the
canonical JSON of ``{"model", "messages"}``, ``created`` is the fixed ``CREATED_AT`` epoch,
``system_fingerprint`` identifies the rules file, ``finish_reason`` is ``stop`` and usage counts
whitespace-separated words: ``prompt_tokens`` over the contents of all messages, ``completion_tokens``
over the answer.

Authentication: when ``DEV_MODEL_API_KEY`` is set, ``Authorization: Bearer <key>`` must match (401 otherwise);
when it is not set, any ``Authorization`` header is accepted and ignored.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.json")
DEFAULT_SLOW_SECONDS = 5.0
API_KEY_ENV = "DEV_MODEL_API_KEY"
SLOW_SECONDS_ENV = "DEV_MODEL_SLOW_SECONDS"

ECHO_MODEL = "dev-echo"
ERROR_MODEL = "dev-error"
SLOW_MODEL = "dev-slow"
RULES_MODEL = "dev-model"
LISTED_MODELS = (RULES_MODEL, ECHO_MODEL, ERROR_MODEL, SLOW_MODEL)
PROMPT_ROLES = frozenset({"system", "developer", "user"})

CREATED_AT = 1704067200  # 2024-01-01T00:00:00Z: a fixed "created" keeps responses reproducible.
MAX_BODY_BYTES = 8 * 1024 * 1024
OWNER = "contractor-dev"

INVALID_JSON_MESSAGE = "Request body is not valid JSON."
NOT_AN_OBJECT_MESSAGE = "Request body must be a JSON object."
MODEL_MISSING_MESSAGE = "'model' must be a non-empty string."
MESSAGES_MISSING_MESSAGE = "'messages' must be a non-empty list of objects with a 'role'."
CONTENT_INVALID_MESSAGE = "Message content must be a string, null or a list of text parts."
STREAM_UNSUPPORTED_MESSAGE = "Streaming is not supported by the dev model."
LENGTH_REQUIRED_MESSAGE = "Content-Length is required."
BODY_TOO_LARGE_MESSAGE = "Request body is too large."
UNAUTHORIZED_MESSAGE = "Incorrect API key provided."
NOT_FOUND_MESSAGE = "Unknown path."
METHOD_NOT_ALLOWED_MESSAGE = "Method not allowed."
DEV_ERROR_MESSAGE = "The dev-error model always fails."
RULES_NOT_READABLE_MESSAGE = "cannot read rules file {path}: {reason}"
RULES_INVALID_MESSAGE = "invalid rules file {path}: {reason}"
BIND_FAILED_MESSAGE = "devmodel: cannot listen on {host}:{port}: {reason}"
SERVING_MESSAGE = "devmodel: serving {base_url} (rules {rules})"
SLOW_SECONDS_INVALID_MESSAGE = "{name} must be a number, not {value!r}"


class RulesFileError(ValueError):
    """The rules file cannot be read or does not have the documented shape."""


class ChatRequestError(ValueError):
    """The request body is not a chat-completions request the dev model understands."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.message = message
        self.status = status


class SimulatedModelFailure(RuntimeError):
    """The ``dev-error`` model was asked: it always fails."""


@dataclass(frozen=True)
class Rule:
    """One ordered rule: when ``pattern`` is found in the prompt text, answer ``answer``."""

    pattern: re.Pattern[str]
    answer: str


@dataclass(frozen=True)
class RuleBook:
    """The ordered rules, the default answer and a fingerprint of the file they came from."""

    rules: tuple[Rule, ...]
    default: str
    fingerprint: str

    def answer_for(self, text: str) -> str:
        """Return the answer of the first rule matching ``text``, else the default."""
        for rule in self.rules:
            if rule.pattern.search(text):
                return rule.answer
        return self.default


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat-completions request that decide the answer."""

    model: str
    messages: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class DevModelSettings:
    """Everything the server needs besides the request: rules, optional API key, dev-slow delay."""

    rulebook: RuleBook
    api_key: str | None = None
    slow_seconds: float = DEFAULT_SLOW_SECONDS


def load_rules(path: str | Path = DEFAULT_RULES_PATH) -> RuleBook:
    """Return the rule book read from the JSON rules file at ``path``."""
    try:
        raw = Path(path).read_bytes()
        document = json.loads(raw)
    except (OSError, ValueError) as error:
        raise RulesFileError(RULES_NOT_READABLE_MESSAGE.format(path=path, reason=error)) from error
    return parse_rules(document, source=str(path), fingerprint=hashlib.sha256(raw).hexdigest()[:12])


def parse_rules(document: Any, *, source: str = "<rules>", fingerprint: str = "") -> RuleBook:
    """Return the rule book described by a parsed rules document."""

    def invalid(reason: str) -> RulesFileError:
        return RulesFileError(RULES_INVALID_MESSAGE.format(path=source, reason=reason))

    if not isinstance(document, dict):
        raise invalid("top level must be an object")
    entries = document.get("rules", [])
    default = document.get("default")
    if not isinstance(entries, list):
        raise invalid("'rules' must be a list")
    if not isinstance(default, str):
        raise invalid("'default' must be a string")
    rules = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise invalid(f"rules[{index}].match must be a string")
        if not isinstance(entry.get("answer"), str):
            raise invalid(f"rules[{index}].answer must be a string")
        try:
            pattern = re.compile(entry["match"], re.IGNORECASE | re.DOTALL)
        except re.error as error:
            raise invalid(f"rules[{index}].match is not a valid regex: {error}") from error
        rules.append(Rule(pattern=pattern, answer=entry["answer"]))
    return RuleBook(rules=tuple(rules), default=default, fingerprint=fingerprint)


def parse_chat_request(body: bytes) -> ChatRequest:
    """Return the model and messages of a chat-completions request body."""
    try:
        document = json.loads(body)
    except ValueError:
        raise ChatRequestError(INVALID_JSON_MESSAGE) from None
    if not isinstance(document, dict):
        raise ChatRequestError(NOT_AN_OBJECT_MESSAGE)
    model = document.get("model")
    messages = document.get("messages")
    if not isinstance(model, str) or not model:
        raise ChatRequestError(MODEL_MISSING_MESSAGE)
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError(MESSAGES_MISSING_MESSAGE)
    if not all(isinstance(message, dict) and isinstance(message.get("role"), str) for message in messages):
        raise ChatRequestError(MESSAGES_MISSING_MESSAGE)
    for message in messages:
        message_text(message)
    if document.get("stream"):
        raise ChatRequestError(STREAM_UNSUPPORTED_MESSAGE)
    return ChatRequest(model=model, messages=tuple(messages))


def message_text(message: dict[str, Any]) -> str:
    """Return the text of a message whose content is a string, null or a list of text parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "".join(part["text"] for part in content if isinstance(part.get("text"), str))
    raise ChatRequestError(CONTENT_INVALID_MESSAGE)


def prompt_text(messages: tuple[dict[str, Any], ...]) -> str:
    """Return the system, developer and user contents in order, joined with newlines."""
    return "\n".join(message_text(message) for message in messages if message["role"] in PROMPT_ROLES)


def last_user_text(messages: tuple[dict[str, Any], ...]) -> str:
    """Return the content of the last user message, or "" when there is none."""
    for message in reversed(messages):
        if message["role"] == "user":
            return message_text(message)
    return ""


def word_count(text: str) -> int:
    """Return the number of whitespace-separated words in ``text``."""
    return len(text.split())


def answer(model: str, messages: tuple[dict[str, Any], ...], rulebook: RuleBook) -> str:
    """Return the dev model's answer; raise SimulatedModelFailure for ``dev-error``. Never sleeps."""
    if model == ERROR_MODEL:
        raise SimulatedModelFailure(DEV_ERROR_MESSAGE)
    if model == ECHO_MODEL:
        return last_user_text(messages)
    return rulebook.answer_for(prompt_text(messages))


def completion_id(request: ChatRequest) -> str:
    """Return a completion id derived from the model and messages."""
    canonical = json.dumps(
        {"model": request.model, "messages": list(request.messages)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "chatcmpl-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def chat_completion(request: ChatRequest, content: str, rulebook: RuleBook) -> dict[str, Any]:
    """Return the OpenAI chat.completion object answering ``request`` with ``content``."""
    prompt_tokens = sum(word_count(message_text(message)) for message in request.messages)
    completion_tokens = word_count(content)
    return {
        "id": completion_id(request),
        "object": "chat.completion",
        "created": CREATED_AT,
        "model": request.model,
        "system_fingerprint": f"devmodel-{rulebook.fingerprint}" if rulebook.fingerprint else "devmodel",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """Return an OpenAI error body."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def model_list() -> dict[str, Any]:
    """Return the OpenAI model list of the models with a documented behaviour."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": CREATED_AT, "owned_by": OWNER}
            for name in LISTED_MODELS
        ],
    }


class DevModelHandler(BaseHTTPRequestHandler):
    """Serve the dev model's three endpoints over HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "devmodel/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the Nagle/delayed-ACK stall
    server: DevModelServer

    def do_GET(self) -> None:
        """Answer /healthz and /v1/models."""
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self.send_json(HTTPStatus.OK, {"status": "ok"})
        elif path == "/v1/models":
            if self.authorized():
                self.send_json(HTTPStatus.OK, model_list())
        elif path == "/v1/chat/completions":
            self.send_json(
                HTTPStatus.METHOD_NOT_ALLOWED, error_body(METHOD_NOT_ALLOWED_MESSAGE, "invalid_request_error")
            )
        else:
            self.send_json(HTTPStatus.NOT_FOUND, error_body(NOT_FOUND_MESSAGE, "invalid_request_error"))

    def do_POST(self) -> None:
        """Answer /v1/chat/completions."""
        path = self.path.split("?", 1)[0]
        try:
            body = self.read_body()
        except ChatRequestError as error:
            self.close_connection = True
            self.send_json(error.status, error_body(error.message, "invalid_request_error"))
            return
        if path != "/v1/chat/completions":
            status = (
                HTTPStatus.METHOD_NOT_ALLOWED if path in ("/healthz", "/v1/models") else HTTPStatus.NOT_FOUND
            )
            self.send_json(status, error_body(status.phrase, "invalid_request_error"))
            return
        if self.authorized():
            self.answer_chat(body)

    def answer_chat(self, body: bytes) -> None:
        """Send the completion (or the simulated failure) for a chat-completions body."""
        settings = self.server.settings
        try:
            request = parse_chat_request(body)
            if request.model == SLOW_MODEL:
                time.sleep(settings.slow_seconds)
            content = answer(request.model, request.messages, settings.rulebook)
        except ChatRequestError as error:
            self.send_json(error.status, error_body(error.message, "invalid_request_error"))
            return
        except SimulatedModelFailure as error:
            self.send_json(
                HTTPStatus.INTERNAL_SERVER_ERROR, error_body(str(error), "server_error", "dev_error")
            )
            return
        self.send_json(HTTPStatus.OK, chat_completion(request, content, settings.rulebook))

    def read_body(self) -> bytes:
        """Return the request body; raise ChatRequestError when its length is missing or too large."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ChatRequestError(LENGTH_REQUIRED_MESSAGE, HTTPStatus.LENGTH_REQUIRED)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise ChatRequestError(LENGTH_REQUIRED_MESSAGE, HTTPStatus.LENGTH_REQUIRED) from None
        if length < 0:
            raise ChatRequestError(LENGTH_REQUIRED_MESSAGE, HTTPStatus.LENGTH_REQUIRED)
        if length > MAX_BODY_BYTES:
            raise ChatRequestError(BODY_TOO_LARGE_MESSAGE, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return self.rfile.read(length)

    def authorized(self) -> bool:
        """Return whether the request may proceed; send the 401 answer when it may not."""
        expected = self.server.settings.api_key
        if not expected:
            return True
        scheme, _, presented = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode()):
            return True
        self.send_json(
            HTTPStatus.UNAUTHORIZED,
            error_body(UNAUTHORIZED_MESSAGE, "invalid_request_error", "invalid_api_key"),
        )
        return False

    def send_json(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        """Send ``document`` as a JSON response with a Content-Length."""
        payload = json.dumps(document, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Log one line per request only when the server is verbose."""
        if self.server.verbose:
            super().log_message(format, *args)


class DevModelServer(ThreadingHTTPServer):
    """A threading HTTP server holding the dev model's settings."""

    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 drops connections under benchmark load

    def __init__(self, address: tuple[str, int], settings: DevModelSettings, *, verbose: bool = False):
        self.settings = settings
        self.verbose = verbose
        super().__init__(address, DevModelHandler)

    @property
    def base_url(self) -> str:
        """Return the OpenAI-style base URL of this server (``http://host:port/v1``)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


@contextmanager
def serve_in_background(
    settings: DevModelSettings, host: str = "127.0.0.1", port: int = 0
) -> Iterator[DevModelServer]:
    """Run a dev model server in a daemon thread for the duration of the block (port 0: a free port)."""
    server = DevModelServer((host, port), settings)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="devmodel", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def settings_from_env(
    rules_path: str | Path = DEFAULT_RULES_PATH, environ: Mapping[str, str] = os.environ
) -> DevModelSettings:
    """Return the settings from the rules file and the DEV_MODEL_* environment variables."""
    slow = environ.get(SLOW_SECONDS_ENV, "")
    try:
        slow_seconds = float(slow) if slow else DEFAULT_SLOW_SECONDS
    except ValueError:
        raise RulesFileError(SLOW_SECONDS_INVALID_MESSAGE.format(name=SLOW_SECONDS_ENV, value=slow)) from None
    return DevModelSettings(
        rulebook=load_rules(rules_path), api_key=environ.get(API_KEY_ENV) or None, slow_seconds=slow_seconds
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m devmodel``."""
    parser = argparse.ArgumentParser(
        prog="python -m devmodel", description="Deterministic OpenAI-compatible dev model server."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8002, help="port to bind (default 8002)")
    parser.add_argument(
        "--rules", default=str(DEFAULT_RULES_PATH), help="rules file (default devmodel/rules.json)"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the dev model server until interrupted."""
    options = build_parser().parse_args(argv)
    try:
        settings = settings_from_env(options.rules)
    except RulesFileError as error:
        print(f"devmodel: {error}", file=sys.stderr)
        return 2
    try:
        server = DevModelServer((options.host, options.port), settings, verbose=options.verbose)
    except OSError as error:
        print(BIND_FAILED_MESSAGE.format(host=options.host, port=options.port, reason=error), file=sys.stderr)
        return 1
    print(SERVING_MESSAGE.format(base_url=server.base_url, rules=options.rules), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
