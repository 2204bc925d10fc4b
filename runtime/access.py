"""What a runtime key may touch, fetched and checked in one call: keys, releases, versions, decisions.

Everything here reads through the runtime role's grants (DESIGN §7): `runtime_runtimekey`, the
released-versions view `runtime_released_version` (promotions states it) and the decisions view
`runtime_decision`. Keys and release pointers are cached per process for at most RUNTIME_CACHE_SECONDS
(≤ 1 s), so that a revocation, a promotion or a rollback reaches every worker within that time. Compiled
bundles come from the language's one cache by digest (content addressed, so they never go stale): on a hit,
no database read at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from audit.hashing import canonical_record, record_hash
from audit.models import ActorKind
from bundles.language.compiler import (
    CompiledBundle,
    Pipeline,
    UnknownPipelineError,
    clear_bundle_cache,
    compiled,
)
from bundles.language.digest import bundle_digest
from runtime.caches import TTLCache
from runtime.conf import cache_seconds
from runtime.exceptions import (
    BUNDLE_OUT_OF_SCOPE,
    DECISION_NOT_FOUND,
    NOT_RELEASED,
    UNKNOWN_PIPELINE,
    VERSION_NOT_RELEASED,
    BundleOutOfScope,
    DecisionNotFound,
    InvalidRuntimeKey,
    NotReleased,
    UnknownPipeline,
    VersionNotReleased,
)
from runtime.grants import DECISION_ACTION
from runtime.keys import bearer_key, secret_matches
from runtime.models import RuntimeKey

RELEASE_SQL = (
    "SELECT bundle, environment, version, digest, version_id FROM runtime_released_version "
    "WHERE bundle = %s AND environment_id = %s AND live"
)
CONTENT_SQL = "SELECT content FROM runtime_released_version WHERE digest = %s LIMIT 1"
KEY_ENVIRONMENT_SQL = "SELECT environment FROM runtime_released_version WHERE environment_id = %s LIMIT 1"
DECISION_SQL = (
    "SELECT id, created_at, key_id, key_name, target_type, target_id, data, record_hash "
    "FROM runtime_decision WHERE id = %s"
)


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a runtime key allows, as read from `runtime_runtimekey`; the actor of its decision records."""

    id: int
    name: str
    secret_hash: str
    environment_id: int
    bundles: frozenset[str]
    revoked: bool

    @property
    def audit_actor(self) -> tuple[str, str, str]:
        """Return how this key appears as the actor of an audit record."""
        return ActorKind.RUNTIME_KEY, str(self.id), self.name

    def may_execute(self, bundle: str) -> bool:
        """Return whether the key's bundle scope includes `bundle` (an empty scope includes all)."""
        return not self.bundles or bundle in self.bundles


@dataclass(frozen=True, slots=True)
class Release:
    """The version of a bundle live in an environment, as read from `runtime_released_version`."""

    bundle: str
    environment: str
    version: str
    digest: str
    version_id: int


@dataclass(frozen=True, slots=True)
class Target:
    """What one execution runs: the live release, its compiled bundle and the pipeline asked for."""

    release: Release
    compiled: CompiledBundle
    pipeline: Pipeline


_keys: TTLCache[KeyGrant | None] = TTLCache(cache_seconds)
_releases: TTLCache[Release | None] = TTLCache(cache_seconds)


def clear_caches() -> None:
    """Forget every cached key, release and compiled bundle of this process."""
    for cache in (_keys, _releases):
        cache.clear()
    clear_bundle_cache()


def schema() -> str:
    """Return the schema (tenant) of the current request."""
    return connection.schema_name


def json_value(value: Any) -> Any:
    """Return a jsonb column's value as Python data (Django's psycopg 3 setup reads jsonb as text)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


# --- keys --------------------------------------------------------------------------------------------------


def authenticate(authorization: str) -> KeyGrant:
    """Return the grant of the bearer runtime key of this tenant; raise InvalidRuntimeKey otherwise."""
    parsed = bearer_key(authorization)
    if parsed is None:
        raise InvalidRuntimeKey()
    prefix, secret = parsed
    grant = _keys.get_or_load((schema(), prefix), lambda: load_key(prefix))
    if grant is None or grant.revoked or not secret_matches(secret, grant.secret_hash):
        raise InvalidRuntimeKey()
    return grant


def load_key(prefix: str) -> KeyGrant | None:
    """Return the grant of the key with `prefix` in this tenant, or None."""
    row = (
        RuntimeKey.objects.filter(prefix=prefix)
        .values_list("id", "name", "secret_hash", "environment_id", "bundles", "revoked_at")
        .first()
    )
    if row is None:
        return None
    key_id, name, stored_hash, environment_id, bundles, revoked_at = row
    return KeyGrant(key_id, name, stored_hash, environment_id, frozenset(bundles), revoked_at is not None)


# --- releases and compiled versions ------------------------------------------------------------------------


def access_target(grant: KeyGrant, bundle: str, pipeline: str) -> Target:
    """Return the key's target `bundle`/`pipeline`; raise BundleOutOfScope, NotReleased, UnknownPipeline."""
    if not grant.may_execute(bundle):
        raise BundleOutOfScope(BUNDLE_OUT_OF_SCOPE.format(bundle=bundle))
    release = live_release(bundle, grant.environment_id)
    bundle_version = compiled_version(release.digest)
    return Target(release, bundle_version, pipeline_of(bundle_version, pipeline))


def live_release(bundle: str, environment_id: int) -> Release:
    """Return the version of `bundle` live in the environment; raise NotReleased."""
    release = _releases.get_or_load(
        (schema(), bundle, environment_id), lambda: load_release(bundle, environment_id)
    )
    if release is None:
        raise NotReleased(NOT_RELEASED.format(bundle=bundle))
    return release


def load_release(bundle: str, environment_id: int) -> Release | None:
    """Read the live version of `bundle` in the environment through the released-versions view."""
    with connection.cursor() as cursor:
        cursor.execute(RELEASE_SQL, [bundle, environment_id])
        row = cursor.fetchone()
    return Release(*row) if row else None


def compiled_version(digest: str) -> CompiledBundle:
    """Return the compiled bundle of a released `digest`; raise VersionNotReleased if it never was."""
    return compiled(digest, lambda: released_content(digest))


def released_content(digest: str) -> dict[str, Any]:
    """Return the stored content of a released `digest`, checked against it."""
    with connection.cursor() as cursor:
        cursor.execute(CONTENT_SQL, [digest])
        row = cursor.fetchone()
    if row is None:
        raise VersionNotReleased(VERSION_NOT_RELEASED.format(digest=digest))
    content = json_value(row[0])
    actual = bundle_digest(content)
    if actual != digest:  # immutable rows make this impossible short of tampering: refuse to run it
        raise RuntimeError(f"stored content of {digest} hashes to {actual}")
    return content


def pipeline_of(bundle: CompiledBundle, name: str) -> Pipeline:
    """Return the pipeline `name` of the compiled bundle; raise UnknownPipeline."""
    try:
        return bundle.pipeline(name)
    except UnknownPipelineError:
        raise UnknownPipeline(
            UNKNOWN_PIPELINE.format(bundle=bundle.name, version=bundle.version, pipeline=name)
        ) from None


# --- recorded decisions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A `runtime.decision` record read through the `runtime_decision` view."""

    id: int
    created_at: Any
    key_id: str
    key_name: str
    target_type: str
    target_id: str
    data: dict[str, Any]
    record_hash: str

    def is_intact(self) -> bool:
        """Return whether the stored record hash matches the record's content."""
        canonical = canonical_record(
            tenant=schema(),
            created_at=self.created_at,
            actor_kind=ActorKind.RUNTIME_KEY,
            actor_id=self.key_id,
            actor_name=self.key_name,
            action=DECISION_ACTION,
            target_type=self.target_type,
            target_id=self.target_id,
            data=self.data,
        )
        return record_hash(canonical) == self.record_hash

    def as_dict(self) -> dict[str, Any]:
        """Return the record as the runtime API shows it."""
        return {
            "decision_id": self.id,
            "created_at": self.created_at.isoformat(),
            "key": {"id": int(self.key_id), "name": self.key_name},
            "record_hash": self.record_hash,
            **self.data,
        }


def access_decision(grant: KeyGrant, decision_id: int) -> RecordedDecision:
    """Return decision `decision_id` if the key's environment and scope cover it; else DecisionNotFound."""
    with connection.cursor() as cursor:
        cursor.execute(DECISION_SQL, [decision_id])
        row = cursor.fetchone()
    if row is None:
        raise DecisionNotFound(DECISION_NOT_FOUND.format(id=decision_id))
    decision = RecordedDecision(*row[:6], json_value(row[6]), row[7])
    in_scope = grant.may_execute(decision.data.get("bundle", ""))
    if not in_scope or decision.data.get("environment") != key_environment_name(grant):
        raise DecisionNotFound(DECISION_NOT_FOUND.format(id=decision_id))
    return decision


def key_environment_name(grant: KeyGrant) -> str | None:
    """Return the name of the key's environment (None when nothing was ever deployed there)."""
    with connection.cursor() as cursor:
        cursor.execute(KEY_ENVIRONMENT_SQL, [grant.environment_id])
        row = cursor.fetchone()
    return row[0] if row else None
