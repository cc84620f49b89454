"""Who is calling: a user with a bearer JWT, or the ops bot with X-API-Key."""

from __future__ import annotations

import hmac
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
    name="X-API-Key", auto_error=False, description="INTERNAL_API_KEY of the ops bot"
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
    """

    def __init__(self, settings: Settings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._key = settings.jwt_verification_key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience

    def verify(self, token: str) -> CurrentUser:
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
                leeway=5,
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
        return CurrentUser(id=subject)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> CurrentUser:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer token")
    verifier: JWTVerifier = request.app.state.jwt_verifier
    return verifier.verify(credentials.credentials)


async def internal_caller(
    api_key: Annotated[str | None, Security(api_key_scheme)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> None:
    expected = settings.internal_api_key
    assert expected is not None
    # Constant-time comparison: the key must not leak through timing.
    if api_key is None or not hmac.compare_digest(
        api_key.encode(), expected.get_secret_value().encode()
    ):
        raise Unauthorized("Missing or invalid X-API-Key")


User = Annotated[CurrentUser, Depends(current_user)]
