"""First-access passwords at rest (SPEC section 14): made, read by the owner, erased.

A PASSWORD order's root password is made by the provisioner just before the
droplet's first create is sent, in the transaction that records the create's
intent (`password_for_create`), and stored encrypted with SECRETS_KEY in
`order_credentials`; a retried create reuses it. Its TTL counts from the order's
first ACTIVE (`mark_active`, in the provisioner's ACTIVE transaction). It is
erased - the column set to null, `erased_at` kept - when it is read past the TTL,
by the housekeeping purge (`purge_expired`, which reads only the rows that are due:
a partial index on held passwords by `active_since`), and when the order ends
(CANCELED or TERMINATED, `erase`, called by the status door).

The password appears in no log line, event, webhook, order JSON or ops response:
it leaves this module only in the owner's credentials response and, as cloud-init
`user_data`, in the create sent to DO.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.access.first_access import new_root_password
from order_service.access.models import OrderCredential
from order_service.auth import CurrentUser
from order_service.db import plan_with_values, utcnow
from order_service.errors import (
    CredentialsExpired,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
)
from order_service.orders import repository as repo
from order_service.orders.states import Access, OrderStatus
from order_service.orders.views import key_snapshots_json
from order_service.secret_box import InvalidToken, SecretBox, require

__all__ = [
    "erase",
    "mark_active",
    "password_for_create",
    "purge_expired",
    "read_credentials",
]

logger = logging.getLogger("order_service.access")

credentials_t = OrderCredential.__table__
_HELD = credentials_t.c.password_encrypted.is_not(None)
_PASSWORD_OF = select(credentials_t.c.password_encrypted)


async def password_for_create(session: AsyncSession, box: SecretBox, order_id: uuid.UUID) -> str:
    """The password the create about to be sent carries: the stored one, else a new one
    stored now (in the caller's transaction, committed before the create is sent)."""
    row = (await session.execute(_PASSWORD_OF.where(credentials_t.c.order_id == order_id))).first()
    if row is not None and row.password_encrypted is not None:
        try:
            return box.decrypt(row.password_encrypted)
        except InvalidToken:
            # Its key was dropped from SECRETS_KEY: no droplet was made with it yet
            # (this is a create), so a new one takes its place.
            logger.warning(
                "first-access password cannot be decrypted with SECRETS_KEY; a new one is made",
                extra={"order_id": str(order_id)},
            )
    password = new_root_password()
    values = {"password_encrypted": box.encrypt(password), "erased_at": None}
    if row is None:
        await session.execute(
            insert(credentials_t).values(order_id=order_id, created_at=utcnow(), **values)
        )
    else:
        await session.execute(
            update(credentials_t).where(credentials_t.c.order_id == order_id).values(**values)
        )
    return password


async def mark_active(session: AsyncSession, order_id: uuid.UUID, now: datetime) -> None:
    """The order became ACTIVE: its password's TTL starts (the first time only)."""
    await session.execute(
        update(credentials_t)
        .where(credentials_t.c.order_id == order_id, credentials_t.c.active_since.is_(None))
        .values(active_since=now)
    )


async def erase(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Erase the order's password now (its order ended, or the TTL passed)."""
    await session.execute(
        update(credentials_t)
        .where(credentials_t.c.order_id == order_id, _HELD)
        .values(password_encrypted=None, erased_at=utcnow())
    )


async def purge_expired(sessionmaker: async_sessionmaker[AsyncSession], ttl: timedelta) -> int:
    """Erase every password held past CREDENTIALS_TTL after its order's first ACTIVE;
    returns how many. Reads only the due rows (ix_order_credentials_held_active_since)."""
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        await plan_with_values(session)
        result = await session.execute(
            update(credentials_t)
            .where(_HELD, credentials_t.c.active_since <= now - ttl)
            .values(password_encrypted=None, erased_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def read_credentials(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox | None,
    order_id: uuid.UUID,
    owner: CurrentUser,
    ttl: timedelta,
) -> dict[str, Any]:
    """`{"data": {"username", "password", "sshKeys", "ipv4Public", "expiresAt"}}` for the
    owner of an ACTIVE order (SPEC section 14).

    Its own unit of work: a password found past its TTL is erased and that commits
    before the 410 goes out (a request's session would roll it back with the error).
    """
    expired = False
    async with sessionmaker() as session, session.begin():
        found = await repo.get_order_with_task(session, order_id)
        if found is None:
            raise OrderNotFound()
        order, task = found
        if order["user_id"] != owner.id:
            raise OrderAccessDenied()
        if order["status"] != OrderStatus.ACTIVE.value:
            raise OrderStatusConflict(
                f"The credentials are readable while the order is ACTIVE; it is {order['status']}",
                details={"currentStatus": order["status"]},
            )
        data: dict[str, Any] = {
            "username": "root",
            "password": None,
            "sshKeys": key_snapshots_json(order["ssh_keys"]),
            "ipv4Public": task["ipv4_public"] if task is not None else None,
            "expiresAt": None,
        }
        if order["access"] == Access.SSH_KEYS.value:
            return {"data": data}
        if order["access"] is None:
            raise CredentialsExpired(
                "This order was placed before the service kept first-access credentials: "
                "it has none (DigitalOcean sent the root password to the account's owner)",
                details={"reason": "NO_FIRST_ACCESS"},
            )
        expires_at = order["activated_at"] + ttl
        row = (
            await session.execute(_PASSWORD_OF.where(credentials_t.c.order_id == order_id))
        ).first()
        if utcnow() >= expires_at or row is None or row.password_encrypted is None:
            await erase(session, order_id)
            expired = True
        else:
            data["password"] = require(box).decrypt(row.password_encrypted)
            data["expiresAt"] = expires_at
    if expired:
        raise CredentialsExpired(details={"expiredAt": expires_at})
    return {"data": data}
