"""One Alembic history: single head, up/down/up on a fresh database, no drift."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from order_service.db import Base, create_engine
from order_service.migrate import alembic_config, downgrade, upgrade
from tests.database import TestDatabase, admin_execute


@pytest.fixture
def fresh_url(database: TestDatabase) -> Iterator[str]:
    """An empty database of the same kind as the run's, dropped afterwards."""
    if not database.is_postgres:
        path = os.path.join(tempfile.mkdtemp(), "migrations.db")
        yield f"sqlite+aiosqlite:///{path}"
        return
    base, _, _ = database.url.rpartition("/")
    name = f"order_service_migrations_{uuid.uuid4().hex[:8]}"
    admin = base.replace("postgresql+asyncpg", "postgresql") + "/postgres"
    asyncio.run(admin_execute(admin, f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    asyncio.run(admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade_and_no_drift(fresh_url: str) -> None:
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    upgrade(fresh_url)
    assert asyncio.run(_drift(fresh_url)) == []


async def _drift(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
