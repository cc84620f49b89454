"""catalog-service client: one shared httpx.AsyncClient per process.

Every failure to get a contract-conforming answer — connection refused,
timeout, 5xx, malformed JSON, a shape or price that breaks the contract — is
CatalogUnavailable (503). Unknown plans and images are `None`; the order
service decides what that means.
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from order_service.catalog.schemas import (
    CouponEnvelope,
    CouponValidation,
    Image,
    ImageEnvelope,
    Plan,
    PlanEnvelope,
)
from order_service.errors import CatalogUnavailable

logger = logging.getLogger("order_service.catalog")

_Envelope = TypeVar("_Envelope", bound=BaseModel)


class CatalogClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_ms: int = 5000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_ms / 1000),
            # Few connections on purpose: httpcore scans every pooled connection
            # (a readability poll each) to place each request, so a big pool costs
            # more per call than it gains; 16 keep-alive connections saturate a
            # catalog-service on loopback (bench/analysis.md, profile).
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_plan(self, plan_id: str) -> Plan | None:
        if not _is_catalog_id(plan_id):
            return None
        envelope = await self._get(f"/api/v1/catalog/plans/{quote(plan_id, safe='')}", PlanEnvelope)
        return envelope.data if envelope else None

    async def get_image(self, image_id: str) -> Image | None:
        if not _is_catalog_id(image_id):
            return None
        path = f"/api/v1/catalog/images/{quote(image_id, safe='')}"
        envelope = await self._get(path, ImageEnvelope)
        return envelope.data if envelope else None

    async def validate_coupon(
        self, *, code: str, plan_id: str, user_id: str, amount: int
    ) -> CouponValidation:
        body = {"code": code, "planId": plan_id, "userId": user_id, "amount": amount}
        response = await self._send("POST", "/api/v1/catalog/coupons/validate", json=body)
        if response.status_code != 200:
            raise self._unavailable(f"coupon validation answered {response.status_code}")
        result = self._parse(response, CouponEnvelope).data
        if result.valid and result.discount_amount is None:
            raise self._unavailable("valid coupon without discountAmount")
        return result

    async def _get(self, path: str, envelope: type[_Envelope]) -> _Envelope | None:
        response = await self._send("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._unavailable(f"GET {path} answered {response.status_code}")
        return self._parse(response, envelope)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise self._unavailable(f"{method} {path} timed out") from None
        except httpx.HTTPError as exc:
            raise self._unavailable(f"{method} {path} failed: {type(exc).__name__}") from None

    def _parse(self, response: httpx.Response, envelope: type[_Envelope]) -> _Envelope:
        try:
            return envelope.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._unavailable(
                f"{response.request.method} {response.request.url.path} broke the contract: "
                f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
            ) from None

    @staticmethod
    def _unavailable(reason: str) -> CatalogUnavailable:
        logger.warning("catalog-service unavailable: %s", reason)
        return CatalogUnavailable(details={"reason": reason})


# Catalog ids (UUIDs) are made of URL-unreserved characters. Anything else names
# no plan or image, and is not sent: servers disagree on decoding %2F and dot
# segments (a "x/" id drew a redirect, i.e. a false "catalog unavailable").
_CATALOG_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9._~-]+$")


def _is_catalog_id(value: str) -> bool:
    return _CATALOG_ID.fullmatch(value) is not None
