"""Bounds on one runtime process: model calls in flight per tenant and per endpoint, key failures per source.

Concurrency (per process, in memory). A slow model holds a worker thread for up to its timeout; without a
bound, one tenant's slow endpoint could hold every thread of a process and starve everyone else. So a model
call first takes a slot of its tenant (RUNTIME_TENANT_CONCURRENCY) and of its (tenant, endpoint)
(RUNTIME_ENDPOINT_CONCURRENCY); when either is full the call is not made and fails with ModelBusy, which the
engine records like any model failure (one decision record, status `error`, reason `model call failed:
tenant_busy: ...`) and the door answers 429 `tenant_busy` with Retry-After. The bounds are per process on
purpose: what they protect is that process's threads, they cost no round trip, and they cannot be left held
by a process that died. With W processes a tenant may hold up to W x RUNTIME_TENANT_CONCURRENCY calls.

Key failures (Redis, shared by every process). Invalid runtime keys are counted per source address (an IPv6
source by its /64, which one client usually owns whole) in a fixed window: one Redis key per source and
window, expiring with the window, so an attacker cannot make it grow beyond the sources it sends from within
one window. At RUNTIME_KEY_FAILURE_LIMIT failures every request from that source is answered 429
`too_many_key_failures` until the window ends, valid key or not (otherwise the throttle would tell a correct
guess apart). Redis unavailable: no throttling (keys are still checked), and a warning is logged.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import Counter
from collections.abc import Hashable

import redis
from django.conf import settings

from bundles.language.decisions import model_failure
from bundles.language.models import Model, ModelError, ModelRequest, ModelResponse
from runtime.conf import runtime_setting

logger = logging.getLogger(__name__)

TENANT_BUSY = "tenant_busy"
# Recorded as the model's failure; the door recognises it by this prefix.
BUSY_REASON = TENANT_BUSY + ": {count} model calls of this {scope} are already in flight in this process"
KEY_FAILURE_PREFIX = "contractor:runtime:key-failures:"
REDIS_TIMEOUT_SECONDS = 0.25
IPV6_SOURCE_PREFIX = 64


class ModelBusy(ModelError):
    """The tenant or the endpoint has as many model calls in flight as it may: this one was not made."""


class ConcurrencyLimit:
    """Count calls in flight per key and refuse one above its limit (thread-safe, never blocks)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._in_flight: Counter[Hashable] = Counter()

    def acquire(self, limits: dict[Hashable, int]) -> Hashable | None:
        """Take one slot of every key in `limits`; return the first full key (nothing taken) or None."""
        with self._lock:
            for key, limit in limits.items():
                if self._in_flight[key] >= limit:
                    return key
            for key in limits:
                self._in_flight[key] += 1
        return None

    def release(self, keys) -> None:
        """Give back one slot of every key (forgetting keys with none in flight)."""
        with self._lock:
            for key in keys:
                self._in_flight[key] -= 1
                if self._in_flight[key] <= 0:
                    del self._in_flight[key]

    def in_flight(self, key: Hashable) -> int:
        """Return how many calls of `key` are in flight."""
        with self._lock:
            return self._in_flight[key]


_model_calls = ConcurrencyLimit()


class BoundedModel:
    """A model whose calls count against the tenant's and the endpoint's concurrency limits."""

    def __init__(self, model: Model, *, tenant: str, endpoint: str):
        self.model = model
        self.tenant_key = ("tenant", tenant)
        self.endpoint_key = ("endpoint", tenant, endpoint)

    def __call__(self, request: ModelRequest) -> ModelResponse:
        """Call the model in a free slot; raise ModelBusy when the tenant or the endpoint has none."""
        limits = {
            self.tenant_key: int(runtime_setting("RUNTIME_TENANT_CONCURRENCY")),
            self.endpoint_key: int(runtime_setting("RUNTIME_ENDPOINT_CONCURRENCY")),
        }
        full = _model_calls.acquire(limits)
        if full is not None:
            raise ModelBusy(BUSY_REASON.format(count=limits[full], scope=full[0]))
        try:
            return self.model(request)
        finally:
            _model_calls.release(limits)


def bounded(model: Model, *, tenant: str, endpoint: str) -> Model:
    """Return `model` bounded by the concurrency limits of `tenant` and its `endpoint`."""
    return BoundedModel(model, tenant=tenant, endpoint=endpoint)


def is_busy_reason(reason: str | None) -> bool:
    """Return whether a recorded decision's reason says the model call was refused as busy."""
    failure = model_failure(reason)
    return failure is not None and failure.startswith(TENANT_BUSY + ":")


def busy_retry_after() -> int:
    """Return the Retry-After (seconds) of a `tenant_busy` answer."""
    return max(1, int(runtime_setting("RUNTIME_BUSY_RETRY_AFTER")))


# --- key failures per source -------------------------------------------------------------------------------

_redis_lock = threading.Lock()
_redis_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    """Return the process's Redis client (short timeouts: a throttle must never stall an execution)."""
    global _redis_client
    with _redis_lock:
        if _redis_client is None:
            _redis_client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        return _redis_client


def key_failure_source(remote_addr: str) -> str:
    """Return the source key failures are counted by: the address, or the /64 of an IPv6 address."""
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SOURCE_PREFIX), strict=False))
    return str(address)


def key_failures_retry_after(source: str) -> int | None:
    """Return the seconds until `source` may try keys again, or None when it is not throttled."""
    counter = KEY_FAILURE_PREFIX + source
    try:
        with redis_client().pipeline(transaction=False) as pipe:
            count, ttl = pipe.get(counter).ttl(counter).execute()
    except redis.RedisError as error:
        logger.warning("runtime: key failures not checked (Redis: %s)", error.__class__.__name__)
        return None
    if count is None or int(count) < int(runtime_setting("RUNTIME_KEY_FAILURE_LIMIT")):
        return None
    return max(1, int(ttl)) if ttl and ttl > 0 else int(runtime_setting("RUNTIME_KEY_FAILURE_WINDOW"))


def count_key_failure(source: str) -> int:
    """Count one invalid runtime key from `source` in the current window (which starts at its first); return
    the window's count so far (0 when Redis did not answer)."""
    counter = KEY_FAILURE_PREFIX + source
    window = int(runtime_setting("RUNTIME_KEY_FAILURE_WINDOW"))
    try:
        with redis_client().pipeline(transaction=True) as pipe:
            count, _ = pipe.incr(counter).expire(counter, window, nx=True).execute()
    except redis.RedisError as error:
        logger.warning("runtime: key failure not counted (Redis: %s)", error.__class__.__name__)
        return 0
    if count == int(runtime_setting("RUNTIME_KEY_FAILURE_LIMIT")):
        logger.warning(
            "runtime: source %s throttled after %s invalid runtime keys in %s s", source, count, window
        )
    return int(count)
