"""An account row to the SPEC's account JSON (section 13): never the token, only its hint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from order_service.accounts.placement import Usage, free_slots


def account_json(account: Mapping[str, Any], usage: Usage) -> dict[str, Any]:
    return {
        "id": account["id"],
        "name": account["name"],
        "isActive": bool(account["is_active"]),
        "reserve": account["reserve"],
        "dropletLimit": account["droplet_limit"],
        "droplets": usage.droplets,
        "creating": usage.creating,
        "free": free_slots(account, usage),
        "health": account["health"],
        "lastError": account["last_error"],
        "lastCheckedAt": account["last_checked_at"],
        "tokenHint": account["token_hint"],
        "createdAt": account["created_at"],
        "updatedAt": account["updated_at"],
    }
