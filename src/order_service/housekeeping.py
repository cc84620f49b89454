"""Periodic clean-up that keeps tables from growing without bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from order_service.orders.idempotency import IdempotencyStore

logger = logging.getLogger("order_service.housekeeping")

PURGE_INTERVAL_S = 600.0


# More purges run by the same loop: (what, coroutine function returning rows deleted).
Purge = tuple[str, Callable[[], Awaitable[int]]]


async def purge_idempotency_keys_forever(
    store: IdempotencyStore,
    interval_s: float = PURGE_INTERVAL_S,
    purges: Sequence[Purge] = (),
) -> None:
    """Delete Idempotency-Keys past their 24 h, and run `purges` (e.g. old events),
    every `interval_s` (first run at once)."""
    everything: list[Purge] = [("expired idempotency key(s)", store.purge_expired), *purges]
    while True:
        for what, purge in everything:
            try:
                purged = await purge()
                if purged:
                    logger.info("purged %d %s", purged, what)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("purge of %s failed; trying again later", what)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running(store: IdempotencyStore, purges: Sequence[Purge] = ()) -> AsyncIterator[None]:
    task = asyncio.create_task(
        purge_idempotency_keys_forever(store, purges=purges), name="housekeeping"
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
