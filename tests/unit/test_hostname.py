"""Host names as SPEC section 14 allows them (orders/hostname.py), and on the order body."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from order_service.orders.hostname import normalize_hostname
from order_service.orders.schemas import CreateOrderRequest

GOOD = {
    "a": "a",
    "web-1": "web-1",
    "Web-1.Example.COM": "web-1.example.com",
    "x" * 63: "x" * 63,
    "1.2.3": "1.2.3",
    # 253 characters: four labels of 62 and one of one, with dots.
    ".".join(["a" * 62] * 4) + ".b": ".".join(["a" * 62] * 4) + ".b",
}
BAD = [
    "",
    "-web",
    "web-",
    "web..example",
    ".web",
    "web.",
    "x" * 64,
    "under_score",
    "space here",
    "ümlaut",
    "\u212aelvin",  # KELVIN SIGN lower-cases to an ASCII "k": refused, not folded
    ".".join(["a" * 62] * 4) + ".bc",  # 254 characters
    "web/1",
]


@pytest.mark.parametrize(("given", "stored"), GOOD.items())
def test_accepted_host_names_are_stored_lower_case(given: str, stored: str) -> None:
    assert normalize_hostname(given) == stored


@pytest.mark.parametrize("given", BAD)
def test_refused_host_names(given: str) -> None:
    with pytest.raises(ValueError):
        normalize_hostname(given)


def _body(**extra: object) -> dict[str, object]:
    return {
        "planId": "a1000000-0000-4000-8000-000000000001",
        "imageId": "b2000000-0000-4000-8000-000000000001",
        "duration": "MONTHLY",
        **extra,
    }


def test_the_order_body_keeps_the_lower_case_name_and_refuses_a_bad_one() -> None:
    assert CreateOrderRequest.model_validate(_body(hostname="DB.Example.com")).hostname == (
        "db.example.com"
    )
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate(_body(hostname="bad_name"))


def test_the_idempotency_fingerprint_names_the_new_fields_only_when_given() -> None:
    plain = CreateOrderRequest.model_validate(_body()).fingerprint()
    assert set(plain) == {"planId", "imageId", "duration", "couponCode"}  # as before v1.2
    chosen = CreateOrderRequest.model_validate(
        _body(hostname="A.b", region="sgp1", sshKeyIds=["d4000000-0000-4000-8000-000000000001"])
    ).fingerprint()
    assert chosen["hostname"] == "a.b" and chosen["region"] == "sgp1"
    assert chosen["sshKeyIds"] == ["d4000000-0000-4000-8000-000000000001"]
    assert chosen != plain
