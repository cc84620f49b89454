"""The ceiling's SQL: the statements SQLAlchemy sends for the service, copied as text
(see bench/README.md), so the ceiling runs the same queries without an ORM."""

from __future__ import annotations

_ORDER_COLS = (
    "orders.id, orders.user_id, orders.plan_id, orders.plan_name, orders.image_id, "
    "orders.image_name, orders.duration, orders.base_price, orders.promo_discount, "
    "orders.coupon_code, orders.coupon_discount, orders.final_price, orders.currency, "
    "orders.status, orders.do_size_slug, orders.do_image_slug, orders.created_at, "
    "orders.updated_at, orders.paid_at"
)
_TASK_NAMES = [
    "id",
    "order_id",
    "status",
    "do_region",
    "do_size",
    "do_image",
    "droplet_id",
    "droplet_name",
    "droplet_status",
    "ipv4_public",
    "ipv4_private",
    "droplet_tags",
    "droplet_created_at",
    "error_code",
    "error_message",
    "attempts",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
    "requested_at",
    "create_intent_at",
    "create_action_id",
    "not_found_count",
    "lease_owner",
    "lease_expires_at",
    "next_check_at",
]
_TASK_AS = ", ".join(f"provisioning_tasks.{n} AS task__{n}" for n in _TASK_NAMES)
_TASK_COLS = ", ".join(f"provisioning_tasks.{n}" for n in _TASK_NAMES)
_ITEM_COLS = (
    "order_items.id, order_items.order_id, order_items.item_type, order_items.reference_id, "
    "order_items.description, order_items.unit_price, order_items.quantity, "
    "order_items.total_price, order_items.created_at"
)
_HISTORY_COLS = (
    "status_history.id, status_history.order_id, status_history.previous_status, "
    "status_history.new_status, status_history.actor, status_history.reason, "
    "status_history.metadata, status_history.created_at"
)


def _q(*parts: str) -> str:
    """Join SQL text; every part is a constant of this module (no caller input)."""
    return "".join(parts)


SQL_DETAIL = _q(
    "SELECT ",
    _ORDER_COLS,
    ", ",
    _TASK_AS,
    "  FROM orders LEFT OUTER JOIN provisioning_tasks ",
    "ON provisioning_tasks.order_id = orders.id  WHERE orders.id = $1::UUID",
)


def sql_items(n: int) -> str:
    ids = ", ".join(f"${6 + i}::UUID" for i in range(n))
    return _q(
        "SELECT ",
        _ITEM_COLS,
        "  FROM order_items  WHERE order_items.order_id IN (",
        ids,
        ") ORDER BY order_items.order_id, order_items.created_at, CASE order_items.item_type ",
        "WHEN $1::VARCHAR THEN $2::INTEGER WHEN $3::VARCHAR THEN $4::INTEGER ",
        "ELSE $5::INTEGER END, order_items.id",
    )


def sql_tasks(n: int) -> str:
    ids = ", ".join(f"${1 + i}::UUID" for i in range(n))
    return _q(
        "SELECT ",
        _TASK_COLS,
        "  FROM provisioning_tasks  WHERE provisioning_tasks.order_id IN (",
        ids,
        ")",
    )


SQL_LIST = _q(
    "SELECT ",
    _ORDER_COLS,
    "  FROM orders  WHERE orders.user_id = $1::VARCHAR ",
    "ORDER BY orders.created_at DESC, orders.id DESC   LIMIT $2::INTEGER OFFSET $3::INTEGER",
)
SQL_COUNT = "SELECT count(*) AS count_1  FROM orders  WHERE orders.user_id = $1::VARCHAR"
SQL_HISTORY = _q(
    "SELECT ",
    _HISTORY_COLS,
    "  FROM status_history  WHERE status_history.order_id = $1::UUID ",
    "ORDER BY status_history.created_at, status_history.id",
)
SQL_LOCK = _q("SELECT ", _ORDER_COLS, "  FROM orders  WHERE orders.id = $1::UUID FOR UPDATE")
SQL_PAID = (
    "UPDATE orders SET status=$1::VARCHAR, updated_at=$2::TIMESTAMP WITH TIME ZONE, "
    "paid_at=$3::TIMESTAMP WITH TIME ZONE WHERE orders.id = $4::UUID"
)
SQL_STATUS = (
    "UPDATE orders SET status=$1::VARCHAR, updated_at=$2::TIMESTAMP WITH TIME ZONE "
    "WHERE orders.id = $3::UUID"
)
SQL_INSERT_ORDER = (
    "INSERT INTO orders (id, user_id, plan_id, plan_name, image_id, image_name, duration, "
    "base_price, promo_discount, coupon_code, coupon_discount, final_price, currency, status, "
    "do_size_slug, do_image_slug, created_at, updated_at, paid_at) VALUES ($1::UUID, "
    "$2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::VARCHAR, $8::BIGINT, "
    "$9::BIGINT, $10::VARCHAR, $11::BIGINT, $12::BIGINT, $13::VARCHAR, $14::VARCHAR, "
    "$15::VARCHAR, $16::VARCHAR, $17::TIMESTAMP WITH TIME ZONE, $18::TIMESTAMP WITH TIME ZONE, "
    "$19::TIMESTAMP WITH TIME ZONE)"
)
SQL_INSERT_ITEM = (
    "INSERT INTO order_items (id, order_id, item_type, reference_id, description, unit_price, "
    "quantity, total_price, created_at) VALUES ($1::UUID, $2::UUID, $3::VARCHAR, $4::VARCHAR, "
    "$5::VARCHAR, $6::BIGINT, $7::INTEGER, $8::BIGINT, $9::TIMESTAMP WITH TIME ZONE)"
)
SQL_INSERT_HISTORY = (
    "INSERT INTO status_history (id, order_id, previous_status, new_status, actor, reason, "
    "metadata, created_at) VALUES ($1::UUID, $2::UUID, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, "
    "$6::VARCHAR, $7::JSONB, $8::TIMESTAMP WITH TIME ZONE)"
)
SQL_INSERT_TASK = (
    "INSERT INTO provisioning_tasks (id, order_id, status, do_region, do_size, do_image, "
    "attempts, created_at, updated_at, not_found_count, next_check_at) VALUES ($1::UUID, "
    "$2::UUID, $3::VARCHAR, $4::VARCHAR, $5::VARCHAR, $6::VARCHAR, $7::INTEGER, "
    "$8::TIMESTAMP WITH TIME ZONE, $9::TIMESTAMP WITH TIME ZONE, $10::INTEGER, "
    "$11::TIMESTAMP WITH TIME ZONE)"
)
# v1.1 (SPEC section 11): a change writes its event, with the order as of the
# change, in the same transaction; the sequence is stamped later by a relay.
SQL_INSERT_EVENT = (
    "INSERT INTO events (id, sequence, type, order_id, data, created_at) VALUES ($1::UUID, "
    "NULL, $2::VARCHAR, $3::UUID, $4::JSONB, $5::TIMESTAMP WITH TIME ZONE)"
)
ITEM_RANK = ("PLAN", 0, "IMAGE", 1, 2)
