"""SSH key use cases: add, list, get, delete, and the snapshot an order keeps (SPEC section 14).

Services flush, the request's session commits. A user has a key once: the
unique (user_id, fingerprint) constraint decides, whatever the path. At most
MAX_KEYS_PER_USER keys: counted under the user's advisory lock, so racing
adds cannot all pass the count.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.access.keys import parse_public_key
from order_service.access.models import SshKey
from order_service.access.views import snapshot_json, ssh_key_json
from order_service.db import advisory_xact_lock, utcnow
from order_service.errors import (
    InvalidSshKey,
    SshKeyExists,
    SshKeyNotFound,
    TooManySshKeys,
    ValidationFailed,
)
from order_service.orders.views import page_meta

__all__ = [
    "MAX_KEYS_PER_ORDER",
    "MAX_KEYS_PER_USER",
    "add_key",
    "delete_key",
    "get_key",
    "list_keys",
    "parse_ssh_key_id",
    "snapshot_keys",
]

MAX_KEYS_PER_USER = 20
MAX_KEYS_PER_ORDER = 10
# Advisory-lock namespace of "a user's SSH keys" (db.advisory_xact_lock).
_KEYS_LOCK_NAMESPACE = 0x55C4

keys_t = SshKey.__table__
_INSERT_KEY = insert(keys_t).returning(*keys_t.c)


def parse_ssh_key_id(value: str) -> uuid.UUID:
    """A malformed key id names no key: 404, like an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise SshKeyNotFound() from None


async def add_key(
    session: AsyncSession, user_id: str, *, name: str, public_key: str
) -> dict[str, Any]:
    """`{"data": key}` for a new key of the user; 400 INVALID_SSH_KEY, 409
    SSH_KEY_EXISTS (`details.sshKeyId`) or 409 TOO_MANY_SSH_KEYS otherwise."""
    parsed = parse_public_key(public_key)
    # The lock is the transaction's first statement: two adds of one user
    # queue here, so the count below sees the other's committed row.
    await advisory_xact_lock(session, _KEYS_LOCK_NAMESPACE, user_id)
    values = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "name": name,
        "fingerprint": parsed.fingerprint,
        "public_key": parsed.public_key,
        "type": parsed.type,
        "created_at": utcnow(),
    }
    try:
        # A savepoint: after the constraint refused the row, the transaction
        # can still read which key the user already has.
        async with session.begin_nested():
            row = (await session.execute(_INSERT_KEY, values)).mappings().one()
    except IntegrityError:
        existing = await _key_id_by_fingerprint(session, user_id, parsed.fingerprint)
        if existing is None:  # not the (user, fingerprint) constraint after all
            raise
        raise SshKeyExists(
            "You already have this SSH key", details={"sshKeyId": str(existing)}
        ) from None
    # Counted after the insert, so that the same key sent again is SSH_KEY_EXISTS
    # even at the limit; the refusal rolls the insert back with the request.
    count = await _count_keys(session, user_id)
    if count > MAX_KEYS_PER_USER:
        raise TooManySshKeys(
            f"You already have {MAX_KEYS_PER_USER} SSH keys: delete one first",
            details={"limit": MAX_KEYS_PER_USER},
        )
    return {"data": ssh_key_json(row)}


async def _key_id_by_fingerprint(
    session: AsyncSession, user_id: str, fingerprint: str
) -> uuid.UUID | None:
    statement = select(keys_t.c.id).where(
        keys_t.c.user_id == user_id, keys_t.c.fingerprint == fingerprint
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def _count_keys(session: AsyncSession, user_id: str) -> int:
    statement = select(func.count()).select_from(keys_t).where(keys_t.c.user_id == user_id)
    return (await session.execute(statement)).scalar_one()


async def list_keys(
    session: AsyncSession, user_id: str, *, page: int, limit: int
) -> dict[str, Any]:
    """The user's keys, newest first: `{"data": [...], "meta": {...}}` like the order list."""
    rows = (
        (
            await session.execute(
                select(keys_t)
                .where(keys_t.c.user_id == user_id)
                .order_by(keys_t.c.created_at.desc(), keys_t.c.id.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            )
        )
        .mappings()
        .all()
    )
    total = await _count_keys(session, user_id)
    return {"data": [ssh_key_json(row) for row in rows], "meta": page_meta(page, limit, total)}


async def get_key(session: AsyncSession, user_id: str, key_id: uuid.UUID) -> dict[str, Any]:
    """`{"data": key}`; another user's key is 404 SSH_KEY_NOT_FOUND, like an unknown one."""
    row = (
        (
            await session.execute(
                select(keys_t).where(keys_t.c.id == key_id, keys_t.c.user_id == user_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise SshKeyNotFound()
    return {"data": ssh_key_json(row)}


async def delete_key(session: AsyncSession, user_id: str, key_id: uuid.UUID) -> None:
    """Forget the key (orders keep their own copy); 404 when the user has no such key."""
    result = await session.execute(
        delete(keys_t)
        .where(keys_t.c.id == key_id, keys_t.c.user_id == user_id)
        .returning(keys_t.c.id)
    )
    if result.scalar_one_or_none() is None:
        raise SshKeyNotFound()


async def snapshot_keys(
    session: AsyncSession, user_id: str, key_ids: Sequence[uuid.UUID]
) -> list[dict[str, Any]]:
    """The copy of the chosen keys an order keeps: `[{"name", "fingerprint", "publicKey"}]`,
    in the order of `key_ids`.

    At most MAX_KEYS_PER_ORDER ids, no id twice (else 400 VALIDATION_ERROR on
    `sshKeyIds`); each must be one of the user's keys (else 400 INVALID_SSH_KEY
    with `details.sshKeyId`, the first id that is not).
    """
    if len(key_ids) > MAX_KEYS_PER_ORDER:
        raise _invalid_ids(f"at most {MAX_KEYS_PER_ORDER} SSH keys per order")
    if len(set(key_ids)) != len(key_ids):
        raise _invalid_ids("an SSH key is named twice")
    if not key_ids:
        return []
    rows = (
        (
            await session.execute(
                select(keys_t).where(keys_t.c.user_id == user_id, keys_t.c.id.in_(key_ids))
            )
        )
        .mappings()
        .all()
    )
    # By text: asyncpg's own UUID class is not the one callers pass.
    by_id = {str(row["id"]): row for row in rows}
    for key_id in key_ids:
        if str(key_id) not in by_id:
            raise InvalidSshKey(
                f"SSH key {key_id} is not one of your keys", details={"sshKeyId": str(key_id)}
            )
    return [snapshot_json(by_id[str(key_id)]) for key_id in key_ids]


def _invalid_ids(message: str) -> ValidationFailed:
    # The shape of every VALIDATION_ERROR: details.fields names the field.
    return ValidationFailed(
        details={"fields": [{"field": "sshKeyIds", "in": "body", "message": message}]}
    )
