"""Rows to the SPEC's order JSON (plain dicts, encoded by orjson).

Kept apart from the queries so the shape is defined once for the user API,
the internal API and idempotent replays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]


def order_json(
    order: Row,
    items: Sequence[Row],
    task: Row | None,
    history: Sequence[Row] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": order["id"],
        "userId": order["user_id"],
        "status": order["status"],
        "planId": order["plan_id"],
        "planName": order["plan_name"],
        "imageId": order["image_id"],
        "imageName": order["image_name"],
        "duration": order["duration"],
        "pricing": {
            "basePrice": order["base_price"],
            "promoDiscount": order["promo_discount"],
            "couponCode": order["coupon_code"],
            "couponDiscount": order["coupon_discount"],
            "finalPrice": order["final_price"],
            "currency": order["currency"],
        },
        "items": [item_json(item) for item in items],
        "provisioningTask": task_json(task) if task is not None else None,
        "createdAt": order["created_at"],
        "updatedAt": order["updated_at"],
        "paidAt": order["paid_at"],
        # v1.1: the billing period and lifecycle (null or false until they apply)
        "activatedAt": order["activated_at"],
        "expiresAt": order["expires_at"],
        "suspendedAt": order["suspended_at"],
        "suspensionReason": order["suspension_reason"],
        "terminatedAt": order["terminated_at"],
        "terminationReason": order["termination_reason"],
        "cancelAtPeriodEnd": bool(order["cancel_at_period_end"]),
        # v1.2: the last completed plan change (SPEC section 15)
        "planChangedAt": order.get("plan_changed_at"),
    }
    if history is not None:
        body["statusHistory"] = [history_json(entry) for entry in history]
    return body


def item_json(item: Row) -> dict[str, Any]:
    return {
        "id": item["id"],
        "itemType": item["item_type"],
        "referenceId": item["reference_id"],
        "description": item["description"],
        "unitPrice": item["unit_price"],
        "quantity": item["quantity"],
        "totalPrice": item["total_price"],
    }


def task_json(task: Row) -> dict[str, Any]:
    droplet_id = task["droplet_id"]
    return {
        "id": task["id"],
        "status": task["status"],
        "dropletId": str(droplet_id) if droplet_id is not None else None,
        "dropletName": task["droplet_name"],
        "dropletStatus": task["droplet_status"],
        "ipv4Public": task["ipv4_public"],
        "ipv4Private": task["ipv4_private"],
        "doRegion": task["do_region"],
        "doSize": task["do_size"],
        "doImage": task["do_image"],
        # v1.2: the DO account holding the droplet, by name (null until placed).
        "doAccount": task.get("do_account"),
        "dropletTags": task["droplet_tags"],
        "dropletCreatedAt": task["droplet_created_at"],
        "errorCode": task["error_code"],
        "errorMessage": task["error_message"],
        "attempts": task["attempts"],
        "startedAt": task["started_at"],
        "completedAt": task["completed_at"],
    }


def history_json(entry: Row) -> dict[str, Any]:
    return {
        "id": entry["id"],
        "previousStatus": entry["previous_status"] or "",
        "newStatus": entry["new_status"],
        "actor": entry["actor"],
        "reason": entry["reason"],
        "metadata": entry["metadata"],
        "createdAt": entry["created_at"],
    }


def page_meta(page: int, limit: int, total: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)}
