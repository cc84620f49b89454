"""DESTROY: DELETE the droplet until DO answers 404 for it (SPEC sections 9, 10).

DELETE is idempotent: a second one after a crash is a 404, the same end
state, so no intent is needed to decide whether to send again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

from order_service.actions.run import DESTROYED, ActionRun
from order_service.db import utcnow
from order_service.orders.states import ActionStatus
from order_service.provisioning.digitalocean import DigitalOceanClient

# GETs after a DELETE before it is sent again (DO may take a moment to 404).
DELETE_CHECKS = 20


async def delete_until_gone(
    client: DigitalOceanClient,
    droplet_id: int,
    *,
    poll_s: float,
    checks: int = DELETE_CHECKS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """DELETE the droplet, then GET it until DO answers 404 (True), at most `checks` times.

    Safe to repeat after any crash: a second DELETE of a deleted droplet is
    a 404, the same end state. Used by DESTROY and by a retried provisioning
    that must get rid of an errored droplet before creating a new one.
    """
    if not await client.delete_droplet(droplet_id):
        return True
    for _ in range(checks):
        await sleep(poll_s)
        if await client.get_droplet(droplet_id) is None:
            return True
    return False


class DestroyRun(ActionRun):
    async def step(self) -> None:
        if self.row["intent_at"] is None:
            await self.save(intent_at=utcnow(), attempts=(self.row["attempts"] or 0) + 1)
        gone = await delete_until_gone(
            self.client, self.droplet_id, poll_s=self.config.poll_interval_s, sleep=self.sleep
        )
        if gone:
            self.log("droplet %s destroyed", self.droplet_id)
            await self.finish(ActionStatus.COMPLETED, droplet_status=DESTROYED)

    async def no_droplet(self) -> NoReturn:
        # Nothing to destroy (a FAILED order that never had one, or done already).
        await self.finish(ActionStatus.COMPLETED, droplet_status=self.droplet.droplet_status)

    async def droplet_gone(self) -> NoReturn:
        await self.finish(ActionStatus.COMPLETED, droplet_status=DESTROYED)
