"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from order_service.errors import error_response
from order_service.jsonresponse import json_response
from order_service.openapi import error_response_doc
from order_service.orders.schemas import DataEnvelope

router = APIRouter(tags=["health"])
logger = logging.getLogger("order_service.health")

READY_TIMEOUT_S = 2.0


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]


NOT_READY_EXAMPLE = {"error": {"code": "NOT_READY", "message": "Database is unreachable"}}


@router.get(
    "/api/v1/health",
    response_model=DataEnvelope[Liveness],
    summary="Liveness: the process answers",
    response_description="The process is up",
    description="No authentication and no database access: 200 while the process serves HTTP.",
)
async def health() -> Response:
    return json_response({"data": {"status": "ok"}})


@router.get(
    "/api/v1/health/ready",
    response_model=DataEnvelope[Readiness],
    summary="Readiness: the database answers",
    response_description="The database answered",
    description=(
        "No authentication. 200 when `SELECT 1` succeeds within 2 s, else 503 NOT_READY: "
        "take the instance out of the load balancer, do not restart it for this alone."
    ),
    responses={
        503: error_response_doc(
            "`NOT_READY`: the database is unreachable or did not answer within 2 s",
            {"NOT_READY": NOT_READY_EXAMPLE},
        )
    },
)
async def ready(request: Request) -> Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        logger.warning("readiness check failed: %s", type(exc).__name__)
        return error_response(503, "NOT_READY", "Database is unreachable")
    return json_response({"data": {"status": "ready", "database": "ok"}})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
