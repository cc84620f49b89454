"""Idempotency-Key for POST /api/v1/orders (scoped to the user, kept 24 h).

The key is claimed in its own short transaction before any work starts, so a
concurrent duplicate sees it at once (409 IDEMPOTENCY_KEY_IN_USE). The
response is stored in the *same* transaction that creates the order, so the
order and its replayable response commit together. If the first request
fails, its claim is released and the key can be used again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.db import utcnow
from order_service.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from order_service.orders.models import IdempotencyKey

keys_t = IdempotencyKey.__table__

RETENTION = timedelta(hours=24)
# A claim whose request died without releasing it (a crashed process) is
# considered abandoned after this long and may be taken over.
CLAIM_TIMEOUT = timedelta(seconds=60)

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def claim(self, user_id: str, key: str, request_hash: str) -> StoredResponse | None:
        """Claim the key (None) or return the first request's stored response.

        Raises IdempotencyKeyReused for another body, IdempotencyKeyInUse while
        the first request runs.
        """
        for _ in range(3):
            if await self._try_insert(user_id, key, request_hash):
                return None
            async with self._sessionmaker() as session, session.begin():
                row = (
                    (
                        await session.execute(
                            select(keys_t).where(keys_t.c.user_id == user_id, keys_t.c.key == key)
                        )
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    continue  # released meanwhile: try to claim again
                now = utcnow()
                if row["expires_at"] <= now:
                    await session.execute(_delete_expired(user_id, key, now))
                    continue
                if row["request_hash"] != request_hash:
                    raise IdempotencyKeyReused()
                if row["state"] == COMPLETED:
                    return StoredResponse(row["response_status"], row["response_body"])
                if row["locked_until"] > now:
                    raise IdempotencyKeyInUse()
                taken = await session.execute(
                    update(keys_t)
                    .where(
                        keys_t.c.user_id == user_id,
                        keys_t.c.key == key,
                        keys_t.c.state == IN_PROGRESS,
                        keys_t.c.locked_until <= now,
                    )
                    .values(locked_until=now + CLAIM_TIMEOUT)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return None
                raise IdempotencyKeyInUse()
        raise IdempotencyKeyInUse()

    async def _try_insert(self, user_id: str, key: str, request_hash: str) -> bool:
        now = utcnow()
        try:
            async with self._sessionmaker() as session, session.begin():
                await session.execute(
                    insert(keys_t).values(
                        user_id=user_id,
                        key=key,
                        request_hash=request_hash,
                        state=IN_PROGRESS,
                        locked_until=now + CLAIM_TIMEOUT,
                        expires_at=now + RETENTION,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    @staticmethod
    async def complete(
        session: AsyncSession, user_id: str, key: str, response: StoredResponse
    ) -> None:
        """Store the response in the caller's transaction (the one creating the order)."""
        await session.execute(
            update(keys_t)
            .where(keys_t.c.user_id == user_id, keys_t.c.key == key)
            .values(
                state=COMPLETED, response_status=response.status_code, response_body=response.body
            )
        )

    async def release(self, user_id: str, key: str) -> None:
        """Forget an unfinished claim so the client may retry with the same key."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(keys_t).where(
                    keys_t.c.user_id == user_id, keys_t.c.key == key, keys_t.c.state == IN_PROGRESS
                )
            )

    async def purge_expired(self) -> int:
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(delete(keys_t).where(keys_t.c.expires_at <= utcnow()))
            return result.rowcount or 0  # type: ignore[attr-defined]


def _delete_expired(user_id: str, key: str, now: Any) -> Any:
    return delete(keys_t).where(
        keys_t.c.user_id == user_id, keys_t.c.key == key, keys_t.c.expires_at <= now
    )
