"""catalog-service's answers (SPEC section 6), validated strictly.

Anything that breaks the contract — a missing field, a non-integral or negative
price — fails validation here and becomes CATALOG_SERVICE_UNAVAILABLE.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Beyond 2**53 a JSON float can no longer hold every whole number exactly.
_MAX_EXACT = 2**53


def to_whole_idr(value: object) -> int:
    """Convert a catalog amount (int or float in JSON) to whole IDR, exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("amount must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("amount must be a number") from None
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError("amount must be a whole number of IDR")
    if amount < 0 or amount > _MAX_EXACT:
        raise ValueError("amount out of range")
    return int(amount)


def to_non_negative_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError("must be a non-negative number")
    return number


WholeIDR = Annotated[int, BeforeValidator(to_whole_idr)]
NonNegativeDecimal = Annotated[Decimal, BeforeValidator(to_non_negative_decimal)]


class _CatalogModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Pricing(_CatalogModel):
    id: str | None = None
    duration: str
    price: WholeIDR
    is_active: bool = Field(alias="isActive")


class Promo(_CatalogModel):
    id: str | None = None
    name: str | None = None
    discount_type: Literal["PERCENT", "FIXED"] = Field(alias="discountType")
    discount_value: NonNegativeDecimal = Field(alias="discountValue")
    start_date: datetime | None = Field(default=None, alias="startDate")
    end_date: datetime | None = Field(default=None, alias="endDate")
    is_active: bool = Field(alias="isActive")

    @model_validator(mode="after")
    def _fixed_is_whole_idr(self) -> Promo:
        # A FIXED discount is an amount of money: whole IDR, like prices.
        if self.discount_type == "FIXED":
            to_whole_idr(str(self.discount_value))
        return self


class Plan(_CatalogModel):
    id: str
    name: str
    display_name: str | None = Field(default=None, alias="displayName")
    provider_size_slug: str = Field(alias="providerSizeSlug", min_length=1)
    # The size's disk (SPEC section 15: a disk never shrinks); None when catalog omits it.
    disk_gb: int | None = Field(default=None, alias="diskGb", ge=0)
    is_active: bool = Field(alias="isActive")
    allowed_image_ids: list[str] = Field(default_factory=list, alias="allowedImageIds")
    pricings: list[Pricing] = Field(default_factory=list)
    promos: list[Promo] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.display_name or self.name


class Image(_CatalogModel):
    id: str
    provider_slug: str = Field(alias="providerSlug", min_length=1)
    display_name: str = Field(alias="displayName")
    is_active: bool = Field(alias="isActive")


class CouponInfo(_CatalogModel):
    code: str
    name: str | None = None


class CouponValidation(_CatalogModel):
    valid: bool
    reason: str | None = None
    discount_amount: WholeIDR | None = Field(default=None, alias="discountAmount")
    coupon: CouponInfo | None = None


class PlanEnvelope(_CatalogModel):
    data: Plan


class ImageEnvelope(_CatalogModel):
    data: Image


class CouponEnvelope(_CatalogModel):
    data: CouponValidation
