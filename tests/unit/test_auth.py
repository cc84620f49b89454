"""JWT verification: the algorithm is pinned by configuration, claims are enforced."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from order_service.auth import JWTVerifier
from order_service.config import Settings
from order_service.errors import Unauthorized
from tests.conftest import JWT_SECRET, make_settings
from tests.unit.jwt_keys import OTHER_PRIVATE_PEM, PRIVATE_PEM, PUBLIC_PEM

DB_URL = "sqlite+aiosqlite:///./unused.db"
ISSUER = "https://auth.example.test"
AUDIENCE = "order-service"


def claims(sub: Any = "alice", ttl: int = 600, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl, **extra}
    return {k: v for k, v in payload.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def rs256(payload: dict[str, Any], private_pem: str = PRIVATE_PEM) -> str:
    return jwt.encode(payload, private_pem, algorithm="RS256")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, for what PyJWT refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def hs256_verifier(**overrides: Any) -> JWTVerifier:
    return JWTVerifier(make_settings(DB_URL, **overrides))


def rs256_verifier(**overrides: Any) -> JWTVerifier:
    values: dict[str, Any] = {
        "jwt_algorithm": "RS256",
        "jwt_public_key": PUBLIC_PEM,
        "jwt_secret": None,
        **overrides,
    }
    settings: Settings = make_settings(DB_URL, **values)
    return JWTVerifier(settings)


def refused(verifier: JWTVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.code == "UNAUTHORIZED"
    assert caught.value.status_code == 401
    return caught.value


# ----------------------------------------------------------------------- HS256


def test_hs256_token_is_accepted() -> None:
    user = hs256_verifier().verify(hs256(claims("alice")))
    assert user.id == "alice"
    assert user.actor == "user:alice"


def test_expired_token_says_expired() -> None:
    error = refused(hs256_verifier(), hs256(claims(ttl=-120)))
    assert "expired" in error.message.lower()


def test_token_signed_with_another_secret_is_refused() -> None:
    refused(hs256_verifier(), hs256(claims(), secret="another-secret-that-is-long-enough"))


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_required_claims(missing: str) -> None:
    payload = claims()
    del payload[missing]
    refused(hs256_verifier(), hs256(payload))


@pytest.mark.parametrize(
    "sub", ["", "   ", "x" * 256, "a\x00b"], ids=["empty", "blank", "too-long", "nul"]
)
def test_unusable_subject_is_refused(sub: str) -> None:
    refused(hs256_verifier(), hs256(claims(sub=sub)))


def test_non_string_subject_is_refused() -> None:
    refused(hs256_verifier(), hs256(claims(sub=12345)))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b"])
def test_garbage_is_refused(token: str) -> None:
    refused(hs256_verifier(), token)


def test_alg_none_is_refused() -> None:
    token = handmade({"alg": "none", "typ": "JWT"}, claims(), key=None)
    refused(hs256_verifier(), token)
    refused(rs256_verifier(), token)


def test_hs256_mode_refuses_an_rs256_token() -> None:
    refused(hs256_verifier(), rs256(claims()))


# ----------------------------------------------------------------------- RS256


def test_rs256_token_is_accepted() -> None:
    assert rs256_verifier().verify(rs256(claims("bob"))).id == "bob"


def test_rs256_mode_refuses_hs256_signed_with_the_public_key() -> None:
    # The classic algorithm-confusion attack: HMAC keyed with the public PEM.
    token = handmade({"alg": "HS256", "typ": "JWT"}, claims(), key=PUBLIC_PEM.encode())
    refused(rs256_verifier(), token)
    # The same bytes keyed the way a naive verifier would, with the trailing newline stripped.
    stripped = handmade({"alg": "HS256", "typ": "JWT"}, claims(), key=PUBLIC_PEM.strip().encode())
    refused(rs256_verifier(), stripped)


def test_rs256_mode_refuses_another_rsa_key() -> None:
    refused(rs256_verifier(), rs256(claims(), OTHER_PRIVATE_PEM))


def test_rs256_mode_refuses_a_shared_secret_token() -> None:
    refused(rs256_verifier(), hs256(claims()))


def test_expired_rs256_token_says_expired() -> None:
    error = refused(rs256_verifier(), rs256(claims(ttl=-120)))
    assert "expired" in error.message.lower()


def test_public_key_with_literal_backslash_n_works() -> None:
    escaped = PUBLIC_PEM.replace("\n", "\\n")
    assert "\n" not in escaped
    assert rs256_verifier(jwt_public_key=escaped).verify(rs256(claims("carol"))).id == "carol"


def test_public_key_with_literal_backslash_n_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from order_service.config import load_settings

    monkeypatch.setenv("JWT_PUBLIC_KEY", PUBLIC_PEM.replace("\n", "\\n"))
    monkeypatch.setenv("JWT_ALGORITHM", "RS256")
    monkeypatch.setenv("INTERNAL_API_KEY", "k")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings = load_settings(_env_file=None)
    assert JWTVerifier(settings).verify(rs256(claims("dave"))).id == "dave"


# ------------------------------------------------------------------ iss and aud


@pytest.fixture(params=["HS256", "RS256"])
def signer_and_verifier(request: pytest.FixtureRequest) -> tuple[Any, JWTVerifier]:
    if request.param == "HS256":
        return hs256, hs256_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    return rs256, rs256_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)


def test_issuer_and_audience_accepted_when_right(
    signer_and_verifier: tuple[Any, JWTVerifier],
) -> None:
    sign, verifier = signer_and_verifier
    assert verifier.verify(sign(claims("erin", iss=ISSUER, aud=AUDIENCE))).id == "erin"
    # An audience list containing ours is fine too.
    both = claims("erin", iss=ISSUER, aud=["billing", AUDIENCE])
    assert verifier.verify(sign(both)).id == "erin"


@pytest.mark.parametrize(
    "extra",
    [
        {"aud": AUDIENCE},
        {"iss": "https://evil.example.test", "aud": AUDIENCE},
        {"iss": ISSUER},
        {"iss": ISSUER, "aud": "another-service"},
        {"iss": ISSUER, "aud": ["billing"]},
    ],
    ids=["no-iss", "wrong-iss", "no-aud", "wrong-aud", "aud-list-without-ours"],
)
def test_issuer_and_audience_enforced(
    signer_and_verifier: tuple[Any, JWTVerifier], extra: dict[str, Any]
) -> None:
    sign, verifier = signer_and_verifier
    refused(verifier, sign(claims(**extra)))


def test_issuer_alone_is_enforced_and_audience_then_ignored() -> None:
    verifier = hs256_verifier(jwt_issuer=ISSUER)
    assert verifier.verify(hs256(claims("f", iss=ISSUER, aud="anything"))).id == "f"
    refused(verifier, hs256(claims()))


def test_without_iss_aud_configured_tokens_need_neither() -> None:
    assert hs256_verifier().verify(hs256(claims("g"))).id == "g"
