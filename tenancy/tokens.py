"""Personal API tokens: `ct_<prefix>_<secret>`, shown once, stored as the SHA-256 of the secret.

A token belongs to a member of one tenant and works only on that tenant's host, until it expires or is
revoked (by its owner, by an admin of the tenant, or when the membership ends or the user is deactivated).
Its scopes are checked in addition to the member's roles (tenancy.roles.SCOPE_CAPABILITIES).

The prefix is public (shown in lists, used to find the token); the secret is 256 random bits, so a plain
SHA-256 suffices (no password-style stretching). Tokens migrated from DRF's authtoken (40 hex digits) have no
prefix and are found by the hash of the whole key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.services import record
from core.text import unsafe_name
from tenancy.actions import TenancyAction
from tenancy.conf import tenancy_setting
from tenancy.exceptions import (
    EXPIRY_BEYOND_TOKEN,
    EXPIRY_RULE,
    INVALID_TOKEN,
    SCOPES_NOT_HELD,
    TOKEN_ALREADY_REVOKED,
    TOKEN_EXPIRED,
    TOKEN_NAME_RULE,
    TOKEN_NOT_FOUND,
    TOKEN_REVOKED,
    UNKNOWN_SCOPES,
    InvalidTokenRequest,
    TokenAlreadyRevoked,
    TokenNotFound,
)
from tenancy.models import TOKEN_PREFIX_LENGTH, ApiToken, Tenant
from tenancy.roles import Capability, Scope, scopes_for_roles
from tenancy.selectors import acting_token, membership_of, require_capability, require_membership

TOKEN_SCHEME = "ct"
SECRET_BYTES = 32
MAX_NAME_LENGTH = 100
TOKEN_PATTERN = re.compile(
    rf"\A{TOKEN_SCHEME}_([0-9a-f]{{{TOKEN_PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{40,64}})\Z"
)
LEGACY_PATTERN = re.compile(r"\A[0-9a-f]{40}\Z")
DEFAULT_NAME = "API token"


class RevokeReason:
    """Why a token stopped working (stored on the token and in the audit record)."""

    REVOKED = "revoked"
    MEMBERSHIP_ENDED = "membership_ended"
    USER_DEACTIVATED = "user_deactivated"


def new_token() -> tuple[str, str, str]:
    """Return (prefix, secret, full token) of a fresh random token."""
    prefix = secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return prefix, secret, f"{TOKEN_SCHEME}_{prefix}_{secret}"


def hash_secret(secret: str) -> str:
    """Return the stored form of a secret: its SHA-256 in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def field_error(field: str, code: str, message: str) -> dict:
    """Return one validation detail (core.api.field_error's shape; core.api would import this module back
    through DRF's settings, which name ApiTokenAuthentication)."""
    return {"field": field, "code": code, "message": message}


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of presenting a token: the token when it may be used, else why not."""

    token: ApiToken | None
    problem: str = ""


def check_token(presented: str, tenant: Tenant | None) -> TokenCheck:
    """Return the usable token `presented` stands for on `tenant`'s host, or why it cannot be used."""
    found = find_token(presented.strip(), tenant)
    if found is None:
        return TokenCheck(None, INVALID_TOKEN)
    if found.revoked_at is not None:
        return TokenCheck(None, TOKEN_REVOKED.format(at=found.revoked_at.isoformat()))
    if found.expires_at <= timezone.now():
        return TokenCheck(None, TOKEN_EXPIRED.format(at=found.expires_at.isoformat()))
    if not found.user.is_active:
        return TokenCheck(None, INVALID_TOKEN)
    return TokenCheck(found)


def find_token(presented: str, tenant: Tenant | None) -> ApiToken | None:
    """Return the token of `tenant` whose secret matches `presented` (compared in constant time), or None."""
    if tenant is None:
        return None
    tokens = ApiToken.objects.select_related("user", "tenant").filter(tenant=tenant)
    match = TOKEN_PATTERN.match(presented)
    if match:
        found = tokens.filter(prefix=match.group(1)).first()
        secret = match.group(2)
    elif LEGACY_PATTERN.match(presented):
        found = tokens.filter(prefix__isnull=True, secret_hash=hash_secret(presented)).first()
        secret = presented
    else:
        return None
    if found is None or not hmac.compare_digest(hash_secret(secret), found.secret_hash):
        return None
    return found


def token_used(token: ApiToken) -> None:
    """Note that `token` was used now, writing at most once per TOKEN_LAST_USED_RESOLUTION_SECONDS.

    One conditional UPDATE on every use: it matches (and writes) only when the stored time is older, so a
    request costs the same number of queries whether or not it is the one that writes.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=tenancy_setting("TOKEN_LAST_USED_RESOLUTION_SECONDS"))
    due = Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    if ApiToken.objects.filter(due, pk=token.pk).update(last_used_at=now):
        token.last_used_at = now


def tokens_visible_to(actor, tenant: Tenant, *, all_members: bool = False):
    """Return the tokens of `tenant` the actor may list: their own, or every member's for admins."""
    tokens = ApiToken.objects.filter(tenant=tenant).select_related("user", "revoked_by")
    if all_members:
        require_capability(actor, Capability.MANAGE_MEMBERSHIPS, tenant)
        return tokens
    return tokens.filter(user=actor)


def access_token(actor, tenant: Tenant, token_id) -> ApiToken:
    """Return token `token_id` of `tenant` if it is the actor's own or the actor is an admin; else 404."""
    token = ApiToken.objects.select_related("user").filter(tenant=tenant, pk=token_id).first()
    membership = membership_of(actor, tenant)
    if token is None or membership is None:
        raise TokenNotFound(TOKEN_NOT_FOUND.format(id=token_id))
    if token.user_id != actor.pk and not membership.can(Capability.MANAGE_MEMBERSHIPS):
        raise TokenNotFound(TOKEN_NOT_FOUND.format(id=token_id))
    return token


@dataclass(frozen=True)
class CreatedToken:
    """A new token and its full secret form, which exists only in this object (shown once)."""

    token: ApiToken
    secret: str


def api_token_create(
    *,
    actor,
    tenant: Tenant,
    name: str = DEFAULT_NAME,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> CreatedToken:
    """Create a personal token for `actor` in `tenant` (default scopes: those covering their roles)."""
    membership = require_membership(actor, tenant)
    via = acting_token(actor)
    name = (name or "").strip()
    problems = token_request_problems(name, scopes, expires_in_days)
    if problems:
        raise InvalidTokenRequest(details=problems)
    chosen = sorted(set(scopes)) if scopes else scopes_for_roles(membership.roles)
    expires_at = timezone.now() + timedelta(days=expires_in_days or tenancy_setting("TOKEN_DEFAULT_DAYS"))
    if via is not None:
        expires_at = refuse_more_than(via, chosen, expires_at, explicit_expiry=expires_in_days is not None)
    with transaction.atomic():
        prefix, secret, full_token = new_token()
        while ApiToken.objects.filter(prefix=prefix).exists():
            prefix, secret, full_token = new_token()
        token = ApiToken.objects.create(
            user=actor,
            tenant=tenant,
            name=name,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            scopes=chosen,
            expires_at=expires_at,
        )
        token_record(actor, token, TenancyAction.TOKEN_CREATED)
    return CreatedToken(token, full_token)


def token_request_problems(name: str, scopes: list[str] | None, expires_in_days: int | None) -> list[dict]:
    """Return every problem of a token's requested name, scopes and lifetime."""
    problems = []
    if not name or len(name) > MAX_NAME_LENGTH:
        problems.append(field_error("name", "invalid", TOKEN_NAME_RULE))
    elif unsafe := unsafe_name(name):
        problems.append(field_error("name", "unsafe_name", f"must not contain {unsafe}"))
    unknown = sorted({scope for scope in scopes or [] if scope not in Scope.values})
    if unknown:
        message = UNKNOWN_SCOPES.format(names=", ".join(unknown), scopes=", ".join(Scope.values))
        problems.append(field_error("scopes", "unknown_scope", message))
    maximum = tenancy_setting("TOKEN_MAX_DAYS")
    if expires_in_days is not None and not (
        isinstance(expires_in_days, int) and not isinstance(expires_in_days, bool) and expires_in_days >= 1
    ):
        problems.append(field_error("expires_in_days", "invalid", EXPIRY_RULE.format(maximum=maximum)))
    elif expires_in_days is not None and expires_in_days > maximum:
        problems.append(field_error("expires_in_days", "too_long", EXPIRY_RULE.format(maximum=maximum)))
    return problems


def refuse_more_than(via: ApiToken, scopes: list[str], expires_at: datetime, *, explicit_expiry: bool):
    """Return the expiry of a token created through token `via`; raise if it would exceed `via`'s power."""
    not_held = sorted(set(scopes) - set(via.scopes))
    problems = []
    if not_held:
        message = SCOPES_NOT_HELD.format(names=", ".join(not_held))
        problems.append(field_error("scopes", "scope_not_held", message))
    if expires_at > via.expires_at:
        if not explicit_expiry:
            expires_at = via.expires_at  # the default lifetime is cut to the creating token's
        else:
            message = EXPIRY_BEYOND_TOKEN.format(at=via.expires_at.isoformat())
            problems.append(field_error("expires_in_days", "beyond_token", message))
    if problems:
        raise InvalidTokenRequest(details=problems)
    return expires_at


def api_token_revoke(*, actor, token: ApiToken, reason: str = RevokeReason.REVOKED) -> ApiToken:
    """Revoke `token` (its owner, or an admin of its tenant): it stops working at once."""
    if actor is not None and token.user_id != actor.pk:
        require_capability(actor, Capability.MANAGE_MEMBERSHIPS, token.tenant)
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user", "tenant").get(pk=token.pk)
        if token.revoked_at is not None:
            raise TokenAlreadyRevoked(
                TOKEN_ALREADY_REVOKED.format(name=token.name, at=token.revoked_at.isoformat())
            )
        revoke(actor, token, reason)
    return token


def api_tokens_revoke_all(*, actor, user, reason: str, tenant: Tenant | None = None) -> int:
    """Revoke every active token of `user` (in `tenant`, or everywhere); return how many."""
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update().select_related("user", "tenant")
        tokens = tokens.filter(user=user, revoked_at__isnull=True)
        if tenant is not None:
            tokens = tokens.filter(tenant=tenant)
        revoked = list(tokens)
        for token in revoked:
            revoke(actor, token, reason)
    return len(revoked)


def revoke(actor, token: ApiToken, reason: str) -> None:
    """Mark `token` revoked and record it in its tenant's log (inside the caller's transaction)."""
    token.revoked_at = timezone.now()
    token.revoked_by = actor if getattr(actor, "is_authenticated", False) else None
    token.revoked_reason = reason
    token.save(update_fields=["revoked_at", "revoked_by", "revoked_reason"])
    token_record(actor, token, TenancyAction.TOKEN_REVOKED, reason=reason)


def api_token_issue_for(*, tenant: Tenant, user, scopes: list[str] | None = None) -> CreatedToken:
    """Create a token for `user` in `tenant` without the membership check (commands, seeding and tests)."""
    with transaction.atomic():
        prefix, secret, full_token = new_token()
        token = ApiToken.objects.create(
            user=user,
            tenant=tenant,
            name=DEFAULT_NAME,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            scopes=list(Scope.values) if scopes is None else scopes,
            expires_at=timezone.now() + timedelta(days=tenancy_setting("TOKEN_DEFAULT_DAYS")),
        )
        token_record(None, token, TenancyAction.TOKEN_CREATED)
    return CreatedToken(token, full_token)


def token_record(actor, token: ApiToken, action: TenancyAction, **extra) -> None:
    """Write a token's audit record into its tenant's log: never the secret, only the public prefix."""
    with schema_context(token.tenant.schema_name):
        record(
            actor=actor,
            action=action,
            target=("tenancy.apitoken", token.pk),
            data={
                "user": token.user.get_username(),
                "name": token.name,
                "prefix": token.prefix or "",
                "scopes": list(token.scopes),
                "expires_at": token.expires_at.isoformat(),
                **extra,
            },
        )
