"""Authorization by construction: every route of the app's own route table is checked.

The routes come from `app.routes` (FastAPI's APIRoutes), not from a list kept
by hand, and each is classified by its path:

- user (`/api/v1/orders…`, `/api/v1/ssh-keys…`, `/api/v1/regions`): no, garbage, expired or
  foreign-signed JWT → 401 UNAUTHORIZED; another user's JWT on an existing
  order → 403 ORDER_ACCESS_DENIED, on an existing SSH key → 404
  SSH_KEY_NOT_FOUND, and the order or key is left as it was;
- internal (`/api/v1/internal/…`): no key, a wrong key, or a user's JWT instead → 401;
- public (health, metrics, docs, OpenAPI): answered without credentials.

A new route fails this module until it has an entry in REQUESTS (and, if it is
public, in PUBLIC): adding one is a one-line change. An entry for a route the
app does not (yet) have is simply not used.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.conftest import API_KEY, auth, make_settings, make_token
from tests.helpers import assert_error, create_order

USER_PREFIX = "/api/v1/orders"
SSH_KEYS_PREFIX = "/api/v1/ssh-keys"
REGIONS_PREFIX = "/api/v1/regions"
INTERNAL_PREFIX = "/api/v1/internal/"
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
}

# A minimal valid request per (METHOD, path template): (query string, JSON body or None).
# The authorization checks must hold whatever the body; a valid one makes sure
# a route cannot pass this test by failing validation before it checks who calls.
NO_BODY: tuple[str, Any] = ("", None)
PUBLIC_KEY = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
)
REQUESTS: dict[tuple[str, str], tuple[str, Any]] = {
    # user routes
    ("POST", "/api/v1/orders"): (
        "",
        {
            "planId": "a1000000-0000-4000-8000-000000000001",
            "imageId": "b2000000-0000-4000-8000-000000000001",
            "duration": "MONTHLY",
        },
    ),
    ("GET", "/api/v1/orders"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/orders/{order_id}"): NO_BODY,
    ("POST", "/api/v1/orders/{order_id}/cancel"): NO_BODY,
    ("DELETE", "/api/v1/orders/{order_id}/cancel"): NO_BODY,
    ("GET", "/api/v1/orders/{order_id}/renewal-quote"): ("?periods=1", None),
    ("POST", "/api/v1/orders/{order_id}/renewals"): ("", {"periods": 1}),
    ("GET", "/api/v1/orders/{order_id}/renewals"): ("?page=1&limit=10", None),
    ("POST", "/api/v1/orders/{order_id}/renewals/{renewal_id}/cancel"): NO_BODY,
    ("POST", "/api/v1/orders/{order_id}/actions"): ("", {"type": "REBOOT"}),
    ("GET", "/api/v1/orders/{order_id}/actions"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/orders/{order_id}/actions/{action_id}"): NO_BODY,
    ("GET", "/api/v1/orders/{order_id}/plan-change-quote"): (
        "?planId=a1000000-0000-4000-8000-000000000002",
        None,
    ),
    ("POST", "/api/v1/orders/{order_id}/plan-changes"): (
        "",
        {"planId": "a1000000-0000-4000-8000-000000000002"},
    ),
    ("GET", "/api/v1/orders/{order_id}/plan-changes"): ("?page=1&limit=10", None),
    ("POST", "/api/v1/orders/{order_id}/plan-changes/{plan_change_id}/cancel"): NO_BODY,
    ("POST", "/api/v1/ssh-keys"): ("", {"name": "matrix", "publicKey": PUBLIC_KEY}),
    ("GET", "/api/v1/ssh-keys"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/ssh-keys/{ssh_key_id}"): NO_BODY,
    ("DELETE", "/api/v1/ssh-keys/{ssh_key_id}"): NO_BODY,
    ("GET", "/api/v1/regions"): ("?planId=a1000000-0000-4000-8000-000000000001", None),
    ("GET", "/api/v1/orders/{order_id}/credentials"): NO_BODY,
    # internal routes
    ("GET", "/api/v1/internal/orders"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/internal/orders/{order_id}"): NO_BODY,
    ("POST", "/api/v1/internal/orders/{order_id}/payment-status"): ("", {"status": "PAID"}),
    ("POST", "/api/v1/internal/orders/{order_id}/cancel"): ("", {"reason": "matrix"}),
    ("POST", "/api/v1/internal/orders/{order_id}/retry-provisioning"): NO_BODY,
    ("POST", "/api/v1/internal/orders/{order_id}/renewals"): ("", {"periods": 1}),
    ("POST", "/api/v1/internal/renewals/{renewal_id}/payment-status"): ("", {"status": "PAID"}),
    ("POST", "/api/v1/internal/orders/{order_id}/expiry"): (
        "",
        {"expiresAt": "2030-01-01T00:00:00Z"},
    ),
    ("POST", "/api/v1/internal/orders/{order_id}/suspend"): ("", {"reason": "matrix"}),
    ("POST", "/api/v1/internal/orders/{order_id}/unsuspend"): ("", {"reason": "matrix"}),
    ("POST", "/api/v1/internal/orders/{order_id}/terminate"): ("", {"reason": "matrix"}),
    ("POST", "/api/v1/internal/orders/{order_id}/actions"): ("", {"type": "REBOOT"}),
    ("GET", "/api/v1/internal/orders/{order_id}/actions"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/internal/orders/{order_id}/actions/{action_id}"): NO_BODY,
    ("GET", "/api/v1/internal/orders/{order_id}/plan-change-quote"): (
        "?planId=a1000000-0000-4000-8000-000000000002",
        None,
    ),
    ("POST", "/api/v1/internal/orders/{order_id}/plan-changes"): (
        "",
        {"planId": "a1000000-0000-4000-8000-000000000002"},
    ),
    ("GET", "/api/v1/internal/orders/{order_id}/plan-changes"): ("?page=1&limit=10", None),
    ("POST", "/api/v1/internal/orders/{order_id}/plan-changes/{plan_change_id}/cancel"): NO_BODY,
    ("POST", "/api/v1/internal/plan-changes/{plan_change_id}/payment-status"): (
        "",
        {"status": "PAID"},
    ),
    ("POST", "/api/v1/internal/do-accounts"): ("", {"name": "matrix", "token": "matrix-token"}),
    ("GET", "/api/v1/internal/do-accounts"): ("?page=1&limit=10", None),
    ("GET", "/api/v1/internal/do-accounts/{account_id}"): NO_BODY,
    ("PATCH", "/api/v1/internal/do-accounts/{account_id}"): ("", {"reserve": 1}),
    ("DELETE", "/api/v1/internal/do-accounts/{account_id}"): NO_BODY,
    ("POST", "/api/v1/internal/do-accounts/{account_id}/check"): NO_BODY,
    ("GET", "/api/v1/internal/events"): ("?limit=10", None),
    ("POST", "/api/v1/internal/webhooks"): (
        "",
        {"url": "https://hooks.example.test/orders", "events": ["*"]},
    ),
    ("GET", "/api/v1/internal/webhooks"): NO_BODY,
    ("GET", "/api/v1/internal/webhooks/{webhook_id}"): NO_BODY,
    ("PATCH", "/api/v1/internal/webhooks/{webhook_id}"): ("", {"isActive": False}),
    ("DELETE", "/api/v1/internal/webhooks/{webhook_id}"): NO_BODY,
    ("GET", "/api/v1/internal/webhooks/{webhook_id}/deliveries"): NO_BODY,
    (
        "POST",
        "/api/v1/internal/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ): NO_BODY,
    ("POST", "/api/v1/internal/webhooks/{webhook_id}/ping"): NO_BODY,
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(METHOD, path template) of every APIRoute the app serves, sorted."""
    try:  # FastAPI ≥ 0.16x keeps included routers lazily; this flattens them.
        from fastapi.routing import iter_route_contexts

        candidates = [context.original_route for context in iter_route_contexts(app.routes)]
        paths = [context.path for context in iter_route_contexts(app.routes)]
    except ImportError:  # older FastAPI: app.routes is already flat
        candidates = list(app.routes)
        paths = [getattr(route, "path", "") for route in candidates]
    found = set()
    for route, path in zip(candidates, paths, strict=True):
        if isinstance(route, APIRoute):
            for method in route.methods - {"HEAD"}:
                found.add((method, path))
    return sorted(found)


def _route_table() -> list[tuple[str, str]]:
    from order_service.app import create_app

    # Built only to read its routes: no lifespan, no database connection.
    return api_routes(create_app(make_settings("sqlite+aiosqlite://")))


ROUTES = _route_table()


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


USER_ROUTES = [
    r
    for r in ROUTES
    if any(_under(r[1], p) for p in (USER_PREFIX, SSH_KEYS_PREFIX, REGIONS_PREFIX))
]
INTERNAL_ROUTES = [r for r in ROUTES if r[1].startswith(INTERNAL_PREFIX)]
ORDER_ROUTES = [r for r in USER_ROUTES if "{order_id}" in r[1]]
SSH_KEY_ROUTES = [r for r in USER_ROUTES if "{ssh_key_id}" in r[1]]


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def request_for(route: tuple[str, str], order_id: str | None = None, **ids: str) -> tuple[str, Any]:
    """(URL, JSON body) of the route's REQUESTS entry, path ids filled in."""
    method, template = route
    assert route in REQUESTS, f"add an entry for {method} {template} to REQUESTS"
    query, body = REQUESTS[route]
    if order_id is not None:
        ids["order_id"] = order_id

    def fill(match: re.Match[str]) -> str:
        # An id the caller did not give: any UUID will do.
        return ids.get(match.group(1)) or str(uuid.uuid4())

    return re.sub(r"\{(\w+)\}", fill, template) + query, body


async def call(
    client: httpx.AsyncClient, route: tuple[str, str], headers: dict[str, str], order_id: str
) -> httpx.Response:
    url, body = request_for(route, order_id)
    return await client.request(route[0], url, json=body, headers=headers)


# ------------------------------------------------------------------ the table itself


def test_the_route_table_is_read_from_the_app() -> None:
    # The v1 routes at least; v1.1 adds more, which then need REQUESTS entries.
    assert ("POST", "/api/v1/orders") in USER_ROUTES
    assert ("POST", "/api/v1/internal/orders/{order_id}/payment-status") in INTERNAL_ROUTES
    assert len(ORDER_ROUTES) >= 2


def test_every_route_is_classified_and_has_an_entry() -> None:
    missing = [
        f"add an entry for {method} {path}"
        for method, path in ROUTES
        if (method, path) not in REQUESTS and (method, path) not in PUBLIC
    ]
    assert not missing, "\n".join(missing) + "\n(REQUESTS, or PUBLIC if it needs no credentials)"
    unclassified = [
        route_id(r)
        for r in ROUTES
        if r not in PUBLIC and r not in USER_ROUTES and r not in INTERNAL_ROUTES
    ]
    assert not unclassified, f"neither user, internal nor public: {unclassified}"


# ------------------------------------------------------------------ user routes

OTHER_SECRET = "another-secret-that-is-long-enough-1234"
BAD_CREDENTIALS = {
    "no JWT": {},
    "garbage JWT": {"Authorization": "Bearer not-a-jwt"},
    "expired JWT": {"Authorization": f"Bearer {make_token('owner', ttl=-600)}"},
    "JWT signed with another key": {
        "Authorization": f"Bearer {make_token('owner', secret=OTHER_SECRET)}"
    },
    "API key instead of a JWT": {"X-API-Key": API_KEY},
}


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
@pytest.mark.parametrize("route", USER_ROUTES, ids=route_id)
async def test_a_user_route_without_a_valid_jwt_is_401(
    client: httpx.AsyncClient, route: tuple[str, str], credentials: str
) -> None:
    order = await create_order(client, "owner")
    response = await call(client, route, BAD_CREDENTIALS[credentials], order["id"])
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("route", ORDER_ROUTES, ids=route_id)
async def test_another_users_order_is_403_and_left_unchanged(
    client: httpx.AsyncClient, route: tuple[str, str]
) -> None:
    order = await create_order(client, "owner")
    before = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth("owner"))).json()
    response = await call(client, route, auth("intruder"), order["id"])
    assert_error(response, 403, "ORDER_ACCESS_DENIED")
    after = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth("owner"))).json()
    assert after == before


@pytest.mark.parametrize("route", SSH_KEY_ROUTES, ids=route_id)
async def test_another_users_ssh_key_is_404_and_left_unchanged(
    client: httpx.AsyncClient, route: tuple[str, str]
) -> None:
    created = await client.post(
        SSH_KEYS_PREFIX, json={"name": "mine", "publicKey": PUBLIC_KEY}, headers=auth("owner")
    )
    assert created.status_code == 201, created.text
    key = created.json()["data"]
    url, body = request_for(route, ssh_key_id=key["id"])
    response = await client.request(route[0], url, json=body, headers=auth("intruder"))
    assert_error(response, 404, "SSH_KEY_NOT_FOUND")
    after = await client.get(f"{SSH_KEYS_PREFIX}/{key['id']}", headers=auth("owner"))
    assert after.json() == {"data": key}


# ------------------------------------------------------------------ internal routes

BAD_KEYS = {
    "no key": {},
    "wrong key": {"X-API-Key": "not-the-internal-key"},
    "key in another header": {"Authorization": f"Bearer {API_KEY}"},
    "a user's JWT": {"Authorization": f"Bearer {make_token('owner')}"},
    "a user's JWT as the key": {"X-API-Key": make_token("owner")},
}


@pytest.mark.parametrize("credentials", list(BAD_KEYS))
@pytest.mark.parametrize("route", INTERNAL_ROUTES, ids=route_id)
async def test_an_internal_route_without_the_key_is_401(
    client: httpx.AsyncClient, route: tuple[str, str], credentials: str
) -> None:
    order = await create_order(client, "owner")
    response = await call(client, route, BAD_KEYS[credentials], order["id"])
    assert_error(response, 401, "UNAUTHORIZED")


# ------------------------------------------------------------------ public routes


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=route_id)
async def test_a_public_route_needs_no_credentials(
    client: httpx.AsyncClient, route: tuple[str, str]
) -> None:
    response = await client.request(*route)
    assert response.status_code == 200, response.text
