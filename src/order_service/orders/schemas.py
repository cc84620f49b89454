"""Request and response shapes of the order API (camelCase JSON, SPEC section 5).

Responses are rendered by `orders.views` straight to JSON; these models are the
documented contract (OpenAPI) and what tests validate responses against.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from order_service.orders.hostname import MAX_HOSTNAME_LENGTH, normalize_hostname
from order_service.orders.states import Duration, OrderStatus, TaskStatus

T = TypeVar("T")

# PostgreSQL text cannot hold NUL: refuse it as invalid input, not later as a 500.
NO_NUL = r"^[^\x00]*$"


def _canonical_uuid(value: str) -> str:
    # Ids are UUIDs (SPEC section 5): anything else is refused here as a
    # VALIDATION_ERROR naming the field, before catalog-service is asked.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


#: A catalog id in a request body: a UUID, passed on in its canonical lower-case form.
UuidStr = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"format": "uuid"}),
    AfterValidator(_canonical_uuid),
]


# A date and a time (hours and minutes at least); the zone is AwareDatetime's to check.
_DATE_AND_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: object) -> object:
    # pydantic's lax datetime also takes a number (or a numeric string) as unix
    # seconds and a date alone as midnight: {"expiresAt": 5} would be 1970-01-01.
    if not isinstance(value, str) or not _DATE_AND_TIME.match(value):
        raise PydanticCustomError(
            "iso_timestamp",
            "must be an ISO 8601 date and time with a time zone, e.g. 2026-01-31T00:00:00Z",
        )
    return value


#: A timestamp in a request body (SPEC section 2): an ISO 8601 string with a date, a
#: time and a zone. A number, a date alone or a time without a zone is VALIDATION_ERROR.
IsoTimestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


#: A host name (SPEC section 14), stored lower-case.
Hostname = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_HOSTNAME_LENGTH,
        description=(
            "the server's host name and the droplet's name: 1-253 characters, labels of 1-63 "
            "letters, digits and '-' (not first or last) separated by '.'; stored lower-case"
        ),
        examples=["web-1.example.com"],
    ),
    AfterValidator(normalize_hostname),
]
#: An id (UUID) in a request body, as a UUID.
UuidId = Annotated[uuid.UUID, Field(json_schema_extra={"format": "uuid"})]

Access = Literal["SSH_KEYS", "PASSWORD"]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreateOrderRequest(CamelModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "planId": "6a1f0d0e-7c1b-4c59-9a53-1d1f1b6b7a01",
                    "imageId": "0f9a3b1c-3d4e-4f5a-8b6c-7d8e9f0a1b01",
                    "duration": "MONTHLY",
                    "couponCode": "HEMAT20",
                    "hostname": "web-1.example.com",
                    "region": "sgp1",
                    "sshKeyIds": ["d4000000-0000-4000-8000-000000000001"],
                }
            ]
        },
    )

    plan_id: UuidStr
    image_id: UuidStr
    duration: Duration
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)
    hostname: Hostname | None = None
    region: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9-]+$",
        description=(
            "a slug of GET /api/v1/regions?planId= (else 400 INVALID_REGION); "
            "absent: the service's default region"
        ),
        examples=["sgp1"],
    )
    ssh_key_ids: list[UuidId] | None = Field(
        default=None,
        max_length=10,
        description=(
            "up to 10 of your SSH keys (ids of /api/v1/ssh-keys); the order keeps a copy. "
            "Absent or empty: a first-access root password (GET .../credentials)"
        ),
    )

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes: every field,
        the v1.2 ones (hostname, region, sshKeyIds) included when given, so a key sent
        before v1.2 still matches its body."""
        body = self.model_dump(mode="json", by_alias=True)
        for field in ("hostname", "region", "sshKeyIds"):
            if body[field] is None:
                del body[field]
        return body


class PaymentStatusRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "PAID", "notes": "BCA transfer #8812"}]}
    )

    status: Literal["PAID", "PAYMENT_FAILED"]
    notes: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class ActionRequest(CamelModel):
    """Optional body of cancel and retry: why the operator did it."""

    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class PricingOut(CamelModel):
    """The price snapshot taken from catalog-service when the order was placed (whole IDR)."""

    base_price: int = Field(description="the plan's active price for the duration")
    promo_discount: int = Field(description="the running promo giving the largest discount")
    coupon_code: str | None
    coupon_discount: int = Field(description="as catalog-service computed it")
    final_price: int = Field(description="max(0, basePrice - promoDiscount - couponDiscount)")
    currency: Literal["IDR"] = "IDR"


class OrderItemOut(CamelModel):
    id: uuid.UUID
    item_type: Literal["PLAN", "IMAGE", "ADDON"]
    reference_id: str
    description: str
    unit_price: int
    quantity: int
    total_price: int


class ProvisioningTaskOut(CamelModel):
    """The droplet behind a paid order, as the provisioner last saw it."""

    id: uuid.UUID
    status: TaskStatus
    droplet_id: str | None = Field(description="DigitalOcean's droplet id, as a string")
    droplet_name: str | None = Field(description="vps-<first 8 characters of the order id>")
    droplet_status: str | None = Field(
        description=(
            "DigitalOcean's status (new, active, off, archive, errored), or `gone` once "
            "DigitalOcean stopped showing the droplet"
        )
    )
    ipv4_public: str | None
    ipv4_private: str | None
    do_region: str
    do_size: str
    do_image: str
    do_account: str | None = Field(
        default=None, description="the DigitalOcean account holding the droplet (null: not placed)"
    )
    droplet_tags: list[str] | None
    droplet_created_at: datetime | None
    error_code: str | None = Field(
        description="PROVISIONING_FAILED, DIGITALOCEAN_UNAVAILABLE or PROVISIONING_TIMEOUT"
    )
    error_message: str | None = Field(description="readable reason, for operators")
    attempts: int = Field(description="checks made against DigitalOcean in the current run")
    started_at: datetime | None = Field(description="when the current run requested the droplet")
    completed_at: datetime | None


class SshKeySnapshotOut(CamelModel):
    """A key the order was placed with, as it was then (deleting the key changes nothing)."""

    name: str
    fingerprint: str = Field(description="MD5, DigitalOcean's form (aa:bb:...)")


class StatusHistoryOut(CamelModel):
    id: uuid.UUID
    previous_status: str = Field(description='"" for the first row')
    new_status: str
    actor: str
    reason: str | None
    metadata: dict[str, Any] | None
    created_at: datetime


class OrderOut(CamelModel):
    id: uuid.UUID
    user_id: str
    status: OrderStatus
    plan_id: str
    plan_name: str
    image_id: str
    image_name: str
    duration: Duration
    pricing: PricingOut
    items: list[OrderItemOut]
    provisioning_task: ProvisioningTaskOut | None = Field(
        description="null until the order is paid"
    )
    status_history: list[StatusHistoryOut] | None = Field(
        default=None, description="internal detail only, oldest first"
    )
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    activated_at: datetime | None = Field(description="first time the order became ACTIVE")
    expires_at: datetime | None = Field(description="end of the paid period")
    suspended_at: datetime | None
    suspension_reason: Literal["EXPIRED", "ADMIN"] | None
    terminated_at: datetime | None
    termination_reason: Literal["EXPIRED", "CANCELED_BY_USER", "ADMIN"] | None
    cancel_at_period_end: bool = Field(description="the service ends at expiresAt")
    hostname: str | None = Field(
        default=None, description="lower-case; null: the droplet is named vps-<first 8 of id>"
    )
    region: str | None = Field(default=None, description="where every droplet of the order goes")
    access: Access | None = Field(
        default=None,
        description=(
            "SSH_KEYS (log in with sshKeys) or PASSWORD (a first-access root password, "
            "GET .../credentials); null for orders placed before v1.2"
        ),
    )
    ssh_keys: list[SshKeySnapshotOut] = Field(
        default_factory=list, description="the keys chosen at order time (names, fingerprints)"
    )
    plan_changed_at: datetime | None = Field(
        default=None, description="when the order last moved to another plan"
    )


class CredentialsOut(CamelModel):
    """How the owner logs in the first time (SPEC section 14)."""

    username: Literal["root"] = "root"
    password: str | None = Field(
        description=(
            "the first-access root password (PASSWORD orders, until expiresAt); "
            "null for SSH_KEYS orders"
        )
    )
    ssh_keys: list[SshKeySnapshotOut] = Field(
        description="the keys installed for root (SSH_KEYS orders; empty otherwise)"
    )
    ipv4_public: str | None
    expires_at: datetime | None = Field(
        description="when the password is erased (null: nothing to erase, SSH_KEYS)"
    )


class RegionOut(CamelModel):
    slug: str = Field(examples=["sgp1"])
    name: str = Field(examples=["Singapore 1"])


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int
    totalPages: int


class DataEnvelope(BaseModel, Generic[T]):
    data: T


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail
