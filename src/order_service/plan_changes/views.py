"""Plan change rows to the SPEC's plan change JSON (section 15)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plan_change_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "orderId": row["order_id"],
        "fromPlanId": row["from_plan_id"],
        "toPlanId": row["to_plan_id"],
        "toPlanName": row["to_plan_name"],
        "duration": row["duration"],
        "oldPrice": row["old_price"],
        "newPrice": row["new_price"],
        "amountDue": row["amount_due"],
        "currency": row["currency"],
        "resizeDisk": bool(row["resize_disk"]),
        "status": row["status"],
        "actionId": row["action_id"],
        "errorCode": row["error_code"],
        "errorMessage": row["error_message"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "paidAt": row["paid_at"],
        "completedAt": row["completed_at"],
    }
