"""The events duty of one process: the relay and the webhook dispatcher, started together."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.config import Settings
from order_service.events.deliveries import Dispatcher
from order_service.events.relay import Relay


class RunningEvents:
    def __init__(self, relay: Relay, dispatcher: Dispatcher) -> None:
        self.relay = relay
        self.dispatcher = dispatcher

    async def stop(self) -> None:
        # The relay first: nothing new is fanned out while the dispatcher stops.
        await self.relay.stop()
        await self.dispatcher.stop()


def start_events(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: httpx.AsyncBaseTransport | None = None,
) -> RunningEvents:
    dispatcher = Dispatcher(
        sessionmaker,
        retry_schedule=settings.webhook_retry_schedule,
        timeout=settings.webhook_timeout,
        transport=transport,
    )
    relay = Relay(sessionmaker)
    dispatcher.start()
    relay.start()
    return RunningEvents(relay, dispatcher)
