"""The model behind each model endpoint of a tenant: its settings (cached), one provider per configuration.

A pipeline names an endpoint (`model: {endpoint: default, ...}`); `model_for(name)` returns what the engine
calls. An endpoint that is missing or misconfigured still yields a model, one that fails, so the execution
ends in a recorded `error` decision rather than in no decision at all.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from django.db import connection

from bundles.language.models import Model, ModelError, ModelRequest, ModelResponse
from runtime.caches import TTLCache
from runtime.conf import api_key_variable_allowed, cache_seconds, model_timeout_cap
from runtime.exceptions import (
    API_KEY_ENV_NOT_ALLOWED,
    API_KEY_NOT_SET,
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_UNUSABLE,
)
from runtime.models import ModelEndpoint
from runtime.providers import OpenAICompatibleProvider, ProviderConfigurationError

PROVIDER_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """A model endpoint's settings; hashable, so one provider serves each distinct configuration."""

    name: str
    base_url: str
    allowed_models: tuple[str, ...]
    api_key_env: str
    timeout_seconds: float


class UnavailableModel:
    """A model that cannot be called (endpoint missing or misconfigured): the decision becomes `error`."""

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self, request: ModelRequest) -> ModelResponse:
        raise ModelError(self.reason)


_endpoints: TTLCache[EndpointConfig | None] = TTLCache(cache_seconds)
_providers: dict[tuple[EndpointConfig, str | None], OpenAICompatibleProvider] = {}
_providers_lock = threading.Lock()


def clear_caches() -> None:
    """Forget every cached endpoint configuration of this process."""
    _endpoints.clear()


def model_for(endpoint_name: Any) -> Model:
    """Return the model of the tenant's endpoint `endpoint_name` (a provider reused per configuration)."""
    name = str(endpoint_name)
    tenant = connection.schema_name
    config = _endpoints.get_or_load((tenant, name), lambda: load_endpoint(name))
    if config is None:
        return UnavailableModel(ENDPOINT_NOT_CONFIGURED.format(name=name))
    api_key = None
    if config.api_key_env:
        if not api_key_variable_allowed(config.api_key_env, tenant):
            # Never read (and send to an operator-chosen URL) a variable outside the allowed names, whatever
            # the stored row says: it could be the process's own SECRET_KEY or database password.
            return UnavailableModel(API_KEY_ENV_NOT_ALLOWED.format(variable=config.api_key_env, name=name))
        api_key = os.environ.get(config.api_key_env)
        if not api_key:
            return UnavailableModel(API_KEY_NOT_SET.format(variable=config.api_key_env, name=name))
    return provider_for(config, api_key)


def load_endpoint(name: str) -> EndpointConfig | None:
    """Return the configuration of the tenant's endpoint `name`, or None."""
    row = (
        ModelEndpoint.objects.filter(name=name)
        .values_list("name", "base_url", "allowed_models", "api_key_env", "timeout_seconds")
        .first()
    )
    if row is None:
        return None
    endpoint, base_url, allowed, api_key_env, timeout = row
    # Rows stored before the cap existed (or before it was lowered) may hold more: clamp, never exceed it.
    return EndpointConfig(
        endpoint, base_url, tuple(allowed), api_key_env, min(float(timeout), model_timeout_cap())
    )


def provider_for(config: EndpointConfig, api_key: str | None) -> Model:
    """Return the process's provider for this configuration, creating it on first use."""
    cache_key = (config, api_key)
    provider = _providers.get(cache_key)
    if provider is not None:
        return provider
    with _providers_lock:
        provider = _providers.get(cache_key)
        if provider is None:
            try:
                provider = OpenAICompatibleProvider(
                    config.base_url, api_key, config.timeout_seconds, config.allowed_models
                )
            except ProviderConfigurationError as error:
                return UnavailableModel(ENDPOINT_UNUSABLE.format(name=config.name, reason=error))
            if len(_providers) >= PROVIDER_CACHE_SIZE:
                _providers.clear()  # configurations changed a lot; the dropped clients close when collected
            _providers[cache_key] = provider
    return provider
