"""BACKGROUND_THREAD: the duties run on an event loop of their own (PostgreSQL).

A payment committed on the request loop still wakes the provisioner on the
duties' loop at once; the duties' start failing fails the app's start; stopping
the app ends the thread. Against the fake DigitalOcean over real HTTP.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from order_service.background_thread import BackgroundThread
from tests.conftest import make_settings
from tests.helpers import create_order, pay
from tests.integration.test_provisioning import (
    configure,
    fake_do,  # noqa: F401 (fixture)
    fake_do_server,  # noqa: F401 (fixture)
    running_service,
    stats,
    wait_for,
)

pytestmark = pytest.mark.postgres_only

BACKGROUND_THREAD = "order-service-background"


def _background_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == BACKGROUND_THREAD]


async def test_a_payment_wakes_the_provisioner_on_its_own_loop_at_once(
    database: Any,
    fake_do_server: tuple[str, Any],  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
    catalog_app: Any,
    clean_db: None,
) -> None:
    await configure(fake_do, boot_seconds=0.2)
    # Scans 5 s apart: a create within 2 s of the payment can only come from its wake-up,
    # handed from the request loop to the duties' loop.
    async with running_service(
        database.url, fake_do_server[0], catalog_app, provisioning_poll_interval_ms=5000
    ) as client:
        assert len(_background_threads()) == 1
        order = await create_order(client, "thread-user")
        await asyncio.sleep(0.3)  # the start-up scan is over
        paid_at = time.monotonic()
        assert (await pay(client, order["id"])).status_code == 200
        while (await stats(fake_do))["by_route"].get("create", 0) == 0:
            assert time.monotonic() - paid_at < 2, "the payment did not wake the provisioner"
            await asyncio.sleep(0.02)
        active = await wait_for(client, order["id"], {"ACTIVE"}, within=20)
        assert active["provisioningTask"]["dropletStatus"] == "active"
    assert _background_threads() == []


async def test_the_duties_failing_to_start_fail_the_app_and_end_the_thread(
    settings: Any, catalog_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from order_service import app as app_module

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("duties could not start")

    monkeypatch.setattr(app_module, "start_background", broken)
    application = app_module.create_app(
        make_settings(settings.database_url),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
    )
    with pytest.raises(RuntimeError, match="duties could not start"):
        async with application.router.lifespan_context(application):
            pass
    for thread in _background_threads():
        thread.join(5)
    assert _background_threads() == []


async def test_without_the_thread_the_duties_share_the_request_loop(
    settings: Any, catalog_app: Any
) -> None:
    from order_service.app import create_app

    application = create_app(
        make_settings(settings.database_url, background_thread=False),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
    )
    async with application.router.lifespan_context(application):
        assert not isinstance(application.state.background, BackgroundThread)
        assert "provisioning" in application.state.background.duties
        assert _background_threads() == []
