"""The ceiling's JSON: the service's response shapes built straight from asyncpg rows
(orjson, no models), and its error envelope."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload, default=json_default, option=JSON_OPTIONS),
        status_code=status,
        media_type="application/json",
    )


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


# ------------------------------------------------------------------ views


def item_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "itemType": row["item_type"],
        "referenceId": row["reference_id"],
        "description": row["description"],
        "unitPrice": row["unit_price"],
        "quantity": row["quantity"],
        "totalPrice": row["total_price"],
    }


def task_json(task: Any, prefix: str = "") -> dict[str, Any] | None:
    if task[prefix + "id"] is None:
        return None
    droplet_id = task[prefix + "droplet_id"]
    tags = task[prefix + "droplet_tags"]
    return {
        "id": task[prefix + "id"],
        "status": task[prefix + "status"],
        "dropletId": str(droplet_id) if droplet_id is not None else None,
        "dropletName": task[prefix + "droplet_name"],
        "dropletStatus": task[prefix + "droplet_status"],
        "ipv4Public": task[prefix + "ipv4_public"],
        "ipv4Private": task[prefix + "ipv4_private"],
        "doRegion": task[prefix + "do_region"],
        "doSize": task[prefix + "do_size"],
        "doImage": task[prefix + "do_image"],
        "dropletTags": orjson.loads(tags) if tags is not None else None,
        "dropletCreatedAt": task[prefix + "droplet_created_at"],
        "errorCode": task[prefix + "error_code"],
        "errorMessage": task[prefix + "error_message"],
        "attempts": task[prefix + "attempts"],
        "startedAt": task[prefix + "started_at"],
        "completedAt": task[prefix + "completed_at"],
    }


def order_json(
    row: Any, items: list[Any], task: dict[str, Any] | None, history: list[Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "userId": row["user_id"],
        "status": row["status"],
        "planId": row["plan_id"],
        "planName": row["plan_name"],
        "imageId": row["image_id"],
        "imageName": row["image_name"],
        "duration": row["duration"],
        "pricing": {
            "basePrice": row["base_price"],
            "promoDiscount": row["promo_discount"],
            "couponCode": row["coupon_code"],
            "couponDiscount": row["coupon_discount"],
            "finalPrice": row["final_price"],
            "currency": row["currency"],
        },
        "items": [item_json(i) for i in items],
        "provisioningTask": task,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "paidAt": row["paid_at"],
    }
    if history is not None:
        body["statusHistory"] = [
            {
                "id": h["id"],
                "previousStatus": h["previous_status"] or "",
                "newStatus": h["new_status"],
                "actor": h["actor"],
                "reason": h["reason"],
                "metadata": orjson.loads(h["metadata"]) if h["metadata"] is not None else None,
                "createdAt": h["created_at"],
            }
            for h in history
        ]
    return body


def parse_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
