"""The dev stack's webhook receiver verifies signatures and prints one line per event."""

from __future__ import annotations

import io
import json

import httpx

from mocks.webhook_receiver import create_app
from order_service.events.signing import new_secret, signed_headers

EVENT = {
    "id": "6f1c2a52-6d5e-4a53-9f77-5d4bb8c2a001",
    "sequence": 7,
    "type": "order.active",
    "createdAt": "2026-12-02T10:00:00Z",
    "orderId": "1a2b3c4d-0000-4000-8000-000000000001",
    "data": {
        "order": {
            "id": "1a2b3c4d-0000-4000-8000-000000000001",
            "provisioningTask": {"dropletName": "vps-1a2b3c4d", "ipv4Public": "203.0.113.7"},
        }
    },
}


async def post(app: object, body: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        return await client.post("/hook", content=body, headers=headers)


async def test_a_signed_event_is_printed_as_one_line() -> None:
    secret, out = new_secret(), io.StringIO()
    body = json.dumps(EVENT)
    response = await post(create_app(secret, out), body, signed_headers(secret, EVENT["id"], body))
    assert response.status_code == 204
    assert out.getvalue() == "order.active vps-1a2b3c4d 203.0.113.7 #7\n"


async def test_a_bad_signature_is_refused() -> None:
    out = io.StringIO()
    body = json.dumps(EVENT)
    headers = signed_headers(new_secret(), EVENT["id"], body)  # another secret
    response = await post(create_app(new_secret(), out), body, headers)
    assert response.status_code == 401
    assert out.getvalue().startswith("REJECTED")
    tampered = await post(
        create_app(secret := new_secret(), out),
        body + " ",
        signed_headers(secret, EVENT["id"], body),
    )
    assert tampered.status_code == 401
