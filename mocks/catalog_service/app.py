"""FastAPI app mimicking catalog-service, plus a small fault-injection surface.

Contract routes (the real service's shape):

* ``GET  /api/v1/catalog/plans/{id}``
* ``GET  /api/v1/catalog/images/{id}``
* ``POST /api/v1/catalog/coupons/validate``

Test/demo controls, deliberately outside ``/api/v1/catalog`` so they can never be
mistaken for the contract: ``/_mock/faults``, ``/_mock/stats``; and ``/health``.

All mutable state (faults, request counts, the catalog with its dates) lives on
``app.state.mock``, one per :func:`create_app` call, so two apps in one test process
never share faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mocks.catalog_service.data import Catalog, Coupon, build_catalog

CATALOG_PREFIX = "/api/v1/catalog"
ROUTE_KEYS = ("plans", "images", "coupons")

# Cut off mid-string: any JSON parser fails on it, yet it looks plausible in a log.
MALFORMED_BODY = b'{"data": {"id": "a1000000-0000-4000-8000-0000'

InvalidReason = Literal[
    "NOT_FOUND",
    "INACTIVE",
    "BEFORE_START",
    "EXPIRED",
    "LIMIT_REACHED",
    "MIN_AMOUNT",
    "NOT_APPLICABLE",
]


# --------------------------------------------------------------------------- state


class FaultSettings(BaseModel):
    """What ``POST /_mock/faults`` accepts; a POST replaces all three settings at once."""

    # Strict: a typo such as "malformed": "yes" must fail loudly, not be coerced.
    model_config = ConfigDict(extra="forbid", strict=True)

    status: int | None = Field(default=None, ge=400, le=599)
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    malformed: bool = False


@dataclass
class MockState:
    catalog: Catalog
    faults: FaultSettings = field(default_factory=FaultSettings)
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROUTE_KEYS, 0))


def get_state(request: Request) -> MockState:
    state: MockState = request.app.state.mock
    return state


StateDep = Annotated[MockState, Depends(get_state)]


# -------------------------------------------------------------------------- errors


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The real service's error envelope: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).name  # e.g. SERVICE_UNAVAILABLE
    except ValueError:
        return "HTTP_ERROR"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    # The real service answers 400 (not FastAPI's 422) for any unusable body.
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    ]
    return error_response(400, "VALIDATION_ERROR", "; ".join(problems) or "Invalid request")


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    # Unknown routes and wrong methods keep the error envelope instead of {"detail": ...}.
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, _status_code_name(exc.status_code), str(exc.detail))


# -------------------------------------------------------------------------- faults


def _route_key(path: str) -> str | None:
    """'plans' for /api/v1/catalog/plans/..., etc.; None for anything else."""
    head = path.removeprefix(CATALOG_PREFIX + "/").split("/", 1)[0]
    return head if head in ROUTE_KEYS else None


async def fault_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count catalog requests and apply injected faults before any routing/body parsing.

    Running before routing means a fault also hits requests whose body is invalid,
    exactly like an unavailable upstream would.
    """
    if not request.url.path.startswith(CATALOG_PREFIX + "/"):
        return await call_next(request)
    state = get_state(request)
    key = _route_key(request.url.path)
    if key is not None:
        state.requests[key] += 1
    faults = state.faults  # one snapshot: a concurrent reset must not split one answer
    if faults.delay_ms:
        await asyncio.sleep(faults.delay_ms / 1000)
    if faults.status is not None:
        message = f"Injected fault: HTTP {faults.status}"
        return error_response(faults.status, _status_code_name(faults.status), message)
    if faults.malformed:
        return Response(content=MALFORMED_BODY, media_type="application/json")
    return await call_next(request)


control = APIRouter(prefix="/_mock", tags=["mock control"])


@control.post("/faults")
async def set_faults(settings: FaultSettings, state: StateDep) -> JSONResponse:
    state.faults = settings
    return JSONResponse({"faults": settings.model_dump()})


@control.get("/faults")
async def get_faults(state: StateDep) -> JSONResponse:
    return JSONResponse({"faults": state.faults.model_dump()})


@control.delete("/faults")
async def reset_faults(state: StateDep) -> JSONResponse:
    state.faults = FaultSettings()
    return JSONResponse({"faults": state.faults.model_dump()})


@control.get("/stats")
async def get_stats(state: StateDep) -> JSONResponse:
    return JSONResponse({"requests": dict(state.requests)})


@control.delete("/stats")
async def reset_stats(state: StateDep) -> JSONResponse:
    state.requests = dict.fromkeys(ROUTE_KEYS, 0)
    return JSONResponse({"requests": dict(state.requests)})


# ------------------------------------------------------------------ plans & images

catalog = APIRouter(prefix=CATALOG_PREFIX, tags=["catalog"])


@catalog.get("/plans/{plan_id}")
async def get_plan(plan_id: str, state: StateDep) -> Response:
    # Lower-casing accepts upper-case UUIDs like a uuid column would; anything that is
    # not one of our UUIDs (including non-UUIDs) simply misses -> 404, never 400.
    plan = state.catalog.plans.get(plan_id.lower())
    if plan is None:
        return error_response(404, "PLAN_NOT_FOUND", f"Plan {plan_id} not found")
    return JSONResponse({"data": plan})


@catalog.get("/images/{image_id}")
async def get_image(image_id: str, state: StateDep) -> Response:
    image = state.catalog.images.get(image_id.lower())
    if image is None:
        return error_response(404, "IMAGE_NOT_FOUND", f"Image {image_id} not found")
    return JSONResponse({"data": image})


# ------------------------------------------------------------------------- coupons


def _whole_number(value: object) -> object:
    """JSON has one number type: accept 100000 and 100000.0; refuse 100000.5, "100000", true."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON number")
    if isinstance(value, float):
        if not value.is_integer():  # also rejects NaN and infinities
            raise ValueError("must be a whole number of IDR")
        return int(value)
    return value


class CouponValidateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = Field(min_length=1)
    planId: str = Field(min_length=1)
    userId: str = Field(min_length=1)
    amount: Annotated[int, BeforeValidator(_whole_number), Field(ge=0)]


def invalid_reason(
    coupon: Coupon | None, plan_id: str, amount: int, now: datetime
) -> InvalidReason | None:
    """Why the coupon cannot be used, or None if it can. Checked in this fixed order."""
    if coupon is None:
        return "NOT_FOUND"
    if not coupon.is_active:
        return "INACTIVE"
    if coupon.start is not None and now < coupon.start:
        return "BEFORE_START"
    if coupon.end is not None and now > coupon.end:
        return "EXPIRED"
    if coupon.usage_limit is not None and coupon.used_count >= coupon.usage_limit:
        return "LIMIT_REACHED"
    if coupon.plan_ids is not None and plan_id.lower() not in coupon.plan_ids:
        return "NOT_APPLICABLE"
    if amount < coupon.min_amount:
        return "MIN_AMOUNT"
    return None


def discount_amount(coupon: Coupon, amount: int) -> int:
    """PERCENT: floor(amount * value / 100), capped by maxDiscount.

    FIXED: the value as is, even above ``amount``: the real catalog does not clamp it
    and the order service must cope (it clamps finalPrice at 0).
    """
    if coupon.discount_type == "FIXED":
        return coupon.discount_value
    discount = amount * coupon.discount_value // 100  # integer maths: no float rounding
    if coupon.max_discount is not None:
        discount = min(discount, coupon.max_discount)
    return discount


@catalog.post("/coupons/validate")
async def validate_coupon(body: CouponValidateRequest, state: StateDep) -> Response:
    coupon = state.catalog.coupons.get(body.code.upper())
    reason = invalid_reason(coupon, body.planId, body.amount, datetime.now(UTC))
    if reason is not None or coupon is None:  # second test only narrows the type
        return JSONResponse({"data": {"valid": False, "reason": reason}})
    discount = discount_amount(coupon, body.amount)
    return JSONResponse(
        {
            "data": {
                "valid": True,
                "discountAmount": discount,
                "finalPrice": max(0, body.amount - discount),
                "coupon": {
                    "code": coupon.code,
                    "name": coupon.name,
                    "discountType": coupon.discount_type,
                    "discountValue": coupon.discount_value,
                },
            }
        }
    )


# ----------------------------------------------------------------------------- app


def create_app(*, now: datetime | None = None) -> FastAPI:
    """A fresh mock with its own catalog, faults and counters.

    ``now`` anchors the promo/coupon dates (default: the real clock at creation);
    coupon validity is always judged against the real clock at request time.
    """
    app = FastAPI(title="catalog-service mock", version="1.0.0")
    app.state.mock = MockState(catalog=build_catalog(now))
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.middleware("http")(fault_middleware)
    app.include_router(catalog)
    app.include_router(control)

    @app.get("/health", tags=["mock control"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
