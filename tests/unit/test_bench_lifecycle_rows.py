"""The lifecycle-scan bench writes orders with COPY: a row must name every column of
`orders` as the code has it now (a migration that adds one broke the bench unseen)."""

from __future__ import annotations

import pytest

from bench.lifecycle_scan import COLUMNS, order_row
from order_service.orders.repository import orders_t


@pytest.mark.parametrize(
    "kind", [{"due": False}, {"due": True}, {"due": False, "renewal_due": True}]
)
def test_a_bench_order_has_every_column_of_the_table(kind: dict[str, bool]) -> None:
    row = order_row(7, **kind)

    assert len(row) == len(COLUMNS) == len(orders_t.c)
    assert dict(zip(COLUMNS, row, strict=True))["status"] == "ACTIVE"
