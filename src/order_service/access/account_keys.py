"""An order's SSH keys made present in the droplet's DO account, once per account (SPEC §14).

Before a create, each key of the order's copy is looked up in `do_account_keys`;
one not known there is asked of DO (`GET /v2/account/keys/{fingerprint}`, and when
404 `POST /v2/account/keys`, whose 422 "already in use" counts as present) and
remembered once DO said so. So a key costs DO requests once per account, across
processes and restarts; within a process, concurrent creates with the same key
share one look-up. A crash between DO's answer and the row costs one more GET
(the key is found: no second upload).

DO's errors reach the caller as the client raises them (an account's troubles,
DO unavailable, a permanent refusal): the create's own handling applies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.access.models import DoAccountKey
from order_service.db import insert_if_absent, utcnow
from order_service.provisioning.digitalocean import DigitalOceanClient

__all__ = ["AccountKeys", "do_key_name"]

keys_t = DoAccountKey.__table__


def do_key_name(fingerprint: str) -> str:
    """The key's name in the hosting business's account: ours, and no customer's words."""
    return f"order-service {fingerprint}"


class AccountKeys:
    """The keys known to be in each account, for one process."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._locks: dict[tuple[uuid.UUID, str], asyncio.Lock] = {}

    async def ensure_present(
        self,
        account_id: uuid.UUID,
        client: DigitalOceanClient,
        keys: Sequence[Mapping[str, Any]],
    ) -> list[str]:
        """Make every key present in the account; returns their fingerprints, as the
        create's `ssh_keys`."""
        fingerprints = [key["fingerprint"] for key in keys]
        if not fingerprints:
            return []
        known = await self._known(account_id, fingerprints)
        for key in keys:
            fingerprint = key["fingerprint"]
            if fingerprint in known:
                continue
            lock = self._locks.setdefault((account_id, fingerprint), asyncio.Lock())
            async with lock:
                if await self._known(account_id, [fingerprint]):
                    continue  # another worker of this process just made it present
                await self._make_present(account_id, client, fingerprint, key["publicKey"])
        return fingerprints

    async def forget(self, account_id: uuid.UUID, fingerprints: Sequence[str]) -> None:
        """DO refused keys we thought present (removed from the account by hand):
        the next create asks DO again."""
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                delete(keys_t).where(
                    keys_t.c.account_id == account_id, keys_t.c.fingerprint.in_(fingerprints)
                )
            )

    async def _make_present(
        self, account_id: uuid.UUID, client: DigitalOceanClient, fingerprint: str, public_key: str
    ) -> None:
        found = await client.get_ssh_key(fingerprint)
        if found is None:
            found = await client.create_ssh_key(do_key_name(fingerprint), public_key)
        async with self._sessionmaker() as session, session.begin():
            await insert_if_absent(
                session,
                keys_t,
                {
                    "account_id": account_id,
                    "fingerprint": fingerprint,
                    # None: DO said "already in use" (present, id not told).
                    "do_key_id": found.id if found is not None else None,
                    "created_at": utcnow(),
                },
            )

    async def _known(self, account_id: uuid.UUID, fingerprints: Sequence[str]) -> set[str]:
        statement = select(keys_t.c.fingerprint).where(
            keys_t.c.account_id == account_id, keys_t.c.fingerprint.in_(fingerprints)
        )
        async with self._sessionmaker() as session:
            return set((await session.execute(statement)).scalars())
