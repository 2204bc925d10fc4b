"""Settings of tenancy (tokens, sign-in lockout, fresh authentication), read from settings.CONTRACTOR."""

from django.conf import settings

DEFAULTS = {
    # Personal API tokens: the lifetime of a token created without one, and the longest a caller may ask for.
    "TOKEN_DEFAULT_DAYS": 90,
    "TOKEN_MAX_DAYS": 365,
    # `last_used_at` is written at most this often per token (not on every request).
    "TOKEN_LAST_USED_RESOLUTION_SECONDS": 60,
    # Sign-in lockout (console sign-in, the token endpoint, re-authentication): this many failures within
    # the window lock the username (or the source address) for LOCKOUT_SECONDS. The address limit is higher
    # because a whole office may sign in from one address.
    "LOCKOUT_USERNAME_FAILURES": 5,
    "LOCKOUT_ADDRESS_FAILURES": 20,
    "LOCKOUT_WINDOW_SECONDS": 15 * 60,
    "LOCKOUT_SECONDS": 15 * 60,
    # Decisive console actions (approve, reject, rollback, governance changes) need a sign-in this recent.
    "FRESH_AUTHENTICATION_MINUTES": 15,
}


def tenancy_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])
