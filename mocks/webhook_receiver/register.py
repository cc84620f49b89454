"""Register the local receiver as a webhook endpoint of a running service (dev stack).

Endpoints left by earlier runs for the same URL are deleted first: their
secrets are gone with those runs, and the receiver would refuse them.
Standard library only (the dev stack runs with nothing else).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

WEBHOOKS = "/api/v1/internal/webhooks"


def _call(base: str, api_key: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a URL the dev stack built
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        raw = answer.read()
    return json.loads(raw) if raw else None


def register_receiver(base: str, api_key: str, receiver_url: str) -> str:
    """Register `receiver_url` for every event; returns the new endpoint's secret."""
    listing = _call(base, api_key, "GET", f"{WEBHOOKS}?limit=100")
    for endpoint in listing["data"]:
        if endpoint["url"] == receiver_url:
            _call(base, api_key, "DELETE", f"{WEBHOOKS}/{endpoint['id']}")
    created = _call(
        base,
        api_key,
        "POST",
        WEBHOOKS,
        {"url": receiver_url, "events": ["*"], "description": "make run: local receiver"},
    )
    return created["data"]["secret"]
