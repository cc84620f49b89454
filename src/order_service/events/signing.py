"""Webhook secrets and signatures (Standard Webhooks, SPEC section 11).

The signature is computed by the `standardwebhooks` library itself, the one
receivers verify with; nothing here hand-writes an HMAC. The library has no
secret generator, so a secret is 24 random bytes, base64, with the `whsec_`
prefix the library strips when it reads one.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signed_headers(
    secret: str, message_id: str, body: str, *, at: datetime | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt: content type, id, timestamp, signature.

    The timestamp is real wall time, never the service's (test-movable) clock:
    receivers refuse a timestamp more than five minutes from their own clock.
    """
    timestamp = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }
