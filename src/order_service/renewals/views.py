"""Renewal rows to the SPEC's renewal JSON (section 9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def renewal_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "status": row["status"],
        "periods": row["periods"],
        "duration": row["duration"],
        "pricing": {
            "basePrice": row["base_price"],
            "promoDiscount": row["promo_discount"],
            "couponCode": row["coupon_code"],
            "couponDiscount": row["coupon_discount"],
            "finalPrice": row["final_price"],
            "currency": row["currency"],
        },
        "previousExpiresAt": row["previous_expires_at"],
        "newExpiresAt": row["new_expires_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "paidAt": row["paid_at"],
    }
