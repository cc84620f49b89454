"""Secrets at rest: DO tokens added through the API and first-access passwords.

One small door over `cryptography`'s `MultiFernet` (SPEC section 2,
`SECRETS_KEY`): the first key encrypts, every key decrypts, and `rotate`
re-encrypts a token under the first key (`order-service rotate-secrets`).
Nothing here is a cipher of our own. A `SecretBox` never logs, and its
`repr` names no key.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from order_service.config import Settings
from order_service.errors import SecretsKeyRequired

__all__ = ["InvalidToken", "SecretBox", "SecretsKeyRequired", "secret_box"]


class SecretBox:
    """Encrypts and decrypts short texts with the configured Fernet keys."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"SecretBox(keys={self.key_count})"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext; `InvalidToken` when no configured key opens it."""
        return self._fernet.decrypt(token.encode("ascii")).decode()

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key (its timestamp is kept)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")


def secret_box(settings: Settings) -> SecretBox | None:
    """The box of SECRETS_KEY, or None when it is unset (features needing it answer 409)."""
    keys = settings.secret_keys
    return SecretBox(keys) if keys else None


def require(box: SecretBox | None) -> SecretBox:
    """The box, or 409 SECRETS_KEY_REQUIRED."""
    if box is None:
        raise SecretsKeyRequired()
    return box
