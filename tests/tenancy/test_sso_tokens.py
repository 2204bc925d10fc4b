"""ID token verification with keys generated here: every check refuses what it must, with its reason."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tenancy.sso.exceptions import SsoTokenInvalid
from tenancy.sso.tokens import pkce_challenge, public_key_of, validate_id_token

ISSUER = "https://idp.example.test"
CLIENT = "contractor-alpha"
NONCE = "nonce-of-this-sign-in"
SKEW = 60
MAX_AGE = 600


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def claims(**overrides):
    now = int(time.time())
    base = {"iss": ISSUER, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 300, "nonce": NONCE}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(private_key, payload, algorithm="RS256", kid="k1"):
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})


def validate(token, public_key, **overrides):
    options = {
        "issuer": ISSUER,
        "client_id": CLIENT,
        "nonce": NONCE,
        "key_for": lambda kid, algorithm: public_key,
        "clock_skew": SKEW,
        "max_age": MAX_AGE,
    }
    options.update(overrides)
    return validate_id_token(token, **options)


def refusal(token, public_key, **overrides) -> str:
    with pytest.raises(SsoTokenInvalid) as raised:
        validate(token, public_key, **overrides)
    assert raised.value.code == "sso_token_invalid"
    return raised.value.message


def test_a_token_signed_by_another_key_is_refused(rsa_key):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = refusal(sign(forger, claims()), rsa_key.public_key())
    assert "signature does not verify" in message


def test_a_token_for_another_client_is_refused(rsa_key):
    message = refusal(sign(rsa_key, claims(aud="contractor-beta")), rsa_key.public_key())
    assert "another client (aud)" in message


def test_an_expired_token_is_refused_beyond_the_clock_skew(rsa_key):
    now = int(time.time())
    expired = claims(iat=now - 200, exp=now - SKEW - 5)
    assert "expired" in refusal(sign(rsa_key, expired), rsa_key.public_key())
    within_skew = claims(iat=now - 200, exp=now - SKEW + 20)
    assert validate(sign(rsa_key, within_skew), rsa_key.public_key())["sub"] == "alice"


def test_a_token_with_another_nonce_is_refused(rsa_key):
    message = refusal(sign(rsa_key, claims(nonce="nonce-of-another-sign-in")), rsa_key.public_key())
    assert "nonce" in message


def test_a_token_without_a_nonce_is_refused(rsa_key):
    message = refusal(sign(rsa_key, claims(nonce=None)), rsa_key.public_key())
    assert "'nonce' is missing" in message


def test_a_token_from_another_issuer_is_refused(rsa_key):
    message = refusal(sign(rsa_key, claims(iss="https://evil.example.test")), rsa_key.public_key())
    assert "another issuer" in message


def test_a_token_issued_in_the_future_or_too_long_ago_is_refused(rsa_key):
    now = int(time.time())
    future = claims(iat=now + SKEW + 30, exp=now + 900)
    assert "future" in refusal(sign(rsa_key, future), rsa_key.public_key())
    stale = claims(iat=now - MAX_AGE - SKEW - 30, exp=now + 300)
    assert "too long ago" in refusal(sign(rsa_key, stale), rsa_key.public_key())


def test_unsigned_and_hmac_tokens_are_refused_whatever_the_key(rsa_key):
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "algorithm 'none' is not allowed" in refusal(unsigned, rsa_key.public_key())
    # HMAC would let anyone who knows the (public) client id or key "sign": never accepted.
    forged = jwt.encode(claims(), "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256")
    assert "algorithm 'HS256' is not allowed" in refusal(forged, rsa_key.public_key())


def test_several_audiences_need_this_client_as_authorized_party(rsa_key):
    both = claims(aud=[CLIENT, "contractor-beta"])
    assert "authorized party" in refusal(sign(rsa_key, both), rsa_key.public_key())
    assert validate(sign(rsa_key, {**both, "azp": CLIENT}), rsa_key.public_key())["azp"] == CLIENT


def test_a_valid_rs256_token_gives_its_claims(rsa_key):
    verified = validate(sign(rsa_key, claims(groups=["eng"])), rsa_key.public_key())
    assert verified["sub"] == "alice"
    assert verified["groups"] == ["eng"]


def test_a_valid_es256_token_gives_its_claims(ec_key):
    verified = validate(sign(ec_key, claims(), algorithm="ES256"), ec_key.public_key())
    assert verified["sub"] == "alice"


def test_a_published_key_must_fit_the_algorithm_and_be_public(rsa_key, ec_key):
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    ec_jwk = jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    assert public_key_of(rsa_jwk, "RS256") is not None
    with pytest.raises(SsoTokenInvalid, match="not a EC key"):
        public_key_of(rsa_jwk, "ES256")
    with pytest.raises(SsoTokenInvalid, match="not meant for this algorithm"):
        public_key_of({**ec_jwk, "alg": "ES384"}, "ES256")
    private_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key, as_dict=True)
    with pytest.raises(SsoTokenInvalid, match="not a public key"):
        public_key_of(private_jwk, "RS256")


def test_the_pkce_challenge_is_rfc_7636s_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
