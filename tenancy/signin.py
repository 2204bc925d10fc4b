"""Password checks under a lockout, and how recently a console session signed in.

Every password check (console sign-in on tenant and public hosts, `POST auth/token/`, re-authentication
before decisive actions) goes through `authenticate_or_lock`. Failures are rows in the public schema, so the
count holds across processes: LOCKOUT_USERNAME_FAILURES failures for one username, or
LOCKOUT_ADDRESS_FAILURES from one source address, within LOCKOUT_WINDOW_SECONDS lock that username (or
address) for LOCKOUT_SECONDS. A locked attempt is refused (429, Retry-After) without checking the password.
A success forgets only the failures of that username from that address.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from audit.services import record
from tenancy.actions import TenancyAction
from tenancy.conf import tenancy_setting
from tenancy.exceptions import SignInLocked
from tenancy.models import SignInFailure, SignInLock
from tenancy.selectors import current_tenant

logger = logging.getLogger(__name__)

MAX_USERNAME_LENGTH = 150
AUTHENTICATED_AT_KEY = "contractor_authenticated_at"


def client_address(request) -> str:
    """Return the source address of `request` (the peer; a proxy in front must set REMOTE_ADDR)."""
    return (request.META.get("REMOTE_ADDR") or "unknown")[:45]


def lock_remaining(username: str, address: str) -> int:
    """Return the seconds until neither `username` nor `address` is locked (0: not locked)."""
    now = timezone.now()
    latest = (
        SignInLock.objects.filter(locked_until__gt=now)
        .filter(
            Q(kind=SignInLock.Kind.USERNAME, key=username[:MAX_USERNAME_LENGTH])
            | Q(kind=SignInLock.Kind.ADDRESS, key=address)
        )
        .aggregate(until=Max("locked_until"))["until"]
    )
    return math.ceil((latest - now).total_seconds()) if latest else 0


def require_not_locked(username: str, address: str) -> None:
    """Raise SignInLocked while `username` or `address` is locked."""
    remaining = lock_remaining(username, address)
    if remaining:
        raise SignInLocked(remaining)


def sign_in_failed(*, username: str, address: str) -> int:
    """Count a failed password check; lock what crossed its limit. Return the lock's seconds (0: none)."""
    username = username[:MAX_USERNAME_LENGTH]
    tenant = current_tenant()
    now = timezone.now()
    window_start = now - timedelta(seconds=tenancy_setting("LOCKOUT_WINDOW_SECONDS"))
    locked_until = now + timedelta(seconds=tenancy_setting("LOCKOUT_SECONDS"))
    locked = []
    with transaction.atomic():
        SignInFailure.objects.filter(created_at__lt=window_start).delete()  # keep the table small
        SignInFailure.objects.create(
            username=username, address=address, tenant=tenant.schema_name if tenant else ""
        )
        limits = (
            (SignInLock.Kind.USERNAME, username, {"username": username}, "LOCKOUT_USERNAME_FAILURES"),
            (SignInLock.Kind.ADDRESS, address, {"address": address}, "LOCKOUT_ADDRESS_FAILURES"),
        )
        for kind, key, match, limit in limits:
            previous = SignInLock.objects.filter(kind=kind, key=key).aggregate(end=Max("locked_until"))["end"]
            since = max(window_start, previous) if previous else window_start
            if SignInFailure.objects.filter(created_at__gt=since, **match).count() >= tenancy_setting(limit):
                SignInLock.objects.update_or_create(
                    kind=kind, key=key, defaults={"locked_until": locked_until}
                )
                locked.append(kind)
        if locked:
            lockout_record(username=username, address=address, locked=locked, until=locked_until)
    return tenancy_setting("LOCKOUT_SECONDS") if locked else 0


def lockout_record(*, username: str, address: str, locked: list[str], until) -> None:
    """Write auth.locked_out into the tenant's log (on the public host, which has no log: the server log)."""
    data = {"username": username, "address": address, "locked": locked, "locked_until": until.isoformat()}
    logger.warning("sign-in locked: %s", data)
    tenant = current_tenant()
    if tenant is None:
        return
    with schema_context(tenant.schema_name):
        record(actor=None, action=TenancyAction.SIGN_IN_LOCKED, target=("auth.user", username), data=data)


def sign_in_succeeded(*, username: str, address: str) -> None:
    """Forget the failures of `username` from `address` (other usernames' failures still count there)."""
    SignInFailure.objects.filter(username=username[:MAX_USERNAME_LENGTH], address=address).delete()


def authenticate_or_lock(request, *, username: str, password: str):
    """Return the user whose password this is, or None; raise SignInLocked when locked (before or now)."""
    address = client_address(request)
    require_not_locked(username, address)
    user = authenticate(request, username=username, password=password)
    if user is None:
        seconds = sign_in_failed(username=username, address=address)
        if seconds:
            raise SignInLocked(seconds)
        return None
    sign_in_succeeded(username=username, address=address)
    return user


def mark_authenticated(session) -> None:
    """Note in `session` that its user proved their password just now."""
    session[AUTHENTICATED_AT_KEY] = int(time.time())


def authenticated_recently(session) -> bool:
    """Return whether the session's user proved their password within FRESH_AUTHENTICATION_MINUTES."""
    at = session.get(AUTHENTICATED_AT_KEY)
    window = tenancy_setting("FRESH_AUTHENTICATION_MINUTES") * 60
    return isinstance(at, int) and 0 <= time.time() - at <= window
