"""PKCE, state and nonce values, and the verification of an ID token (pure: keys come from the caller).

An ID token is accepted only when: its header names an asymmetric algorithm we allow (RS256, ES256; never
`none` or HMAC, which a forger could sign with the public client id), the key its `kid` names verifies the
signature and is of that algorithm's type, `iss` is exactly the configured issuer, `aud` contains the client
id (and `azp` is the client id when there are several audiences), `exp` is in the future and `iat` not in the
future (both within the clock skew) nor older than the maximum age, `sub` is present, and `nonce` equals the
nonce of the sign-in this browser started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt

from tenancy.sso.exceptions import SSO_TOKEN_INVALID, SsoTokenInvalid

ALLOWED_ALGORITHMS = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "nonce")

# What the key resolver is given (the token header's kid and alg) and returns: a public key of that type.
KeyResolver = Callable[[str | None, str], Any]


def random_token() -> str:
    """Return an unguessable URL-safe value (state, nonce, PKCE verifier: 256 bits)."""
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    """Return the S256 code challenge of `verifier` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def same_secret(expected: str, presented: Any) -> bool:
    """Return whether `presented` equals `expected`, in constant time."""
    return isinstance(presented, str) and hmac.compare_digest(expected.encode(), presented.encode())


def refuse(reason: str) -> SsoTokenInvalid:
    """Return the error refusing an ID token for `reason`."""
    return SsoTokenInvalid(SSO_TOKEN_INVALID.format(reason=reason))


def validate_id_token(
    id_token: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    key_for: KeyResolver,
    clock_skew: int,
    max_age: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Return the verified claims of `id_token`; raise SsoTokenInvalid naming the first check that failed."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise refuse("it is not a signed JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise refuse(f"algorithm {algorithm!r} is not allowed (allowed: {', '.join(ALLOWED_ALGORITHMS)})")
    key = key_for(header.get("kid"), algorithm)
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            leeway=clock_skew,
            options={"require": list(REQUIRED_CLAIMS), "verify_iat": True, "strict_aud": False},
        )
    except jwt.InvalidSignatureError:
        raise refuse("the signature does not verify") from None
    except jwt.ExpiredSignatureError:
        raise refuse("it has expired") from None
    except jwt.InvalidAudienceError:
        raise refuse("it was issued to another client (aud)") from None
    except jwt.InvalidIssuerError:
        raise refuse("it was issued by another issuer (iss)") from None
    except jwt.ImmatureSignatureError:
        raise refuse("it was issued in the future (iat/nbf)") from None
    except jwt.MissingRequiredClaimError as error:
        raise refuse(f"the claim {error.claim!r} is missing") from None
    except jwt.PyJWTError as error:
        raise refuse(f"it is malformed ({type(error).__name__})") from None
    return check_claims(
        claims, client_id=client_id, nonce=nonce, clock_skew=clock_skew, max_age=max_age, now=now
    )


def check_claims(
    claims: dict[str, Any], *, client_id: str, nonce: str, clock_skew: int, max_age: int, now: float
) -> dict[str, Any]:
    """Return `claims` after the checks PyJWT leaves to us: azp, iat's age and bounds, nonce, sub."""
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise refuse("it names several audiences and another authorized party (azp)")
    issued_at = claims["iat"]
    if not isinstance(issued_at, int | float):
        raise refuse("iat is not a number")
    if issued_at > now + clock_skew:
        raise refuse("it was issued in the future (iat/nbf)")
    if issued_at < now - max_age - clock_skew:
        raise refuse("it was issued too long ago (iat)")
    if not same_secret(nonce, claims.get("nonce")):
        raise refuse("its nonce is not the one of this sign-in")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise refuse("it names no subject (sub)")
    return claims


def public_key_of(jwk: dict[str, Any], algorithm: str) -> Any:
    """Return the public key of `jwk` for `algorithm`; raise SsoTokenInvalid when it does not fit."""
    if jwk.get("kty") != KEY_TYPES[algorithm]:
        raise refuse(f"the signing key is not a {KEY_TYPES[algorithm]} key")
    if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, algorithm):
        raise refuse("the signing key is not meant for this algorithm")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm).key
    except jwt.PyJWTError:
        raise refuse("the signing key cannot be read") from None
    if hasattr(key, "private_numbers"):  # a published private key is a broken provider, not a signature
        raise refuse("the signing key is not a public key")
    return key
