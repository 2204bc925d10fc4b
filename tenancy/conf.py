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
    # Single sign-on (tenancy/sso/). The environment variables an SSO configuration may name as holding its
    # client secret (a regular expression; `{tenant}` stands for the schema name in upper case): never the
    # process's own SECRET_KEY or database password.
    "SSO_CLIENT_SECRET_ENV_PATTERN": r"\A[A-Z][A-Z0-9_]{0,80}_CLIENT_SECRET\Z",
    # Provider metadata (discovery) and signing keys (JWKS) are cached this long per issuer in each process.
    "SSO_DISCOVERY_CACHE_SECONDS": 300,
    # Clock skew accepted on an ID token's exp and iat (capped at SSO_MAX_CLOCK_SKEW_SECONDS).
    "SSO_CLOCK_SKEW_SECONDS": 60,
    # An ID token issued longer ago than this is refused, whatever its exp.
    "SSO_ID_TOKEN_MAX_AGE_SECONDS": 600,
    # A sign-in started at the provider must come back within this time.
    "SSO_FLOW_SECONDS": 600,
    # Timeout of each call to the provider (discovery, keys, token, userinfo).
    "SSO_HTTP_TIMEOUT_SECONDS": 10,
    # Issuers must use https (test settings allow http on loopback).
    "SSO_REQUIRE_HTTPS": True,
}
SSO_MAX_CLOCK_SKEW_SECONDS = 300


def tenancy_setting(name: str):
    """Return setting `name` from settings.CONTRACTOR, or its default."""
    return getattr(settings, "CONTRACTOR", {}).get(name, DEFAULTS[name])
