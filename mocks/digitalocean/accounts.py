"""DO accounts in the fake: the namespace of droplets, actions, SSH keys and the limit.

A mixin of :class:`~mocks.digitalocean.state.FakeState`. An account exists as
soon as anything names it (a token that authenticates, a seeded droplet, a
limit set by a test) and lives until ``/_fake/reset``: removing a token from
``tokens`` makes the token 401 but keeps its account, so re-adding the token,
or adding another one mapped to the same account, reaches the droplets again.

Each account keeps its own indexes (visible droplet ids sorted, per tag, and
its keys by id and by fingerprint), so every per-account read is O(1) or
O(page). Droplet, action and key ids stay unique across all accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

from mocks.digitalocean.config import FakeConfig
from mocks.digitalocean.models import (
    DROPLET_LIMIT_MESSAGE,
    KEY_IN_USE_MESSAGE,
    SshKey,
    not_found,
    unprocessable,
)
from mocks.digitalocean.paging import DropletIndex, page_of
from mocks.digitalocean.parsing import parse_key_request

# Like droplet and action ids: DO-looking, and growing across /_fake/reset.
FIRST_KEY_ID = 41_000_001

# GET /v2/account's fixed fields: what a verified, active DO account reports.
_FLOATING_IP_LIMIT = 3
_VOLUME_LIMIT = 10


@dataclass(slots=True)
class Account:
    name: str
    # Droplets that exist now (created, not deleted, not errored away): what the limit counts.
    live: int = 0
    # Its visible droplets, for its listings.
    index: DropletIndex = field(default_factory=DropletIndex)
    keys: dict[int, SshKey] = field(default_factory=dict)
    keys_by_fingerprint: dict[str, SshKey] = field(default_factory=dict)
    key_ids: list[int] = field(default_factory=list)  # ascending: ids only grow
    requests: int = 0
    rate_limited: int = 0
    keys_created: int = 0


class AccountsMixin:
    """Accounts, ``GET /v2/account``, SSH keys and the droplet limit; see the module docstring."""

    if TYPE_CHECKING:  # provided by FakeState and AdmissionMixin
        config: FakeConfig
        _next_key_id: int

        def _counting_422(self) -> AbstractContextManager[None]: ...

    def _reset_accounts(self) -> None:
        """Called by ``FakeState.reset``."""
        self._accounts: dict[str, Account] = {}

    def _account(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = Account(name=name)
        return account

    def _caller_account(self, name: str | None) -> Account:
        """The caller's account; ``None`` (in-process calls) means the default account."""
        return self._account(self.default_account() if name is None else name)

    def default_account(self) -> str:
        """The account of the first configured token: where in-process calls and seeds go."""
        if not self.config.tokens:
            raise unprocessable("account is required when no token is configured.")
        return self.config.account_of(self.config.tokens[0])

    # -- the droplet limit ---------------------------------------------------------

    def _check_room(self, account: Account) -> None:
        if account.live + 1 > self.config.limit_of(account.name):
            raise unprocessable(DROPLET_LIMIT_MESSAGE)

    # -- GET /v2/account -------------------------------------------------------------

    def get_account(self, name: str | None = None) -> dict[str, Any]:
        account = self._caller_account(name)
        return {
            "account": {
                "droplet_limit": self.config.limit_of(account.name),
                "floating_ip_limit": _FLOATING_IP_LIMIT,
                "volume_limit": _VOLUME_LIMIT,
                "email": f"owner@{_slug(account.name)}.example.com",
                "uuid": _stable_uuid("account", account.name),
                "email_verified": True,
                "status": "active",
                "status_message": "",
                "team": {
                    "uuid": _stable_uuid("team", account.name),
                    "name": f"{account.name} team",
                },
            }
        }

    # -- SSH keys --------------------------------------------------------------------

    def list_keys(
        self, name: str | None = None, *, page: int = 1, per_page: int = 20, base_url: str = ""
    ) -> dict[str, Any]:
        """GET /v2/account/keys: one page, ids ascending, DO-style links."""
        account = self._caller_account(name)
        return page_of(
            "ssh_keys",
            account.key_ids,
            lambda key_id: account.keys[key_id].to_json(),
            url=f"{base_url}/v2/account/keys",
            page=page,
            per_page=per_page,
        )

    def get_key(self, ref: str, name: str | None = None) -> dict[str, Any]:
        """GET /v2/account/keys/{id or fingerprint}."""
        key = self._find_key(self._caller_account(name), ref)
        if key is None:
            raise not_found()
        return {"ssh_key": key.to_json()}

    def create_key(self, payload: Any, name: str | None = None) -> dict[str, Any]:
        """POST /v2/account/keys: 201 body, or 422 for a bad key or one already there."""
        account = self._caller_account(name)
        with self._counting_422():
            request = parse_key_request(payload)
            if request.fingerprint in account.keys_by_fingerprint:
                raise unprocessable(KEY_IN_USE_MESSAGE)
        key = SshKey(
            id=self._next_key_id,
            fingerprint=request.fingerprint,
            public_key=request.public_key,
            name=request.name,
        )
        self._next_key_id += 1
        account.keys[key.id] = key
        account.keys_by_fingerprint[key.fingerprint] = key
        account.key_ids.append(key.id)
        account.keys_created += 1
        return {"ssh_key": key.to_json()}

    @staticmethod
    def _find_key(account: Account, ref: int | str) -> SshKey | None:
        if isinstance(ref, int):
            return account.keys.get(ref)
        if ref.isdigit():
            return account.keys.get(int(ref))
        return account.keys_by_fingerprint.get(ref.lower())

    def _resolve_keys(self, account: Account, refs: tuple[int | str, ...]) -> tuple[str, ...]:
        """The fingerprints of a create's ``ssh_keys``; 422 naming the first one not there."""
        fingerprints = []
        for ref in refs:
            key = self._find_key(account, ref)
            if key is None:
                raise unprocessable(f"ssh_keys: no SSH key {ref!r} in this account.")
            fingerprints.append(key.fingerprint)
        return tuple(dict.fromkeys(fingerprints))

    # -- test controls and stats -------------------------------------------------------

    def update_account(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /_fake/accounts/{name}``: ``{"droplet_limit": N}`` sets the account's
        limit (stored in ``config.droplet_limits``), ``null`` drops the override."""
        unknown = set(changes) - {"droplet_limit"}
        if unknown:
            raise unprocessable(f"unknown fields: {sorted(unknown)}")
        if "droplet_limit" in changes:
            limit = changes["droplet_limit"]
            if limit is None:
                self.config.droplet_limits.pop(name, None)
            elif isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
                self.config.droplet_limits[name] = limit
            else:
                raise unprocessable("droplet_limit must be an integer >= 0 or null.")
        return {"account": {"name": name, **self._account_summary(self._account(name))}}

    def _account_summary(self, account: Account) -> dict[str, Any]:
        return {
            "droplets": account.live,
            "droplet_limit": self.config.limit_of(account.name),
            "requests": account.requests,
            "rate_limited": account.rate_limited,
            "keys_created": account.keys_created,
        }

    def _account_stats(self) -> dict[str, Any]:
        for token in self.config.tokens:  # list configured accounts even before first use
            self._account(self.config.account_of(token))
        accounts = {name: self._account_summary(a) for name, a in sorted(self._accounts.items())}
        return {
            "accounts": accounts,
            "keys_created": sum(a.keys_created for a in self._accounts.values()),
        }


def _stable_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-do-{kind}/{name}"))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower()) or "account"
