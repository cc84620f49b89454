"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from order_service.errors import error_response
from order_service.jsonresponse import json_response

router = APIRouter(tags=["health"])
logger = logging.getLogger("order_service.health")

READY_TIMEOUT_S = 2.0


@router.get("/api/v1/health", summary="Liveness: the process answers")
async def health() -> Response:
    return json_response({"data": {"status": "ok"}})


@router.get(
    "/api/v1/health/ready",
    summary="Readiness: the database answers",
    responses={503: {"description": "NOT_READY: the database is unreachable"}},
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
