"""The user's SSH keys through the HTTP API (SPEC section 14), and the order's snapshot of them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.access import service
from order_service.access.models import SshKey
from order_service.config import Settings
from order_service.db import session_scope
from order_service.errors import InvalidSshKey, ValidationFailed
from tests.conftest import auth, make_settings
from tests.helpers import api_only, assert_error

KEYS = "/api/v1/ssh-keys"
KEY_FIELDS = {"id", "name", "fingerprint", "type", "createdAt"}


def ed25519_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def md5_of(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


async def add(
    client: httpx.AsyncClient, user: str = "ani", name: str = "laptop", key: str | None = None
) -> httpx.Response:
    body = {"name": name, "publicKey": key if key is not None else ed25519_line()}
    return await client.post(KEYS, json=body, headers=auth(user))


async def added(client: httpx.AsyncClient, user: str = "ani", **kwargs: Any) -> dict[str, Any]:
    response = await add(client, user, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def count_rows(engine: AsyncEngine, user: str) -> int:
    async with engine.connect() as connection:
        statement = select(func.count()).select_from(SshKey).where(SshKey.user_id == user)
        return (await connection.execute(statement)).scalar_one()


# ------------------------------------------------------------------ the happy path


async def test_add_get_list_delete(client: httpx.AsyncClient) -> None:
    line = ed25519_line()
    response = await add(client, key=f"{line} ani@laptop\n")
    assert response.status_code == 201, response.text
    key = response.json()["data"]
    assert set(response.json()) == {"data"}
    assert set(key) == KEY_FIELDS
    assert key["name"] == "laptop" and key["type"] == "ssh-ed25519"
    assert key["fingerprint"] == md5_of(line)
    assert key["createdAt"].endswith("Z")
    uuid.UUID(key["id"])

    got = await client.get(f"{KEYS}/{key['id']}", headers=auth("ani"))
    assert got.status_code == 200 and got.json() == {"data": key}
    listed = await client.get(KEYS, headers=auth("ani"))
    assert listed.json() == {
        "data": [key],
        "meta": {"page": 1, "limit": 10, "total": 1, "totalPages": 1},
    }

    deleted = await client.delete(f"{KEYS}/{key['id']}", headers=auth("ani"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(
        await client.get(f"{KEYS}/{key['id']}", headers=auth("ani")), 404, "SSH_KEY_NOT_FOUND"
    )
    again = await client.delete(f"{KEYS}/{key['id']}", headers=auth("ani"))
    assert_error(again, 404, "SSH_KEY_NOT_FOUND")
    # Gone, so it can be added again.
    assert (await add(client, key=line)).status_code == 201


async def test_rsa_and_ecdsa_keys_have_their_type(client: httpx.AsyncClient) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    ec_key = ec.generate_private_key(ec.SECP384R1()).public_key()
    for key, key_type in ((rsa_key, "ssh-rsa"), (ec_key, "ecdsa-sha2-nistp384")):
        line = key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        created = await added(client, key=line)
        assert created["type"] == key_type and created["fingerprint"] == md5_of(line)


async def test_the_list_is_paged_newest_first_like_the_orders(client: httpx.AsyncClient) -> None:
    ids = [(await added(client, name=f"key {i}"))["id"] for i in range(3)]
    await added(client, "someone-else")
    page1 = (await client.get(KEYS, params={"limit": 2}, headers=auth("ani"))).json()
    assert [k["id"] for k in page1["data"]] == ids[::-1][:2]
    assert page1["meta"] == {"page": 1, "limit": 2, "total": 3, "totalPages": 2}
    page2 = (await client.get(KEYS, params={"page": 2, "limit": 2}, headers=auth("ani"))).json()
    assert [k["id"] for k in page2["data"]] == [ids[0]]
    past = await client.get(KEYS, params={"page": 9}, headers=auth("ani"))
    assert past.status_code == 200
    assert past.json() == {
        "data": [],
        "meta": {"page": 9, "limit": 10, "total": 3, "totalPages": 1},
    }
    nobody = await client.get(KEYS, headers=auth("nobody"))
    assert nobody.json()["meta"] == {"page": 1, "limit": 10, "total": 0, "totalPages": 0}
    for params in ({"page": 0}, {"limit": 0}, {"limit": 101}, {"page": "x"}):
        assert_error(
            await client.get(KEYS, params=params, headers=auth("ani")), 400, "VALIDATION_ERROR"
        )


# ------------------------------------------------------------------ refusals


def weak_rsa_line() -> str:
    # Weak on purpose: the key the service must refuse.
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def private_key_text() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (weak_rsa_line, "1024 bits is too weak"),
        (private_key_text, "private key"),
        (lambda: "not a key at all", "accepted type"),
        (lambda: "", "empty"),
        (lambda: f"{ed25519_line()}\n{ed25519_line()}", "more than one line"),
        (lambda: "ssh-ed25519 AAAA\x00", "base64"),
    ],
    ids=["rsa-1024", "private", "garbage", "empty", "two-lines", "nul"],
)
async def test_an_invalid_key_is_400_with_a_reason(
    client: httpx.AsyncClient, engine: AsyncEngine, make: Any, reason: str
) -> None:
    error = assert_error(await add(client, key=make()), 400, "INVALID_SSH_KEY")
    assert reason in error["details"]["reason"]
    assert await count_rows(engine, "ani") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "publicKey": "k"},
        {"name": "x" * 101, "publicKey": "k"},
        {"name": "lap\x00top", "publicKey": "k"},
        {"name": "   ", "publicKey": "k"},
        {"name": 5, "publicKey": "k"},
        {"publicKey": "k"},
        {"name": "laptop"},
        {"name": "laptop", "publicKey": None},
        {"name": "laptop", "publicKey": "k" * 16385},
    ],
    ids=["empty", "101", "nul", "blank", "number", "no-name", "no-key", "null-key", "long-key"],
)
async def test_a_malformed_body_is_400_validation_error(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    error = assert_error(
        await client.post(KEYS, json=body, headers=auth("ani")), 400, "VALIDATION_ERROR"
    )
    assert error["details"]["fields"]


async def test_a_name_of_100_characters_of_any_script_is_fine(client: httpx.AsyncClient) -> None:
    name = ("kunci laptop ☕ " * 10)[:100]
    assert (await added(client, name=name))["name"] == name


async def test_the_same_key_twice_is_409_naming_the_one_you_have(
    client: httpx.AsyncClient,
) -> None:
    line = ed25519_line()
    first = await added(client, key=line)
    # Another comment, another name: still the same key.
    error = assert_error(
        await add(client, name="again", key=f"{line} other"), 409, "SSH_KEY_EXISTS"
    )
    assert error["details"] == {"sshKeyId": first["id"]}
    # Another user may have the same key.
    assert (await add(client, "bob", key=line)).status_code == 201


async def test_at_most_20_keys(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    lines = [ed25519_line() for _ in range(20)]
    keys = [await added(client, name=f"key {i}", key=line) for i, line in enumerate(lines)]
    error = assert_error(await add(client), 409, "TOO_MANY_SSH_KEYS")
    assert error["details"] == {"limit": 20}
    assert await count_rows(engine, "ani") == 20
    # At the limit, a key you already have is still SSH_KEY_EXISTS.
    exists = assert_error(await add(client, key=lines[3]), 409, "SSH_KEY_EXISTS")
    assert exists["details"]["sshKeyId"] == keys[3]["id"]
    # Other users are not counted; one deleted makes room for one.
    assert (await add(client, "bob")).status_code == 201
    await client.delete(f"{KEYS}/{keys[0]['id']}", headers=auth("ani"))
    assert (await add(client)).status_code == 201
    assert_error(await add(client), 409, "TOO_MANY_SSH_KEYS")


async def test_another_users_key_and_a_malformed_id_are_404(client: httpx.AsyncClient) -> None:
    key = await added(client, "ani")
    for path in (
        f"{KEYS}/{key['id']}",
        f"{KEYS}/{uuid.uuid4()}",
        f"{KEYS}/not-a-uuid",
        f"{KEYS}/1",
    ):
        for method in ("GET", "DELETE"):
            response = await client.request(method, path, headers=auth("intruder"))
            assert_error(response, 404, "SSH_KEY_NOT_FOUND")
    # The intruder's DELETE left it alone.
    assert (await client.get(f"{KEYS}/{key['id']}", headers=auth("ani"))).json() == {"data": key}


async def test_without_a_valid_jwt_is_401_whatever_the_id(client: httpx.AsyncClient) -> None:
    key = {"name": "x", "publicKey": ed25519_line()}
    assert_error(await client.get(KEYS), 401, "UNAUTHORIZED")
    assert_error(await client.post(KEYS, json=key), 401, "UNAUTHORIZED")
    assert_error(await client.post(KEYS, json={"name": ""}), 401, "UNAUTHORIZED")
    for method in ("GET", "DELETE"):
        assert_error(await client.request(method, f"{KEYS}/not-a-uuid"), 401, "UNAUTHORIZED")


# ------------------------------------------------------------------ races
# On PostgreSQL the requests really run side by side (the unique constraint and
# the user's advisory lock decide); on SQLite the database's write lock queues
# them, and the answers must be the same.


def racing_app(settings: Settings, catalog_app: Any) -> Any:
    # Room in the pool for every request at once, so they really run side by side.
    return api_only(make_settings(settings.database_url, database_pool_size=40), catalog_app)


def codes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(
        (r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else None)
        for r in responses
    )


async def test_the_same_key_sent_at_once_is_added_once(
    settings: Settings, catalog_app: Any, clean_db: None, engine: AsyncEngine
) -> None:
    async with racing_app(settings, catalog_app) as (_, racing):
        for round_ in range(3):
            line = ed25519_line()
            responses = await asyncio.gather(*(add(racing, key=line) for _ in range(8)))
            assert codes(responses) == {(201, None): 1, (409, "SSH_KEY_EXISTS"): 7}, round_
            (winner,) = [r.json()["data"]["id"] for r in responses if r.status_code == 201]
            for response in responses:
                if response.status_code == 409:
                    assert response.json()["error"]["details"] == {"sshKeyId": winner}
    assert await count_rows(engine, "ani") == 3


async def test_keys_sent_at_once_at_the_limit_cannot_all_pass(
    settings: Settings, catalog_app: Any, clean_db: None, engine: AsyncEngine
) -> None:
    async with racing_app(settings, catalog_app) as (_, racing):
        for i in range(17):
            assert (await add(racing, name=f"key {i}")).status_code == 201
        responses = await asyncio.gather(*(add(racing) for _ in range(10)))
        assert codes(responses) == {(201, None): 3, (409, "TOO_MANY_SSH_KEYS"): 7}
    assert await count_rows(engine, "ani") == 20


# ------------------------------------------------------------------ the order's snapshot


async def test_snapshot_keys_copies_the_callers_keys_in_order(
    client: httpx.AsyncClient, app: Any
) -> None:
    lines = [ed25519_line() for _ in range(3)]
    keys = [
        await added(client, name=f"key {i}", key=f"{line} c{i}") for i, line in enumerate(lines)
    ]
    chosen = [uuid.UUID(keys[2]["id"]), uuid.UUID(keys[0]["id"])]
    async with session_scope(app.state.sessionmaker) as session:
        snapshot = await service.snapshot_keys(session, "ani", chosen)
        assert await service.snapshot_keys(session, "ani", []) == []
    assert snapshot == [
        {"name": "key 2", "fingerprint": keys[2]["fingerprint"], "publicKey": lines[2]},
        {"name": "key 0", "fingerprint": keys[0]["fingerprint"], "publicKey": lines[0]},
    ]
    # A copy: deleting the key later changes nothing already taken.
    await client.delete(f"{KEYS}/{keys[2]['id']}", headers=auth("ani"))
    assert snapshot[0]["publicKey"] == lines[2]


async def test_snapshot_keys_refuses_ids_that_are_not_the_callers(
    client: httpx.AsyncClient, app: Any
) -> None:
    mine = uuid.UUID((await added(client, "ani"))["id"])
    bobs = uuid.UUID((await added(client, "bob"))["id"])
    unknown = uuid.uuid4()
    for ids, offending in (([mine, bobs], bobs), ([unknown, mine], unknown)):
        async with session_scope(app.state.sessionmaker) as session:
            with pytest.raises(InvalidSshKey) as refused:
                await service.snapshot_keys(session, "ani", ids)
        assert refused.value.details == {"sshKeyId": str(offending)}
        assert str(offending) in refused.value.message


async def test_snapshot_keys_takes_at_most_10_and_no_id_twice(
    client: httpx.AsyncClient, app: Any
) -> None:
    ids = [uuid.UUID((await added(client, name=f"key {i}"))["id"]) for i in range(11)]
    async with session_scope(app.state.sessionmaker) as session:
        assert len(await service.snapshot_keys(session, "ani", ids[:10])) == 10
        for wrong in (ids, [ids[0], ids[1], ids[0]]):
            with pytest.raises(ValidationFailed) as refused:
                await service.snapshot_keys(session, "ani", wrong)
            assert refused.value.code == "VALIDATION_ERROR"
            (field,) = refused.value.details["fields"]
            assert field["field"] == "sshKeyIds"
