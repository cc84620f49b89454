"""The account-level calls of DO API v2 (SPEC sections 7, 13, 14): the account
itself, its SSH keys, regions and sizes, and the paged listing they share with
droplets. Same transport as every call: budget, retries, error sorting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from order_service.provisioning.digitalocean.errors import DigitalOceanPermanentError
from order_service.provisioning.digitalocean.models import Account, AccountKey, Region, Size
from order_service.provisioning.digitalocean.responses import (
    MAX_PER_PAGE,
    is_key_in_use_422,
    json_object,
    malformed,
    next_page,
    parse_body,
)
from order_service.provisioning.digitalocean.transport import DigitalOceanTransport

__all__ = ["AccountCalls"]

T = TypeVar("T")


class AccountCalls(DigitalOceanTransport):
    """The account, its keys, regions and sizes; and paged listings."""

    async def get_account(self) -> Account:
        """``GET /v2/account``: the droplet limit DO grants this token's account."""
        operation = "get_account"
        response = await self._request(operation, "GET", "/v2/account")
        assert response is not None
        return parse_body(response, operation, lambda body: Account.from_api(body["account"]))

    async def get_ssh_key(self, fingerprint: str) -> AccountKey | None:
        """``GET /v2/account/keys/{fingerprint}``: the key, or None when the account lacks it."""
        operation = "get_ssh_key"
        response = await self._request(
            operation, "GET", f"/v2/account/keys/{fingerprint}", allow_404=True
        )
        if response is None:
            return None
        return parse_body(response, operation, lambda body: AccountKey.from_api(body["ssh_key"]))

    async def create_ssh_key(self, name: str, public_key: str) -> AccountKey | None:
        """``POST /v2/account/keys``; None when DO says the key is already in the account
        (its 422 "already in use": present, which is all the caller wants)."""
        operation = "create_ssh_key"
        try:
            response = await self._request(
                operation,
                "POST",
                "/v2/account/keys",
                json={"name": name, "public_key": public_key},
            )
        except DigitalOceanPermanentError as exc:
            if exc.status_code == 422 and is_key_in_use_422(exc.message):
                return None
            raise
        assert response is not None
        return parse_body(response, operation, lambda body: AccountKey.from_api(body["ssh_key"]))

    async def list_regions(self) -> list[Region]:
        return await self._list_all("list_regions", "/v2/regions", "regions", Region.from_api)

    async def list_sizes(self) -> list[Size]:
        return await self._list_all("list_sizes", "/v2/sizes", "sizes", Size.from_api)

    async def _list_all(
        self,
        operation: str,
        path: str,
        key: str,
        parse: Callable[[Mapping[str, Any]], T],
        *,
        params: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
    ) -> list[T]:
        """Every item of a paged listing, in DO's order (``links.pages.next`` / ``meta.total``)."""
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        items: list[T] = []
        page: int | None = 1
        while page is not None:
            query = {**(params or {}), "page": page, "per_page": per_page}
            response = await self._request(operation, "GET", path, params=query)
            assert response is not None  # 404 is not tolerated for listings
            body = json_object(response, operation)
            try:
                raw = body[key]
                if not isinstance(raw, list):
                    raise TypeError(f"{key} is a {type(raw).__name__}, not a list")
                found = [parse(item) for item in raw]
            except (KeyError, TypeError, ValueError) as exc:
                raise malformed(operation, response, exc) from exc
            items.extend(found)
            page = next_page(body, page, per_page, len(found))
        return items
