"""Writes of the control plane for the runtime: runtime keys (create, revoke) and model endpoints.

Each write is one transaction with its audit record. The runtime process itself never writes here (its role
may only read these tables); a revocation reaches every runtime worker within RUNTIME_CACHE_SECONDS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from audit.services import record
from bundles.models import Bundle
from core.api import field_error
from core.egress import url_refusal
from core.text import unsafe_name
from governance.services import governed_change
from promotions.selectors import access_environment
from runtime.actions import RuntimeAction
from runtime.conf import api_key_variable_allowed, default_model_timeout, model_timeout_cap, runtime_setting
from runtime.exceptions import (
    ENDPOINT_EXISTS,
    KEY_ALREADY_REVOKED,
    KEY_NAME_REQUIRED,
    UNKNOWN_SCOPE_BUNDLES,
    UNSAFE_NAME,
    InvalidKeyName,
    InvalidModelEndpoint,
    KeyAlreadyRevoked,
    ModelEndpointExists,
    UnknownScopeBundles,
)
from runtime.keys import hash_secret, new_key
from runtime.models import ModelEndpoint, RuntimeKey
from tenancy.roles import Capability
from tenancy.selectors import require_capability

ENDPOINT_NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
API_KEY_ENV_PATTERN = re.compile(r"\A[A-Z_][A-Z0-9_]{0,99}\Z")
MAX_KEY_NAME_LENGTH = 100
MAX_MODEL_NAME_LENGTH = 200
ENDPOINT_FIELDS = ("base_url", "allowed_models", "api_key_env", "timeout_seconds")
RUNTIME_KEY_KIND = "runtime.key"
MODEL_ENDPOINT_KIND = "runtime.model_endpoint"

BAD_ENDPOINT_NAME = "lowercase letters, digits and '-', at most 63, starting with a letter or digit"
BAD_BASE_URL = "an absolute http or https URL (the API root, e.g. https://api.example.com/v1)"
BAD_ALLOWED_MODELS = "a non-empty list of model names"
BAD_API_KEY_ENV = (
    "the NAME of an environment variable the platform allows for model API keys (by default one ending in "
    "_API_KEY: A-Z, 0-9, _), never the key itself"
)
# The cap (MODEL_TIMEOUT_CAP) keeps every model call, so every execution, within the worker timeout.
BAD_TIMEOUT = "a number of seconds above 0 and at most {cap:g} (the platform's MODEL_TIMEOUT_CAP)"
UNKNOWN_ENDPOINT_FIELD = "is not a field of a model endpoint"
INVALID = "invalid"  # the code of a field's validation detail
EGRESS_REFUSED_CODE = "egress_refused"


def require(actor, capability: str) -> None:
    """Raise unless `actor` (a user; None is the system) holds `capability` in the current tenant."""
    if actor is not None:
        require_capability(actor, capability)


@dataclass(frozen=True)
class CreatedKey:
    """A new runtime key and its full secret form, which exists only in this object (shown once).

    When the key waits for an admin's approval (a governance change), `key` is None and `change` is the
    pending request: the secret shown now starts working once the change applies.
    """

    key: RuntimeKey | None
    secret: str
    change: Any = None


def runtime_key_create(
    *, actor, name: str, environment: str | None = None, bundles: list[str] | None = None
) -> CreatedKey:
    """Create a runtime key for `environment` (default: current), optionally scoped to `bundles`."""
    require(actor, Capability.MANAGE_RUNTIME_KEYS)
    name = (name or "").strip()
    if not name or len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidKeyName(details=[field_error("name", INVALID, KEY_NAME_REQUIRED)])
    if unsafe := unsafe_name(name):
        message = UNSAFE_NAME.format(reason=unsafe)
        raise InvalidKeyName(message, details=[field_error("name", "unsafe_name", message)])
    target = access_environment(actor, environment or runtime_setting("RUNTIME_DEFAULT_ENVIRONMENT"))
    scope = sorted(set(bundles or []))
    known = set(Bundle.objects.filter(name__in=scope).values_list("name", flat=True))
    unknown = [bundle for bundle in scope if bundle not in known]
    if unknown:
        raise UnknownScopeBundles(UNKNOWN_SCOPE_BUNDLES.format(names=", ".join(unknown)))
    with transaction.atomic():
        prefix, secret, full_key = new_key()
        while RuntimeKey.objects.filter(prefix=prefix).exists():
            prefix, secret, full_key = new_key()
        creator = actor if getattr(actor, "is_authenticated", False) else None
        proposed = {
            "name": name,
            "prefix": prefix,
            "environment": target.name,
            "bundles": scope,
            "created_by": creator.get_username() if creator else None,
        }
        change = governed_change(
            actor=actor,
            kind=RUNTIME_KEY_KIND,
            target={"prefix": prefix},
            before=runtime_key_state({"prefix": prefix}),
            proposed=proposed,
            loosening=True,  # a new key opens execution in an environment
            summary=f"runtime key {name!r} for {target.name} ({', '.join(scope) or 'every bundle'})",
            sealed={"secret_hash": hash_secret(secret)},
        )
        if change is not None:
            return CreatedKey(None, full_key, change)
        key = _create_key(proposed, hash_secret(secret), creator=creator, actor=actor)
    return CreatedKey(key, full_key)


def _create_key(proposed: dict, secret_hash: str, *, creator, actor, approved_by=None) -> RuntimeKey:
    """Store a runtime key as `proposed` (its secret only as `secret_hash`) and audit it."""
    environment = access_environment(None, proposed["environment"])
    key = RuntimeKey.objects.create(
        name=proposed["name"],
        prefix=proposed["prefix"],
        secret_hash=secret_hash,
        environment=environment,
        bundles=proposed["bundles"],
        created_by=creator,
    )
    data = {
        "name": key.name,
        "prefix": key.prefix,
        "environment": environment.name,
        "bundles": proposed["bundles"],
    }
    if approved_by is not None:
        data["approved_by"] = approved_by
    record(actor=actor, action=RuntimeAction.KEY_CREATED, target=key, data=data)
    return key


def runtime_key_state(target: dict) -> dict:
    """Return whether a key with the target prefix exists (the governance kind's state)."""
    return {"exists": RuntimeKey.objects.filter(prefix=target["prefix"]).exists()}


def runtime_key_apply(target: dict, proposed: dict, *, actor, approved_by: list[str], sealed: dict) -> None:
    """Create an approved runtime key."""
    creator = get_user_model().objects.filter(username=proposed["created_by"]).first()
    _create_key(proposed, sealed["secret_hash"], creator=creator, actor=actor, approved_by=approved_by)


def runtime_key_revoke(*, actor, key: RuntimeKey) -> RuntimeKey:
    """Revoke `key`: the runtime refuses it (401) within RUNTIME_CACHE_SECONDS."""
    require(actor, Capability.MANAGE_RUNTIME_KEYS)
    with transaction.atomic():
        key = RuntimeKey.objects.select_for_update().select_related("environment").get(pk=key.pk)
        if key.revoked_at is not None:
            raise KeyAlreadyRevoked(KEY_ALREADY_REVOKED.format(name=key.name, at=key.revoked_at.isoformat()))
        key.revoked_at = timezone.now()
        key.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
        key.save(update_fields=["revoked_at", "revoked_by"])
        record(
            actor=actor,
            action=RuntimeAction.KEY_REVOKED,
            target=key,
            data={"name": key.name, "prefix": key.prefix, "environment": key.environment.name},
        )
    return key


# --- model endpoints ---------------------------------------------------------------------------------------


def endpoint_problems(values: dict[str, Any]) -> list[dict[str, str]]:
    """Return every problem of the endpoint fields present in `values`."""
    problems = []
    if "name" in values and (unsafe := unsafe_name(str(values["name"] or ""))):
        problems.append(field_error("name", "unsafe_name", UNSAFE_NAME.format(reason=unsafe)))
    elif "name" in values and not ENDPOINT_NAME_PATTERN.match(str(values["name"] or "")):
        problems.append(field_error("name", INVALID, BAD_ENDPOINT_NAME))
    if "base_url" in values:
        url = values["base_url"]
        if not isinstance(url, str) or not re.match(r"\Ahttps?://[^\s/]+(/\S*)?\Z", url) or len(url) > 500:
            problems.append(field_error("base_url", INVALID, BAD_BASE_URL))
        elif (refusal := url_refusal(url)) is not None:  # names are checked again on every connection
            problems.append(field_error("base_url", EGRESS_REFUSED_CODE, refusal))
    if "allowed_models" in values:
        models = values["allowed_models"]
        valid = (
            isinstance(models, list | tuple)
            and models
            and all(
                isinstance(model, str) and 0 < len(model.strip()) <= MAX_MODEL_NAME_LENGTH for model in models
            )
        )
        if not valid:
            problems.append(field_error("allowed_models", INVALID, BAD_ALLOWED_MODELS))
    if "api_key_env" in values:
        variable = values["api_key_env"]
        if variable not in ("", None) and not (
            isinstance(variable, str)
            and API_KEY_ENV_PATTERN.match(variable)
            and api_key_variable_allowed(variable, connection.schema_name)
        ):
            problems.append(field_error("api_key_env", INVALID, BAD_API_KEY_ENV))
    if "timeout_seconds" in values:
        timeout = values["timeout_seconds"]
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        cap = model_timeout_cap()
        if not number or not 0 < timeout <= cap:
            problems.append(field_error("timeout_seconds", INVALID, BAD_TIMEOUT.format(cap=cap)))
    return problems


def normalized_endpoint(values: dict[str, Any]) -> dict[str, Any]:
    """Return the endpoint fields of `values` in their stored form."""
    normalized = dict(values)
    if "base_url" in normalized:
        normalized["base_url"] = normalized["base_url"].rstrip("/")
    if "allowed_models" in normalized:
        normalized["allowed_models"] = sorted({model.strip() for model in normalized["allowed_models"]})
    if "api_key_env" in normalized:
        normalized["api_key_env"] = normalized["api_key_env"] or ""
    if "timeout_seconds" in normalized:
        normalized["timeout_seconds"] = float(normalized["timeout_seconds"])
    return normalized


def endpoint_facts(endpoint: ModelEndpoint) -> dict[str, Any]:
    """Return what audit records say about an endpoint (no secret: api_key_env is a variable's name)."""
    return {
        "name": endpoint.name,
        "base_url": endpoint.base_url,
        "allowed_models": list(endpoint.allowed_models),
        "api_key_env": endpoint.api_key_env,
        "timeout_seconds": endpoint.timeout_seconds,
    }


def model_endpoint_create(
    *,
    actor,
    name: str,
    base_url: str,
    allowed_models: list[str],
    api_key_env: str = "",
    timeout_seconds: float | None = None,
) -> ModelEndpoint:
    """Create model endpoint `name` (operators); without a timeout, the default (10 s, at most the cap)."""
    require(actor, Capability.MANAGE_MODEL_ENDPOINTS)
    values = {
        "name": name,
        "base_url": base_url,
        "allowed_models": allowed_models,
        "api_key_env": api_key_env,
        "timeout_seconds": default_model_timeout() if timeout_seconds is None else timeout_seconds,
    }
    problems = endpoint_problems(values)
    if problems:
        raise InvalidModelEndpoint(details=problems)
    with transaction.atomic():
        if ModelEndpoint.objects.filter(name=name).exists():
            raise ModelEndpointExists(ENDPOINT_EXISTS.format(name=name))
        proposed = normalized_endpoint(values)
        change = governed_change(
            actor=actor,
            kind=MODEL_ENDPOINT_KIND,
            target={"name": name},
            before=None,
            proposed=proposed,
            loosening=True,  # a new destination for model calls
            summary=f"model endpoint {name} -> {proposed['base_url']}",
        )
        if change is not None:
            return change
        return _save_endpoint(None, proposed, actor=actor)


def _save_endpoint(endpoint: ModelEndpoint | None, facts: dict, *, actor, approved_by=None) -> ModelEndpoint:
    """Create an endpoint with `facts`, or give locked `endpoint` those facts; audit either."""
    data_extra = {"approved_by": approved_by} if approved_by is not None else {}
    if endpoint is None:
        endpoint = ModelEndpoint.objects.create(**facts)
        data = {**endpoint_facts(endpoint), **data_extra}
        record(actor=actor, action=RuntimeAction.ENDPOINT_CREATED, target=endpoint, data=data)
        return endpoint
    before = endpoint_facts(endpoint)
    fields = [field for field in ENDPOINT_FIELDS if facts[field] != before[field]]
    for field in fields:
        setattr(endpoint, field, facts[field])
    endpoint.save(update_fields=[*fields, "updated_at"])
    after = endpoint_facts(endpoint)
    changed = {field: {"from": before[field], "to": after[field]} for field in fields}
    record(
        actor=actor,
        action=RuntimeAction.ENDPOINT_UPDATED,
        target=endpoint,
        data={"name": endpoint.name, "changes": changed, **data_extra},
    )
    return endpoint


def endpoint_change_loosens(before: dict, after: dict) -> bool:
    """Return whether an endpoint change weakens control: another URL or key variable, or more models."""
    return (
        after["base_url"] != before["base_url"]
        or after["api_key_env"] != before["api_key_env"]
        or not set(after["allowed_models"]) <= set(before["allowed_models"])
    )


def model_endpoint_state(target: dict) -> dict | None:
    """Return the target endpoint's facts (row locked), or None when it does not exist."""
    endpoint = ModelEndpoint.objects.select_for_update().filter(name=target["name"]).first()
    return endpoint_facts(endpoint) if endpoint else None


def model_endpoint_apply(target: dict, proposed: dict, *, actor, approved_by: list[str]) -> None:
    """Create or change the target endpoint as approved."""
    endpoint = ModelEndpoint.objects.select_for_update().filter(name=target["name"]).first()
    _save_endpoint(endpoint, proposed, actor=actor, approved_by=approved_by)


def model_endpoint_update(*, actor, endpoint: ModelEndpoint, changes: dict[str, Any]) -> ModelEndpoint:
    """Change some of `endpoint`'s fields (not its name); the runtime uses them within its cache time."""
    require(actor, Capability.MANAGE_MODEL_ENDPOINTS)
    problems = [
        field_error(field, "unknown_field", UNKNOWN_ENDPOINT_FIELD)
        for field in changes
        if field not in ENDPOINT_FIELDS
    ]
    problems += endpoint_problems(changes)
    if problems:
        raise InvalidModelEndpoint(details=problems)
    changes = normalized_endpoint(changes)
    with transaction.atomic():
        endpoint = ModelEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = endpoint_facts(endpoint)
        after = {**before, **changes}
        if after == before:
            return endpoint
        change = governed_change(
            actor=actor,
            kind=MODEL_ENDPOINT_KIND,
            target={"name": endpoint.name},
            before=before,
            proposed=after,
            loosening=endpoint_change_loosens(before, after),
            summary=f"model endpoint {endpoint.name}: "
            + "; ".join(f"{key} -> {after[key]!r}" for key in ENDPOINT_FIELDS if after[key] != before[key]),
        )
        if change is not None:
            return change
        return _save_endpoint(endpoint, after, actor=actor)


def model_endpoint_delete(*, actor, endpoint: ModelEndpoint) -> None:
    """Delete `endpoint`; pipelines naming it fail (502, recorded) until one of that name exists again."""
    require(actor, Capability.MANAGE_MODEL_ENDPOINTS)
    with transaction.atomic():
        facts = endpoint_facts(endpoint)
        target = ("runtime.modelendpoint", endpoint.pk)
        endpoint.delete()
        record(actor=actor, action=RuntimeAction.ENDPOINT_DELETED, target=target, data=facts)
