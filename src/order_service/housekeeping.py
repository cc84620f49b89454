"""Periodic clean-up that keeps tables from growing without bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from order_service.orders.idempotency import IdempotencyStore

logger = logging.getLogger("order_service.housekeeping")

PURGE_INTERVAL_S = 600.0


async def purge_idempotency_keys_forever(
    store: IdempotencyStore, interval_s: float = PURGE_INTERVAL_S
) -> None:
    """Delete Idempotency-Keys past their 24 h, every `interval_s` (first run at once)."""
    while True:
        try:
            purged = await store.purge_expired()
            if purged:
                logger.info("purged %d expired idempotency key(s)", purged)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("idempotency key purge failed; trying again later")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(store: IdempotencyStore) -> AsyncIterator[None]:
    task = asyncio.create_task(purge_idempotency_keys_forever(store), name="housekeeping")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
