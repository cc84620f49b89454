"""The ceiling: the same requests with the thinnest stack (Starlette + asyncpg + orjson).

Each handler does the work the order service must do for that request and
nothing else: the same JWT / X-API-Key check (PyJWT, constant-time compare),
the same SQL statements (copied from what SQLAlchemy sends for the service,
see bench/README.md), the same catalog calls over HTTP for POST (plan and
image at once, then the coupon), the same rows written in one transaction,
and a JSON body of the same shape, and (v1.1) the event rows a change writes
in its transaction (order.created; order.paid and order.provisioning). No
ORM, no dependency injection, no validation framework, no middleware, no
metrics, no logging.

Reads run without BEGIN/COMMIT: under READ COMMITTED a transaction around
plain SELECTs adds two round trips and no consistency. Writes run in one
transaction, like the service.

Run: `uvicorn bench.ceiling:app` with CEILING_DATABASE_URL, CEILING_CATALOG_URL,
CEILING_JWT_SECRET, CEILING_API_KEY in the environment.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.ceiling_sql import (
    ITEM_RANK,
    SQL_COUNT,
    SQL_DETAIL,
    SQL_HISTORY,
    SQL_INSERT_EVENT,
    SQL_INSERT_HISTORY,
    SQL_INSERT_ITEM,
    SQL_INSERT_ORDER,
    SQL_INSERT_TASK,
    SQL_LIST,
    SQL_LOCK,
    SQL_PAID,
    SQL_STATUS,
    sql_items,
    sql_tasks,
)
from bench.ceiling_views import (
    JSON_OPTIONS,
    error_response,
    json_default,
    json_response,
    order_json,
    parse_id,
    task_json,
)

# ------------------------------------------------------------------ state


class _Unauthorized(Exception):
    pass


SECRET = os.environ.get("CEILING_JWT_SECRET", "")
API_KEY = os.environ.get("CEILING_API_KEY", "").encode()
_state: dict[str, Any] = {}


def _user(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _Unauthorized
    try:
        claims = jwt.decode(
            token,
            SECRET,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"], "verify_aud": False},
            leeway=5,
        )
    except jwt.PyJWTError:
        raise _Unauthorized from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise _Unauthorized
    return subject


def _check_api_key(request: Request) -> None:
    given = request.headers.get("x-api-key")
    if given is None or not hmac.compare_digest(given.encode(), API_KEY):
        raise _Unauthorized


# ------------------------------------------------------------------ handlers


async def get_order(request: Request) -> Response:
    try:
        user = _user(request)
    except _Unauthorized:
        return error_response(401, "UNAUTHORIZED", "Invalid token")
    order_id = parse_id(request.path_params["order_id"])
    if order_id is None:
        return error_response(404, "ORDER_NOT_FOUND", "Order not found")
    async with _state["pool"].acquire() as conn:
        row = await conn.fetchrow(SQL_DETAIL, order_id)
        if row is None:
            return error_response(404, "ORDER_NOT_FOUND", "Order not found")
        if row["user_id"] != user:
            return error_response(403, "ORDER_ACCESS_DENIED", "Not your order")
        items = await conn.fetch(sql_items(1), *ITEM_RANK, order_id)
    return json_response({"data": order_json(row, items, task_json(row, "task__"))})


async def list_orders(request: Request) -> Response:
    try:
        user = _user(request)
    except _Unauthorized:
        return error_response(401, "UNAUTHORIZED", "Invalid token")
    try:
        page = int(request.query_params.get("page", "1"))
        limit = int(request.query_params.get("limit", "10"))
    except ValueError:
        return error_response(400, "VALIDATION_ERROR", "page and limit must be integers")
    if page < 1 or not 1 <= limit <= 100:
        return error_response(400, "VALIDATION_ERROR", "page >= 1, 1 <= limit <= 100")
    async with _state["pool"].acquire() as conn:
        rows = await conn.fetch(SQL_LIST, user, limit, (page - 1) * limit)
        total = await conn.fetchval(SQL_COUNT, user)
        ids = [r["id"] for r in rows]
        items: dict[Any, list[Any]] = {}
        tasks: dict[Any, Any] = {}
        if ids:
            for item in await conn.fetch(sql_items(len(ids)), *ITEM_RANK, *ids):
                items.setdefault(item["order_id"], []).append(item)
            for task in await conn.fetch(sql_tasks(len(ids)), *ids):
                tasks[task["order_id"]] = task
    data = [
        order_json(
            r, items.get(r["id"], []), task_json(tasks[r["id"]]) if r["id"] in tasks else None
        )
        for r in rows
    ]
    meta = {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)}
    return json_response({"data": data, "meta": meta})


def _whole(value: Any) -> int:
    amount = Decimal(str(value))
    if amount != amount.to_integral_value() or amount < 0:
        raise ValueError("not whole IDR")
    return int(amount)


def _promo(plan: dict[str, Any], base: int, now: datetime) -> int:
    best = 0
    for promo in plan.get("promos") or ():
        if not promo["isActive"]:
            continue
        start = promo.get("startDate")
        end = promo.get("endDate")
        if start and datetime.fromisoformat(start) > now:
            continue
        if end and datetime.fromisoformat(end) <= now:
            continue
        if promo["discountType"] == "PERCENT":
            discount = math.floor(Decimal(base) * Decimal(str(promo["discountValue"])) / 100)
        else:
            discount = _whole(promo["discountValue"])
        best = max(best, min(int(discount), base))
    return best


async def create_order(request: Request) -> Response:
    try:
        user = _user(request)
    except _Unauthorized:
        return error_response(401, "UNAUTHORIZED", "Invalid token")
    try:
        body = orjson.loads(await request.body())
        plan_id, image_id, duration = body["planId"], body["imageId"], body["duration"]
        coupon = body.get("couponCode")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return error_response(400, "VALIDATION_ERROR", "bad body")
    http: httpx.AsyncClient = _state["catalog"]
    plan_answer, image_answer = await asyncio.gather(
        http.get(f"/api/v1/catalog/plans/{plan_id}"), http.get(f"/api/v1/catalog/images/{image_id}")
    )
    if plan_answer.status_code != 200 or image_answer.status_code != 200:
        return error_response(400, "INVALID_PLAN", "plan or image unknown")
    plan = orjson.loads(plan_answer.content)["data"]
    image = orjson.loads(image_answer.content)["data"]
    if not plan["isActive"] or not image["isActive"] or image["id"] not in plan["allowedImageIds"]:
        return error_response(400, "INVALID_IMAGE", "not allowed")
    wanted = "YEARLY" if duration == "ANNUAL" else duration
    prices = [p["price"] for p in plan["pricings"] if p["isActive"] and p["duration"] == wanted]
    if not prices:
        return error_response(400, "INVALID_DURATION", "no price")
    now = datetime.now(UTC)
    base = _whole(prices[0])
    promo = _promo(plan, base, now)
    coupon_code, coupon_discount = None, 0
    if coupon is not None:
        answer = await http.post(
            "/api/v1/catalog/coupons/validate",
            json={"code": coupon, "planId": plan_id, "userId": user, "amount": base - promo},
        )
        result = orjson.loads(answer.content)["data"]
        if not result["valid"]:
            return error_response(400, "INVALID_COUPON", "coupon rejected")
        coupon_code = result["coupon"]["code"]
        coupon_discount = _whole(result["discountAmount"])
    label = plan.get("displayName") or plan["name"]
    order_id = uuid.uuid4()
    order = {
        "id": order_id,
        "user_id": user,
        "plan_id": plan_id,
        "plan_name": label,
        "image_id": image_id,
        "image_name": image["displayName"],
        "duration": duration,
        "base_price": base,
        "promo_discount": promo,
        "coupon_code": coupon_code,
        "coupon_discount": coupon_discount,
        "final_price": max(0, base - promo - coupon_discount),
        "currency": "IDR",
        "status": "PENDING_PAYMENT",
        "do_size_slug": plan["providerSizeSlug"],
        "do_image_slug": image["providerSlug"],
        "created_at": now,
        "updated_at": now,
        "paid_at": None,
    }
    items = [
        (uuid.uuid4(), order_id, "PLAN", plan_id, f"{label} ({duration})", base, 1, base, now),
        (uuid.uuid4(), order_id, "IMAGE", image_id, image["displayName"], 0, 1, 0, now),
    ]
    async with _state["pool"].acquire() as conn, conn.transaction():
        await conn.execute(SQL_INSERT_ORDER, *order.values())
        await conn.executemany(SQL_INSERT_ITEM, items)
        await conn.execute(
            SQL_INSERT_HISTORY,
            uuid.uuid4(),
            order_id,
            None,
            "PENDING_PAYMENT",
            f"user:{user}",
            "Order created",
            "null",
            now,
        )
        item_rows = [dict(zip(_ITEM_KEYS, item, strict=True)) for item in items]
        await _insert_event(conn, "order.created", order, item_rows, None, now)
    return json_response({"data": order_json(order, item_rows, None)}, 201)


_ITEM_KEYS = (
    "id",
    "order_id",
    "item_type",
    "reference_id",
    "description",
    "unit_price",
    "quantity",
    "total_price",
    "created_at",
)


async def _insert_event(
    conn: Any, kind: str, order: dict[str, Any], items: list[Any], task: Any, at: datetime
) -> None:
    data = orjson.dumps(
        {"order": order_json(order, items, task)}, default=json_default, option=JSON_OPTIONS
    )
    await conn.execute(SQL_INSERT_EVENT, uuid.uuid4(), kind, order["id"], data.decode(), at)


async def payment_status(request: Request) -> Response:
    try:
        _check_api_key(request)
    except _Unauthorized:
        return error_response(401, "UNAUTHORIZED", "Missing or invalid X-API-Key")
    order_id = parse_id(request.path_params["order_id"])
    if order_id is None:
        return error_response(404, "ORDER_NOT_FOUND", "Order not found")
    try:
        body = orjson.loads(await request.body())
        status, notes = body["status"], body.get("notes")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return error_response(400, "VALIDATION_ERROR", "bad body")
    if status != "PAID":
        return error_response(400, "VALIDATION_ERROR", "the ceiling implements PAID only")
    async with _state["pool"].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(SQL_LOCK, order_id)
        if row is None:
            return error_response(404, "ORDER_NOT_FOUND", "Order not found")
        if row["status"] != "PENDING_PAYMENT":
            return error_response(409, "PAYMENT_STATUS_CONFLICT", f"Order is {row['status']}")
        now = datetime.now(UTC)
        await conn.execute(SQL_PAID, "PAID", now, now, order_id)
        await conn.execute(
            SQL_INSERT_HISTORY,
            uuid.uuid4(),
            order_id,
            "PENDING_PAYMENT",
            "PAID",
            "admin",
            notes or "Payment received",
            "null",
            now,
        )
        items = await conn.fetch(sql_items(1), *ITEM_RANK, order_id)
        paid = dict(row) | {"status": "PAID", "updated_at": now, "paid_at": now}
        await _insert_event(conn, "order.paid", paid, items, None, now)
        await conn.fetchrow(SQL_LOCK, order_id)
        later = now + timedelta(microseconds=1)
        await conn.execute(SQL_STATUS, "PROVISIONING", later, order_id)
        await conn.execute(
            SQL_INSERT_HISTORY,
            uuid.uuid4(),
            order_id,
            "PAID",
            "PROVISIONING",
            "system",
            "Provisioning queued",
            "null",
            later,
        )
        await conn.execute(
            SQL_INSERT_TASK,
            uuid.uuid4(),
            order_id,
            "PENDING",
            "sgp1",
            row["do_size_slug"],
            row["do_image_slug"],
            0,
            later,
            later,
            0,
            later,
        )
        provisioning = paid | {"status": "PROVISIONING", "updated_at": later}
        await _insert_event(conn, "order.provisioning", provisioning, items, None, later)
        detail = await conn.fetchrow(SQL_DETAIL, order_id)
        history = await conn.fetch(SQL_HISTORY, order_id)
    return json_response({"data": order_json(detail, items, task_json(detail, "task__"), history)})


async def ping(_request: Request) -> Response:
    """No work at all: shows how many requests/s the load generator can drive."""
    return Response(b'{"data":{"status":"ok"}}', media_type="application/json")


async def ready(_request: Request) -> Response:
    async with _state["pool"].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return Response(b'{"data":{"status":"ready"}}', media_type="application/json")


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    pool_size = int(os.environ.get("CEILING_POOL_SIZE", "10"))
    _state["pool"] = await asyncpg.create_pool(
        os.environ["CEILING_DATABASE_URL"], min_size=pool_size, max_size=2 * pool_size
    )
    _state["catalog"] = httpx.AsyncClient(
        base_url=os.environ.get("CEILING_CATALOG_URL", "http://127.0.0.1:4000"),
        timeout=5,
        # A small pool: httpcore checks every pooled connection to place a request,
        # so 16 connections serve loopback faster than 200 (see docs/benchmarks.md).
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        headers={"Accept": "application/json"},
    )
    try:
        yield
    finally:
        await _state["catalog"].aclose()
        await _state["pool"].close()


app = Starlette(
    routes=[
        Route("/api/v1/orders", list_orders, methods=["GET"]),
        Route("/api/v1/orders", create_order, methods=["POST"]),
        Route("/api/v1/orders/{order_id}", get_order, methods=["GET"]),
        Route(
            "/api/v1/internal/orders/{order_id}/payment-status", payment_status, methods=["POST"]
        ),
        Route("/api/v1/health", ping, methods=["GET"]),
        Route("/api/v1/health/ready", ready, methods=["GET"]),
    ],
    lifespan=lifespan,
)
