"""What a storm sets up beyond the service: the fake DO's accounts (issue 20) and, after
it, each order's PAID -> ACTIVE from the database (issue 23)."""

from __future__ import annotations

import httpx

from bench import seed
from bench.infra import DO_TOKEN, INTERNAL_API_KEY, Proc


def fake_tokens(accounts: int) -> list[str]:
    """One fake DO token per account: the service's `default` has DO_TOKEN."""
    return [DO_TOKEN] + [f"{DO_TOKEN}-{k}" for k in range(2, accounts + 1)]


def register_accounts(service: Proc, tokens: list[str], prefix: str = "storm") -> None:
    """Add an account for every token but the first (`default`) through the internal API,
    as ops would: the service checks each token with DO and stores it encrypted. The
    accounts are named `<prefix>-02`, `<prefix>-03`, ..."""
    with httpx.Client(
        base_url=service.url, headers={"X-API-Key": INTERNAL_API_KEY}, timeout=30
    ) as client:
        for index, token in enumerate(tokens[1:], start=2):
            name = f"{prefix}-{index:02d}"
            answer = client.post(
                "/api/v1/internal/do-accounts", json={"name": name, "token": token}
            )
            if answer.status_code != 201:
                raise RuntimeError(f"adding DO account {name}: {answer.status_code} {answer.text}")


async def paid_to_active_seconds(ids: list[str]) -> list[float]:
    """Each ACTIVE order's PAID -> ACTIVE from the database's own timestamps."""
    rows = await seed.execute(
        "SELECT extract(epoch FROM activated_at - paid_at) AS s FROM orders "
        "WHERE id = ANY($1::uuid[]) AND status = 'ACTIVE' AND paid_at IS NOT NULL "
        "AND activated_at IS NOT NULL",
        ids,
    )
    return [float(row["s"]) for row in rows]
