"""`order-service serve` keeps an idle connection open for HTTP_KEEP_ALIVE_TIMEOUT.

uvicorn's default (5 s) equals httpx's own idle expiry: in a payment storm a
client reused a connection 5.001 s after its last answer, the server closed it
as the request arrived, and the payment got a connection reset, no answer
(seen in `bench storm`, about one storm in five). The default is now 75 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.test_crash_safety import (
    ServiceProcess,
    neighbours,  # noqa: F401  (fixture)
    processes,  # noqa: F401  (fixture)
    service_env,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.slow

HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\n\r\n"


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One request on the open connection: its status line, or b"" if the server closed it."""
    writer.write(HEALTH)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


async def _reused_after(service: ServiceProcess, idle_s: float) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        assert await _ask(reader, writer) == b"HTTP/1.1 200 OK"
        await asyncio.sleep(idle_s)
        try:
            return await _ask(reader, writer) == b"HTTP/1.1 200 OK"
        except (asyncio.IncompleteReadError, ConnectionError):
            return False  # closed (or reset) by the server while idle
    finally:
        writer.close()


async def test_an_idle_connection_outlives_uvicorns_five_seconds(
    service_env: dict[str, str],  # noqa: F811
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    service = ServiceProcess(service_env, tmp_path / "default.log")
    processes.append(service)
    await service.wait_ready()
    assert await _reused_after(service, 6.0)


async def test_the_setting_is_what_closes_an_idle_connection(
    service_env: dict[str, str],  # noqa: F811
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {**service_env, "HTTP_KEEP_ALIVE_TIMEOUT": "PT1S"}
    service = ServiceProcess(env, tmp_path / "1s.log")
    processes.append(service)
    await service.wait_ready()
    assert not await _reused_after(service, 2.5)
