"""`order-service rotate-secrets` (SPEC sections 2, 8): DO tokens and first-access passwords
re-encrypted with the first SECRETS_KEY, so the old key can be dropped."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import insert, select

from order_service import cli
from order_service.access.models import OrderCredential
from order_service.accounts.models import DoAccount
from order_service.config import load_settings
from order_service.db import create_engine, utcnow
from order_service.orders.models import Order
from order_service.rotate import rotate_secrets
from order_service.secret_box import SecretBox
from tests.conftest import API_KEY, JWT_SECRET

OLD, NEW, NEWER = (Fernet.generate_key().decode() for _ in range(3))


def _order(order_id: uuid.UUID) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": order_id, "user_id": "ani", "plan_id": "p", "plan_name": "P", "image_id": "i",
        "image_name": "I", "duration": "MONTHLY", "base_price": 1, "promo_discount": 0,
        "coupon_discount": 0, "final_price": 1, "currency": "IDR", "status": "PROVISIONING",
        "do_size_slug": "s-1vcpu-1gb", "do_image_slug": "ubuntu-22-04-x64", "created_at": now,
        "updated_at": now, "access": "PASSWORD", "region": "sgp1",
    }  # fmt: skip


async def _seed(url: str, box: SecretBox) -> tuple[uuid.UUID, uuid.UUID]:
    engine = create_engine(url)
    account_id, order_id = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    async with engine.begin() as connection:
        await connection.execute(
            insert(DoAccount.__table__).values(
                id=account_id, name=f"rot-{account_id.hex[:8]}", created_at=now, updated_at=now,
                token_encrypted=box.encrypt("do-token-of-the-account"), token_hint="ount",
            )
        )  # fmt: skip
        await connection.execute(insert(Order.__table__).values(**_order(order_id)))
        await connection.execute(
            insert(OrderCredential.__table__).values(
                order_id=order_id, password_encrypted=box.encrypt("RootPassword2345abcdeXYZ"),
                created_at=now,
            )
        )  # fmt: skip
    await engine.dispose()
    return account_id, order_id


async def _stored(url: str, account_id: uuid.UUID, order_id: uuid.UUID) -> tuple[str, str]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        token = (
            await connection.execute(
                select(DoAccount.token_encrypted).where(DoAccount.id == account_id)
            )
        ).scalar_one()
        password = (
            await connection.execute(
                select(OrderCredential.password_encrypted).where(
                    OrderCredential.order_id == order_id
                )
            )
        ).scalar_one()
    await engine.dispose()
    return token, password


def _settings(url: str, keys: str) -> Any:
    return load_settings(
        database_url=url, jwt_algorithm="HS256", jwt_secret=JWT_SECRET,
        internal_api_key=API_KEY, secrets_key=keys, _env_file=None,
    )  # fmt: skip


def test_rotation_re_encrypts_tokens_and_passwords_then_the_old_key_can_go(
    database: Any, clean_db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    url = database.url
    account_id, order_id = asyncio.run(_seed(url, SecretBox([OLD.encode()])))

    # New key first, the old one after it: rotate, then the new key alone opens both.
    counts = asyncio.run(rotate_secrets(_settings(url, f"{NEW},{OLD}")))
    assert counts["do_accounts"] >= 1 and counts["order_credentials"] == 1
    token, password = asyncio.run(_stored(url, account_id, order_id))
    new_only = SecretBox([NEW.encode()])
    assert new_only.decrypt(token) == "do-token-of-the-account"
    assert new_only.decrypt(password) == "RootPassword2345abcdeXYZ"
    with pytest.raises(InvalidToken):
        SecretBox([OLD.encode()]).decrypt(password)

    # The command line does the same from the environment (no .env in this directory).
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": url,
        "JWT_ALGORITHM": "HS256",
        "JWT_SECRET": JWT_SECRET,
        "INTERNAL_API_KEY": API_KEY,
        "SECRETS_KEY": f"{NEWER},{NEW}",
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["rotate-secrets"]) == 0
    token, password = asyncio.run(_stored(url, account_id, order_id))
    newer_only = SecretBox([NEWER.encode()])
    assert newer_only.decrypt(token) == "do-token-of-the-account"
    assert newer_only.decrypt(password) == "RootPassword2345abcdeXYZ"
    with pytest.raises(InvalidToken):
        new_only.decrypt(token)
