"""Who is calling: a user with a bearer JWT, or the ops bot with X-API-Key."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from order_service.config import Settings
from order_service.errors import Unauthorized

# auto_error=False: we raise our own 401 in the SPEC envelope.
bearer_scheme = HTTPBearer(auto_error=False, description="JWT issued by the platform's auth")
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="INTERNAL_API_KEY, or one of INTERNAL_API_KEYS, of the ops bot",
)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: str

    @property
    def actor(self) -> str:
        return f"user:{self.id}"


class JWTVerifier:
    """Verifies tokens with the algorithm pinned from configuration.

    PyJWT is given exactly one allowed algorithm, so a token claiming another
    one (`none`, or HS256 signed with the RS256 public key) is refused.

    A token that passed is remembered (token text -> user, expiry) so that the
    next requests with it skip the signature check, which was a tenth of a
    GET's CPU (bench/analysis.md, profile): the verdict for the same bytes and key
    cannot change, and the expiry is checked again on every use.
    """

    #: Tokens remembered at most (oldest forgotten first): ~3 MB at 300 bytes each.
    CACHE_SIZE = 10_000
    LEEWAY_S = 5

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._key = settings.jwt_verification_key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._verified: dict[str, tuple[CurrentUser, float]] = {}

    def verify(self, token: str) -> CurrentUser:
        remembered = self._verified.get(token)
        if remembered is not None:
            user, expires = remembered
            if time.time() < expires + self.LEEWAY_S:
                return user
            del self._verified[token]  # expired: the full check below says so
        user, expires = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user, expires)
        return user

    def _verify(self, token: str) -> tuple[CurrentUser, float]:
        options: dict[str, Any] = {"require": ["exp", "sub"], "verify_aud": bool(self._audience)}
        if self._issuer:
            options["require"].append("iss")
        if self._audience:
            options["require"].append("aud")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options=options,
                leeway=self.LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Token has expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("Invalid token") from None
        subject = claims.get("sub")
        if (
            not isinstance(subject, str)
            or not subject.strip()
            or len(subject) > 255
            or "\x00" in subject  # cannot be stored in PostgreSQL text
        ):
            raise Unauthorized("Token has no usable subject")
        return CurrentUser(id=subject), float(claims["exp"])


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> CurrentUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer token")
    verifier: JWTVerifier = request.app.state.jwt_verifier
    return verifier.verify(credentials.credentials)


@dataclass(frozen=True, slots=True)
class InternalCaller:
    """Who called an internal route: the key's name from INTERNAL_API_KEYS, or None
    for INTERNAL_API_KEY. `actor` is what status history and events record."""

    name: str | None

    @property
    def actor(self) -> str:
        return "admin" if self.name is None else f"admin:{self.name}"


async def internal_caller(
    api_key: Annotated[str | None, Security(api_key_scheme)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> InternalCaller:
    """The one dependency of every internal route: 401 unless X-API-Key is an operator key.

    Use it as `caller: Internal` to get the `InternalCaller` (e.g. `caller.actor`);
    a router-level `Depends(internal_caller)` guards routes that need no actor.
    """
    given = (api_key or "").encode()
    matched: InternalCaller | None = None
    # Constant-time, and every key is compared: neither the key nor which
    # entry matched may leak through timing.
    for operator_key in settings.operator_keys:
        if hmac.compare_digest(given, operator_key.key) and matched is None:
            matched = InternalCaller(operator_key.name)
    if api_key is None or matched is None:
        raise Unauthorized("Missing or invalid X-API-Key")
    return matched


User = Annotated[CurrentUser, Depends(current_user)]
Internal = Annotated[InternalCaller, Depends(internal_caller)]
