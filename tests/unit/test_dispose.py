"""db.dispose_when_returned: shutdown waits (bounded) for connections still in use."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from order_service.db import create_engine, dispose_when_returned


async def test_a_straggler_gives_its_write_lock_back_before_the_engine_goes(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url)
    holding = asyncio.Event()

    async def straggler() -> None:
        # A duty finishing its transaction (BEGIN IMMEDIATE: the file's write lock)
        # while the process shuts down.
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
            holding.set()
            await asyncio.sleep(0.3)

    task = asyncio.create_task(straggler())
    await holding.wait()
    assert await dispose_when_returned(engine, within_s=5) == 0
    assert task.done()  # waited for it, not closed under it
    # The next user of the file gets the write lock at once.
    other = sqlite3.connect(tmp_path / "db.sqlite", timeout=0.2, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")
        other.execute("COMMIT")
    finally:
        other.close()


async def test_a_connection_never_returned_is_reported_after_the_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    connection = await engine.connect()
    try:
        with caplog.at_level(logging.WARNING, logger="order_service"):
            assert await dispose_when_returned(engine, within_s=0.1) == 1
        assert "1 database connection(s) still in use at shutdown" in caplog.text
    finally:
        await connection.close()
