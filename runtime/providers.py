"""Model providers: call an OpenAI-compatible chat-completions server as an engine model.

A provider is the ``model`` callable of ``bundles.language.execution.execute``: it takes a ``ModelRequest``
and returns a ``ModelResponse``, or raises a ``ModelError`` subclass naming the failure in a short reason
("HTTP 500 from provider", ...). Pure Python and httpx: no Django needed, so the runtime, the benchmarks and
the tests use it alike (the egress policy is the deployment's, or public addresses only without Django).

Every connection passes the egress policy (``core.egress``): a refused destination reads "refused by egress
policy", and a refused connection, a reset, a DNS failure and a timeout all read the same "the endpoint could
not be reached", so that endpoints cannot be used to scan the private network; an HTTP answer is reported by
its status only.

Calls are never retried: a chat completion is a non-idempotent POST (it may be billed, and a second answer
could differ). The API key is sent as ``Authorization: Bearer`` and never appears in a log, a ``repr`` or an
exception message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import httpx

from bundles.language.models import ModelError, ModelRequest, ModelResponse
from core.egress import (
    EGRESS_REFUSED,
    ENDPOINT_UNREACHABLE,
    EgressPolicy,
    EgressRefused,
    call_deadline,
    egress_client,
)

USER_AGENT = "contractor-runtime"
CHAT_COMPLETIONS_PATH = "chat/completions"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_CONNECTIONS = 100
FORWARDED_PARAMS = ("temperature", "seed", "max_tokens")
MAX_MODEL_NAME_IN_MESSAGE = 100

HTTP_STATUS_MESSAGE = "HTTP {status} from provider"
MALFORMED_RESPONSE_MESSAGE = "malformed response: {reason}"
UNREACHABLE_MESSAGE = ENDPOINT_UNREACHABLE
REFUSED_MESSAGE = EGRESS_REFUSED
MODEL_NOT_ALLOWED_MESSAGE = "model not allowed: {model}"
MODEL_NAME_MISSING_MESSAGE = "model name missing"
BAD_BASE_URL_MESSAGE = "base_url must be an http or https URL"
BAD_TIMEOUT_MESSAGE = "timeout_seconds must be a positive number"

NOT_JSON = "not JSON"
NO_CHOICES = "no choices"
NO_CONTENT = "no message content"
TOO_LARGE = f"larger than {MAX_RESPONSE_BYTES} bytes"
REDACTED = "[redacted]"


class ProviderConfigurationError(ValueError):
    """The provider was constructed with an unusable base URL or timeout."""


class ModelNotAllowed(ModelError):
    """The requested model name is not in the provider's allowed models."""


class ModelNameMissing(ModelError):
    """The request's params carry no model name."""


class ProviderRefused(ModelError):
    """The egress policy refused every address of the provider; nothing was sent."""


class ProviderTimeout(ModelError):
    """The provider did not answer completely within the timeout."""


class ProviderUnreachable(ModelError):
    """No connection to the provider could be opened (refused, unresolvable, unreachable)."""


class ProviderConnectionFailed(ModelError):
    """The connection broke or the HTTP exchange failed after it was opened."""


class ProviderHTTPError(ModelError):
    """The provider answered with a non-2xx HTTP status."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class MalformedProviderResponse(ModelError):
    """The provider's 2xx answer is not a chat completion with a text message."""


class OpenAICompatibleProvider:
    """Call ``POST {base_url}/chat/completions`` of an OpenAI-compatible server as an engine model.

    ``base_url`` follows the OpenAI SDK convention: the API root including its version, e.g.
    ``https://api.openai.com/v1`` or ``http://127.0.0.1:8002/v1`` for the dev model. ``timeout_seconds``
    bounds connecting, each read and the whole response. ``allowed_models`` (None: any) restricts the model
    names a bundle may ask for. One pooled keep-alive ``httpx.Client`` per instance; instances are thread-safe
    and meant to be reused; ``close()`` releases the connections. ``egress`` (None: the deployment's policy)
    decides which addresses may be connected to.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout_seconds: float,
        allowed_models: Iterable[str] | None = None,
        egress: EgressPolicy | None = None,
    ):
        if not base_url.startswith(("http://", "https://")) or not parsable_url(base_url):
            raise ProviderConfigurationError(BAD_BASE_URL_MESSAGE)
        if isinstance(timeout_seconds, bool) or not timeout_seconds > 0:
            raise ProviderConfigurationError(BAD_TIMEOUT_MESSAGE)
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = float(timeout_seconds)
        self.allowed_models = frozenset(allowed_models) if allowed_models is not None else None
        self._api_key = api_key or None
        self._client = egress_client(
            egress,
            base_url=self.base_url + "/",
            headers=self._headers(),
            timeout=httpx.Timeout(self.timeout_seconds),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        )

    def __call__(self, request: ModelRequest) -> ModelResponse:
        """Return the provider's answer to ``request``; raise a ModelError subclass on any failure."""
        model = self.checked_model_name(request.params)
        status, payload = self._post(chat_request_body(model, request))
        if not 200 <= status < 300:
            raise ProviderHTTPError(HTTP_STATUS_MESSAGE.format(status=status), status)
        return parse_chat_completion(payload)

    def checked_model_name(self, params: dict[str, Any]) -> str:
        """Return the model name of ``params``; raise when it is missing or not allowed."""
        model = params.get("name")
        if not isinstance(model, str) or not model:
            raise ModelNameMissing(MODEL_NAME_MISSING_MESSAGE)
        if self.allowed_models is not None and model not in self.allowed_models:
            shown = model[:MAX_MODEL_NAME_IN_MESSAGE]
            raise ModelNotAllowed(self._scrubbed(MODEL_NOT_ALLOWED_MESSAGE.format(model=shown)))
        return model

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(base_url={self.base_url!r}, timeout_seconds={self.timeout_seconds})"

    def _headers(self) -> dict[str, str]:
        """Return the headers sent with every call."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _post(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """Return the status and body of one POST, within the timeout; translate transport failures."""
        deadline = time.monotonic() + self.timeout_seconds
        try:
            with (
                call_deadline(self.timeout_seconds),
                self._client.stream("POST", CHAT_COMPLETIONS_PATH, json=body) as response,
            ):
                return response.status_code, self._read_body(response, deadline)
        except EgressRefused:
            raise ProviderRefused(REFUSED_MESSAGE) from None
        except httpx.TimeoutException:
            raise ProviderTimeout(UNREACHABLE_MESSAGE) from None
        except httpx.ConnectError:
            raise ProviderUnreachable(UNREACHABLE_MESSAGE) from None
        except httpx.TransportError:
            raise ProviderConnectionFailed(UNREACHABLE_MESSAGE) from None

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        """Return the response body, failing when it is too large or arrives after the deadline."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise MalformedProviderResponse(MALFORMED_RESPONSE_MESSAGE.format(reason=TOO_LARGE))
            if time.monotonic() > deadline:
                raise ProviderTimeout(UNREACHABLE_MESSAGE)
            chunks.append(chunk)
        return b"".join(chunks)

    def _scrubbed(self, message: str) -> str:
        """Return ``message`` with the API key masked, should it ever appear in it."""
        return message.replace(self._api_key, REDACTED) if self._api_key else message


def parsable_url(url: str) -> bool:
    """Return whether httpx can parse `url` (it refuses hosts the C library would accept, e.g. 0177.0.0.1)."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def chat_request_body(model: str, request: ModelRequest) -> dict[str, Any]:
    """Return the chat-completions request body for a model request."""
    messages = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append({"role": "user", "content": request.prompt})
    body: dict[str, Any] = {"model": model, "messages": messages}
    for name in FORWARDED_PARAMS:
        if request.params.get(name) is not None:
            body[name] = request.params[name]
    return body


def parse_chat_completion(payload: bytes) -> ModelResponse:
    """Return the text and token counts of a chat.completion body; raise MalformedProviderResponse."""
    try:
        document = json.loads(payload)
    except ValueError:
        raise MalformedProviderResponse(MALFORMED_RESPONSE_MESSAGE.format(reason=NOT_JSON)) from None
    choices = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedProviderResponse(MALFORMED_RESPONSE_MESSAGE.format(reason=NO_CHOICES))
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise MalformedProviderResponse(MALFORMED_RESPONSE_MESSAGE.format(reason=NO_CONTENT))
    usage = document.get("usage") if isinstance(document.get("usage"), dict) else {}
    return ModelResponse(
        text=content,
        prompt_tokens=token_count(usage.get("prompt_tokens")),
        completion_tokens=token_count(usage.get("completion_tokens")),
    )


def token_count(value: Any) -> int | None:
    """Return a usage count when it is a non-negative integer, else None (usage is optional)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
