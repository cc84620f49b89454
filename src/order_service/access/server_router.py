"""The customer's server (SPEC section 14): where it may go, and how to log in the first time.

`GET /api/v1/regions?planId=` and `GET /api/v1/orders/{id}/credentials` (bearer JWT).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from order_service.access import credentials, regions
from order_service.auth import User
from order_service.dependencies import AppSettings, Catalog, OrderId, Rules
from order_service.errors import (
    CatalogUnavailable,
    CredentialsExpired,
    DigitalOceanUnavailable,
    InvalidPlan,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    SecretsKeyRequired,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.schemas import CredentialsOut, DataEnvelope, RegionOut

router = APIRouter(tags=["orders"])

REGIONS_EXAMPLE = {
    "data": [
        {"slug": "blr1", "name": "Bangalore 1"},
        {"slug": "sgp1", "name": "Singapore 1"},
    ]
}
PASSWORD_EXAMPLE = {
    "data": {
        "username": "root",
        "password": "Vq7TzKc4mWbR9xHsJ3pLgNa8",
        "sshKeys": [],
        "ipv4Public": "203.0.113.10",
        "expiresAt": "2026-12-13T08:16:40.512002Z",
    }
}
KEYS_EXAMPLE = {
    "data": {
        "username": "root",
        "password": None,
        "sshKeys": [
            {"name": "laptop", "fingerprint": "62:f7:53:a7:90:ec:a6:bd:9d:14:a3:a9:a9:93:de:94"}
        ],
        "ipv4Public": "203.0.113.10",
        "expiresAt": None,
    }
}
# A password must not linger in a browser's or a proxy's cache.
NO_STORE = {"Cache-Control": "no-store"}


@router.get(
    "/api/v1/regions",
    response_model=DataEnvelope[list[RegionOut]],
    summary="Regions a plan can be ordered in",
    description=(
        "The regions DigitalOcean marks available that offer the plan's size, limited to the "
        "service's DIGITALOCEAN_REGIONS when set, sorted by slug: the `region` values "
        "POST /api/v1/orders accepts. DigitalOcean's lists are kept DIGITALOCEAN_CATALOG_TTL; "
        "while DigitalOcean is down the last lists are used, and with none yet the answer is "
        "503 DIGITALOCEAN_UNAVAILABLE. An unknown or inactive plan is 400 INVALID_PLAN."
    ),
    responses={
        200: {
            "description": "The plan's regions",
            "content": {"application/json": {"example": REGIONS_EXAMPLE}},
        },
        **error_responses(
            ValidationFailed,
            InvalidPlan,
            Unauthorized,
            CatalogUnavailable,
            DigitalOceanUnavailable,
        ),
    },
)
async def list_regions(
    user: User,
    catalog: Catalog,
    rules: Rules,
    plan_id: Annotated[uuid.UUID, Query(alias="planId", description="the plan's id (UUID)")],
) -> Response:
    result: dict[str, Any] = await regions.regions_for_plan(catalog, rules.regions, str(plan_id))
    return json_response(result)


@router.get(
    "/api/v1/orders/{order_id}/credentials",
    response_model=DataEnvelope[CredentialsOut],
    summary="How I log in to my server the first time",
    description=(
        "For the owner of an ACTIVE order. PASSWORD orders (placed without SSH keys): the "
        "random root password set at first boot, readable until `expiresAt` "
        "(CREDENTIALS_TTL after the order became ACTIVE); then it is erased and the answer is "
        "410 CREDENTIALS_EXPIRED. Log in with `ssh root@<ipv4Public>` and change it. "
        "SSH_KEYS orders: `password` is null and `sshKeys` names the keys root accepts. "
        "Before ACTIVE (or while SUSPENDED): 409 ORDER_STATUS_CONFLICT. Orders placed before "
        "the service kept credentials have none: 410 with `details.reason: NO_FIRST_ACCESS`. "
        "The password is in no other response, event or webhook; the answer is not cached "
        "(`Cache-Control: no-store`)."
    ),
    responses={
        200: {
            "description": "The first-access credentials",
            "content": {
                "application/json": {
                    "examples": {
                        "password": {"summary": "A PASSWORD order", "value": PASSWORD_EXAMPLE},
                        "ssh_keys": {"summary": "An SSH_KEYS order", "value": KEYS_EXAMPLE},
                    }
                }
            },
        },
        **error_responses(
            Unauthorized,
            OrderAccessDenied,
            OrderNotFound,
            OrderStatusConflict,
            SecretsKeyRequired,
            CredentialsExpired,
        ),
    },
)
async def get_my_credentials(
    user: User, order_id: OrderId, request: Request, settings: AppSettings
) -> Response:
    result = await credentials.read_credentials(
        request.app.state.sessionmaker,
        request.app.state.secret_box,
        order_id,
        user,
        settings.credentials_ttl,
    )
    return json_response(result, headers=NO_STORE)
