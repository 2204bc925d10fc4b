"""Talking to a tenant's OpenID provider: discovery and keys (cached per issuer), code exchange, userinfo.

Every call goes through the egress policy (core/egress.py), so an issuer, or an endpoint its discovery
document names, on the private network is refused unless CONTRACTOR_EGRESS_ALLOW opens it. No redirects are
followed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.egress import EgressRefused, egress_client
from tenancy.conf import tenancy_setting
from tenancy.sso.exceptions import (
    SSO_PROVIDER_ERROR,
    SSO_PROVIDER_UNAVAILABLE,
    SsoProviderError,
    SsoProviderUnavailable,
)
from tenancy.sso.tokens import public_key_of, refuse

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024
# An unknown kid refetches the keys (the provider rotated them), but not more often than this per issuer.
JWKS_REFRESH_MIN_SECONDS = 10


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery tells about a provider (OpenID Connect Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""


_lock = threading.Lock()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keys: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def clear_caches() -> None:
    """Forget every provider's cached metadata and keys (this process)."""
    with _lock:
        _metadata.clear()
        _keys.clear()


def unavailable(reason: str) -> SsoProviderUnavailable:
    """Return the error saying the provider could not be used, for `reason`."""
    return SsoProviderUnavailable(SSO_PROVIDER_UNAVAILABLE.format(reason=reason))


def fetch_json(method: str, url: str, **options) -> tuple[int, Any]:
    """Return (status, parsed JSON body) of one call to the provider; raise SsoProviderUnavailable."""
    timeout = float(tenancy_setting("SSO_HTTP_TIMEOUT_SECONDS"))
    headers = {"Accept": "application/json", **options.pop("headers", {})}
    try:
        with egress_client(timeout=timeout) as client:
            response = client.request(method, url, headers=headers, **options)
    except EgressRefused:
        raise unavailable("the address is refused by the egress policy") from None
    except httpx.HTTPError:
        raise unavailable("it could not be reached") from None
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise unavailable("its answer is too large")
    try:
        return response.status_code, response.json()
    except ValueError:
        raise unavailable(f"its answer to {url} is not JSON (HTTP {response.status_code})") from None


def cache_seconds() -> float:
    """Return how long metadata and keys are reused."""
    return float(tenancy_setting("SSO_DISCOVERY_CACHE_SECONDS"))


def provider_metadata(issuer: str) -> ProviderMetadata:
    """Return the provider's metadata from its discovery document (cached); its issuer must be `issuer`."""
    now = time.monotonic()
    with _lock:
        cached = _metadata.get(issuer)
    if cached and now - cached[0] < cache_seconds():
        return cached[1]
    status, document = fetch_json("GET", issuer.rstrip("/") + DISCOVERY_PATH)
    if status != 200 or not isinstance(document, dict):
        raise unavailable(f"discovery answered HTTP {status}")
    if document.get("issuer") != issuer:
        raise unavailable("its discovery document names another issuer")
    try:
        metadata = ProviderMetadata(
            issuer=issuer,
            authorization_endpoint=http_url(document["authorization_endpoint"]),
            token_endpoint=http_url(document["token_endpoint"]),
            jwks_uri=http_url(document["jwks_uri"]),
            userinfo_endpoint=http_url(document.get("userinfo_endpoint") or "", optional=True),
        )
    except (KeyError, ValueError):
        raise unavailable("its discovery document lacks an endpoint") from None
    if "S256" not in document.get("code_challenge_methods_supported", ["S256"]):
        raise unavailable("it does not support PKCE with S256")
    with _lock:
        _metadata[issuer] = (now, metadata)
    return metadata


def http_url(value: Any, *, optional: bool = False) -> str:
    """Return `value` if it is an http(s) URL (or empty when `optional`); raise ValueError."""
    if optional and value == "":
        return ""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(value)
    return value


def provider_keys(metadata: ProviderMetadata, *, refresh: bool = False) -> list[dict[str, Any]]:
    """Return the provider's published signing keys (cached; `refresh` refetches unless just fetched)."""
    now = time.monotonic()
    with _lock:
        cached = _keys.get(metadata.issuer)
    if cached:
        age = now - cached[0]
        if age < cache_seconds() and not (refresh and age >= JWKS_REFRESH_MIN_SECONDS):
            return cached[1]
    status, document = fetch_json("GET", metadata.jwks_uri)
    keys = document.get("keys") if isinstance(document, dict) else None
    if status != 200 or not isinstance(keys, list):
        raise unavailable(f"its signing keys could not be read (HTTP {status})")
    keys = [key for key in keys if isinstance(key, dict)]
    with _lock:
        _keys[metadata.issuer] = (now, keys)
    return keys


def key_resolver(metadata: ProviderMetadata):
    """Return a function finding the public key for an ID token's (kid, alg) among the provider's keys."""

    def key_for(kid: str | None, algorithm: str):
        for refresh in (False, True):
            candidates = [
                key for key in provider_keys(metadata, refresh=refresh) if fits(key, kid, algorithm)
            ]
            if len(candidates) == 1:
                return public_key_of(candidates[0], algorithm)
            if len(candidates) > 1:
                raise refuse("its key id names several keys")
        raise refuse("no published key of the provider signed it")

    return key_for


def fits(jwk: dict[str, Any], kid: str | None, algorithm: str) -> bool:
    """Return whether `jwk` may be the key named `kid` for `algorithm` (no kid: any key of its type)."""
    if kid is not None and jwk.get("kid") != kid:
        return False
    return jwk.get("alg") in (None, algorithm) and jwk.get("use") in (None, "sig")


def exchange_code(
    metadata: ProviderMetadata,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
    client_id: str,
    client_secret: str | None,
) -> dict[str, Any]:
    """Return the provider's token response for `code` (with the PKCE verifier); raise on any error."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    form["code_verifier"] = verifier
    options: dict[str, Any] = {"data": form}
    if client_secret:
        options["auth"] = (client_id, client_secret)  # client_secret_basic
    else:
        form["client_id"] = client_id  # a public client
    status, answer = fetch_json("POST", metadata.token_endpoint, **options)
    if status != 200 or not isinstance(answer, dict):
        error = answer.get("error", f"HTTP {status}") if isinstance(answer, dict) else f"HTTP {status}"
        raise SsoProviderError(SSO_PROVIDER_ERROR.format(error=str(error)[:100]))
    if not isinstance(answer.get("id_token"), str):
        raise unavailable("its token response has no ID token")
    return answer


def userinfo(metadata: ProviderMetadata, access_token: str) -> dict[str, Any]:
    """Return the provider's userinfo claims for `access_token` ({} when it has no userinfo endpoint)."""
    if not metadata.userinfo_endpoint or not access_token:
        return {}
    status, claims = fetch_json(
        "GET", metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
    )
    if status != 200 or not isinstance(claims, dict):
        raise unavailable(f"its userinfo answered HTTP {status}")
    return claims
