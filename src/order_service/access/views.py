"""ssh_keys rows to the SPEC's SSH key JSON (section 14)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ssh_key_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "fingerprint": row["fingerprint"],
        "type": row["type"],
        "createdAt": row["created_at"],
    }


def snapshot_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """What an order keeps of a key: a copy, so deleting the key later changes no order."""
    return {"name": row["name"], "fingerprint": row["fingerprint"], "publicKey": row["public_key"]}
