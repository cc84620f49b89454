"""The fake DigitalOcean API's SSH keys (per account) and creates with ssh_keys/user_data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mocks.fake_do import AUTH, ClientFactory, bearer, create, droplet_body, stats

# Fixed keys; their fingerprints are what `ssh-keygen -l -E md5` prints for them.
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOS5mUIiRz5rBwbUQuKvNBU5jd48q+KmcGxh6qqML7tL test@fake"
)
ED25519_FP = "2e:ad:d3:64:42:64:72:ea:fa:84:15:fc:77:47:01:2c"
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCtGgNARffCu0VUnHpfqdQqzt+JhzXq+Q6vCGKs80qs9DvUT+Sh7zg"
    "2EwyVFodwgiYsTpqzCQ2PesxxksV0hbTQW/zApTk+ABleMY5+4suIF3Ow8n+mwM51JZ8rFidsjITxbLiGlR8kahXxKe"
    "ycV6+/4bBbOx0AspM1dyNOZG4JEtBIXyUv2OUseS+XWHTiuPEjzzTOgnIfYfMqOCeVWEzzpv4mhyoLyrToHc7525D9EG"
    "bVUz/o4wbFNqCp5Z/GYIgQTanKxy7e8n6QWmSW0asWEmBLRfK/Xau0/v0Zt58RBmT2dFSkgB0YCgznrn67WPT1bXXFeT"
    "9KqdpaTKSRTWg1 rsa@fake"
)
RSA_FP = "70:05:eb:aa:5d:06:db:06:82:af:13:e4:c9:2b:76:cb"
IN_USE = {"id": "unprocessable_entity", "message": "SSH Key is already in use on your account"}
A, B = bearer("token-a"), bearer("token-b")


async def add_key(
    client: httpx.AsyncClient, public_key: str, name: str = "laptop", headers: dict[str, str] = AUTH
) -> httpx.Response:
    return await client.post(
        "/v2/account/keys", json={"name": name, "public_key": public_key}, headers=headers
    )


async def test_create_and_get_a_key_by_id_and_by_fingerprint(make_client: ClientFactory) -> None:
    client = make_client()
    created = await add_key(client, ED25519)
    assert created.status_code == 201, created.text
    key = created.json()["ssh_key"]
    assert key == {
        "id": key["id"],
        "fingerprint": ED25519_FP,
        "public_key": ED25519,
        "name": "laptop",
    }
    rsa = (await add_key(client, RSA, name="ci")).json()["ssh_key"]
    assert rsa["fingerprint"] == RSA_FP and rsa["id"] > key["id"]

    for ref in (key["id"], ED25519_FP, ED25519_FP.upper()):
        response = await client.get(f"/v2/account/keys/{ref}", headers=AUTH)
        assert response.status_code == 200
        assert response.json() == {"ssh_key": key}
    for ref in ("999", "00:11:22", "nope"):
        missing = await client.get(f"/v2/account/keys/{ref}", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    counters = await stats(client)
    assert counters["by_route"]["create_key"] == 2 and counters["by_route"]["get_key"] == 6
    assert counters["keys_created"] == 2
    assert counters["accounts"]["fake-do-token"]["keys_created"] == 2


async def test_the_same_key_twice_is_in_use_but_other_accounts_may_have_it(
    make_client: ClientFactory,
) -> None:
    client = make_client(tokens=["token-a", "token-b"])
    assert (await add_key(client, ED25519, headers=A)).status_code == 201
    # Another comment and name do not make another key: the fingerprint does.
    again = await add_key(client, ED25519.replace("test@fake", "other"), "x", headers=A)
    assert again.status_code == 422 and again.json() == IN_USE
    theirs = await add_key(client, ED25519, headers=B)
    assert theirs.status_code == 201
    # Keys are per account: A cannot read B's key by its id.
    their_id = theirs.json()["ssh_key"]["id"]
    assert (await client.get(f"/v2/account/keys/{their_id}", headers=A)).status_code == 404
    counters = await stats(client)
    assert counters["unprocessable"] == 1
    assert counters["accounts"]["token-a"]["keys_created"] == 1
    assert counters["accounts"]["token-b"]["keys_created"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "public_key": "garbage"},
        {"name": "k", "public_key": "ssh-ed25519 AAAA"},
        {"name": "k", "public_key": "ssh-rsa " + ED25519.split()[1]},  # blob of another type
        {"name": "k", "public_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn=="},
        {"name": "k", "public_key": "ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQ"},
        {"name": "k", "public_key": ""},
        {"name": "k"},
        {"public_key": ED25519},
        {"name": "", "public_key": ED25519},
        {"name": "k" * 256, "public_key": ED25519},
        ["not", "an", "object"],
    ],
)
async def test_bad_key_bodies_are_422(make_client: ClientFactory, body: Any) -> None:
    client = make_client()
    response = await client.post("/v2/account/keys", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["id"] == "unprocessable_entity"
    counters = await stats(client)
    assert counters["keys_created"] == 0 and counters["unprocessable"] == 1


async def test_key_body_not_json_is_400(make_client: ClientFactory) -> None:
    client = make_client()
    response = await client.post("/v2/account/keys", content=b"{nope", headers=AUTH)
    assert response.status_code == 400 and response.json()["id"] == "bad_request"


async def test_key_listing_is_paged_per_account(make_client: ClientFactory) -> None:
    client = make_client(tokens=["token-a", "token-b"])
    ids = [
        (await add_key(client, public_key, name=name, headers=A)).json()["ssh_key"]["id"]
        for name, public_key in (("one", ED25519), ("two", RSA))
    ]
    first = (await client.get("/v2/account/keys?per_page=1", headers=A)).json()
    assert [k["id"] for k in first["ssh_keys"]] == ids[:1]
    assert first["meta"] == {"total": 2}
    assert first["links"]["pages"]["next"] == "http://do/v2/account/keys?page=2&per_page=1"
    second = (await client.get(first["links"]["pages"]["next"], headers=A)).json()
    assert [k["name"] for k in second["ssh_keys"]] == ["two"]
    everything = (await client.get("/v2/account/keys", headers=A)).json()
    assert everything["links"] == {"pages": {}} and len(everything["ssh_keys"]) == 2
    empty = (await client.get("/v2/account/keys", headers=B)).json()
    assert empty["ssh_keys"] == [] and empty["meta"] == {"total": 0}
    assert (await stats(client))["by_route"]["list_keys"] == 4


@pytest.mark.parametrize(
    ("kind", "method", "path"),
    [
        ("list_keys", "GET", "/v2/account/keys"),
        ("get_key", "GET", f"/v2/account/keys/{ED25519_FP}"),
        ("create_key", "POST", "/v2/account/keys"),
    ],
)
async def test_fail_next_for_key_routes(
    make_client: ClientFactory, kind: str, method: str, path: str
) -> None:
    client = make_client()
    if kind == "get_key":
        await add_key(client, ED25519)
    await client.post("/_fake/config", json={"fail_next": {kind: 1}, "fail_status": 502})
    body = {"name": "k", "public_key": ED25519 if kind != "get_key" else RSA}
    failed = await client.request(method, path, json=body, headers=AUTH)
    assert failed.status_code == 502 and failed.json()["id"] == "server_error"
    ok = await client.request(method, path, json=body, headers=AUTH)
    assert ok.status_code == (201 if method == "POST" else 200)
    assert (await stats(client))["keys_created"] == (1 if kind != "list_keys" else 0)


async def test_keys_need_a_token(make_client: ClientFactory) -> None:
    client = make_client()
    assert (await client.get("/v2/account/keys")).status_code == 401
    response = await client.post("/v2/account/keys", json={"name": "k", "public_key": ED25519})
    assert response.status_code == 401
    assert (await stats(client))["keys_created"] == 0


# -- creates with ssh_keys and user_data ------------------------------------------------------


async def details(client: httpx.AsyncClient, droplet_id: int) -> dict[str, Any]:
    response = await client.get(f"/_fake/droplets/{droplet_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_create_records_keys_and_user_data(make_client: ClientFactory) -> None:
    client = make_client()
    ed = (await add_key(client, ED25519)).json()["ssh_key"]
    await add_key(client, RSA, name="ci")
    cloud_init = "#cloud-config\nchpasswd:\n  expire: false\n"
    created = await create(client, ssh_keys=[ed["id"], RSA_FP, ED25519_FP], user_data=cloud_init)
    droplet = created["droplet"]
    assert "user_data" not in droplet and "ssh_keys" not in droplet  # DO shows neither

    seen = await details(client, droplet["id"])
    assert seen == {
        "droplet": seen["droplet"],
        "account": "fake-do-token",
        "ssh_keys": [ED25519_FP, RSA_FP],  # ids resolved, duplicates folded
        "user_data": cloud_init,
    }
    assert seen["droplet"]["id"] == droplet["id"]
    plain = await create(client)
    assert (await details(client, plain["droplet"]["id"]))["ssh_keys"] == []
    assert (await details(client, plain["droplet"]["id"]))["user_data"] is None


async def test_user_data_up_to_64_kib(make_client: ClientFactory) -> None:
    client = make_client()
    at_limit = "x" * (64 * 1024)
    droplet_id = (await create(client, user_data=at_limit))["droplet"]["id"]
    assert (await details(client, droplet_id))["user_data"] == at_limit
    # Counted in bytes: 32 Ki two-byte characters plus one byte is over.
    for too_big in ("x" * (64 * 1024 + 1), "é" * (32 * 1024) + "x"):
        body = droplet_body(user_data=too_big)
        response = await client.post("/v2/droplets", json=body, headers=AUTH)
        assert response.status_code == 422 and "user_data" in response.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"ssh_keys": [123]}, "123"),
        ({"ssh_keys": [ED25519_FP]}, ED25519_FP),  # not in this account
        ({"ssh_keys": "all"}, "ssh_keys"),
        ({"ssh_keys": [True]}, "ssh_keys"),
        ({"ssh_keys": [""]}, "ssh_keys"),
        ({"ssh_keys": [1.5]}, "ssh_keys"),
        ({"user_data": 42}, "user_data"),
    ],
)
async def test_create_with_bad_keys_or_user_data_is_422(
    make_client: ClientFactory, overrides: dict[str, Any], fragment: str
) -> None:
    client = make_client(tokens=["fake-do-token", "token-b"])
    await add_key(client, ED25519, headers=bearer("token-b"))  # another account's key
    response = await client.post("/v2/droplets", json=droplet_body(**overrides), headers=AUTH)
    assert response.status_code == 422
    assert fragment in response.json()["message"]
    assert (await stats(client))["droplets"] == 0


async def test_droplet_details_of_an_unknown_droplet_is_404(make_client: ClientFactory) -> None:
    client = make_client()
    assert (await client.get("/_fake/droplets/1")).status_code == 404
    assert (await client.get("/_fake/droplets/abc")).status_code == 404
    droplet_id = (await create(client))["droplet"]["id"]
    await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)
    assert (await client.get(f"/_fake/droplets/{droplet_id}")).status_code == 404
