"""In-memory model of the fake DigitalOcean API v2.

Pure Python (no HTTP): droplets, actions, the tag indexes, accounts and the
failure-injection knobs. ``app.py`` only translates HTTP to calls on
:class:`FakeState` and :class:`ApiError` back to HTTP. The state is assembled
from mixins, one job each: ``admission.py`` (who calls, rate windows, injected
5xx, the request log), ``accounts.py`` (accounts, ``/v2/account``, SSH keys,
the droplet limit), ``actions.py`` (droplet actions, deletes, test controls);
this module keeps creates, reads, listings and stats. Model objects are in
``models.py``, body parsing in ``parsing.py``, the knobs in ``config.py``.

Every /v2 method takes the caller's account name (``account``); ``None`` is
for in-process calls: creates and keys then use the default account (the
first token's) and reads see every account's droplets.

Time is read through two injectable callables: ``clock`` (monotonic, drives
boot, actions, visibility and the rolling rate windows) and ``wall_clock``
(epoch seconds, only used for ``created_at``/``started_at`` and
``ratelimit-reset``). Tests swap ``clock`` for a manual one instead of sleeping.

Every hot path is O(1) amortised or O(page): droplets are indexed by id, the
visible ids are kept sorted in total, per tag, and per account (ids are
allocated in increasing order, so an insert is almost always an append), and
boot/action/visibility transitions are applied lazily from heaps the next time
anyone looks at the state.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from mocks.digitalocean import offerings
from mocks.digitalocean.accounts import FIRST_KEY_ID, Account, AccountsMixin
from mocks.digitalocean.actions import ActionsMixin
from mocks.digitalocean.admission import AdmissionMixin
from mocks.digitalocean.config import (
    MERGED_FIELDS,
    ROUTE_KINDS,
    ActionType,
    FakeConfig,
    Fate,
    RouteKind,
)
from mocks.digitalocean.models import (
    PENDING_EVENT_MESSAGE,
    PERMANENT_422_MESSAGE,
    TRANSIENT_422_MESSAGE,
    Action,
    ApiError,
    Droplet,
    not_found,
    unprocessable,
)
from mocks.digitalocean.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, DropletIndex, page_of
from mocks.digitalocean.parsing import CreateRequest, parse_create_request

# Re-exported: app.py and tests import these from here.
__all__ = [
    "DEFAULT_PER_PAGE",
    "MAX_PER_PAGE",
    "PENDING_EVENT_MESSAGE",
    "ROUTE_KINDS",
    "ActionType",
    "ApiError",
    "FakeConfig",
    "FakeState",
    "RouteKind",
    "not_found",
    "unprocessable",
]

# Large, DO-looking id ranges; they keep growing across /_fake/reset so an id
# a client cached before a reset can never alias a new droplet or action.
FIRST_DROPLET_ID = 300_000_001
FIRST_ACTION_ID = 2_000_000_001


class FakeState(AdmissionMixin, AccountsMixin, ActionsMixin):
    """Everything one fake DO instance knows. Not thread-safe: one event loop."""

    def __init__(
        self,
        config: FakeConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._initial_config = (config or FakeConfig()).model_copy(deep=True)
        self.clock = clock
        self.wall_clock = wall_clock
        self._next_droplet_id = FIRST_DROPLET_ID
        self._next_action_id = FIRST_ACTION_ID
        self._next_key_id = FIRST_KEY_ID
        self._next_log_seq = 0
        self._next_seq = 0
        self.reset()

    # -- lifecycle of the instance ------------------------------------------

    def reset(self) -> None:
        """Forget droplets, actions, accounts, windows, the log and counters;
        restore the initial config."""
        self.config = self._initial_config.model_copy(deep=True)
        # Every droplet that exists, visible yet or not.
        self._droplets: dict[int, Droplet] = {}
        self._visible: set[int] = set()
        self._actions: dict[int, Action] = {}
        # Visible droplets of every account (each account has its own index too).
        self._index = DropletIndex()
        # (due monotonic time, droplet id [, fate]) min-heaps of pending transitions.
        self._boot_queue: list[tuple[float, int, Fate]] = []
        self._visibility_queue: list[tuple[float, int]] = []
        self._boot_seconds: dict[int, float] = {}
        self._tag_counts: Counter[str] = Counter()
        self._status_counts: Counter[str] = Counter()
        self._created = 0
        self._removed = 0
        self._reset_admission()
        self._reset_accounts()
        self._reset_actions()

    def update_config(self, changes: Mapping[str, Any]) -> FakeConfig:
        """Apply a partial config; validated as a whole.

        The per-kind counters (``fail_next``, ``action_errored_next``) merge per kind.
        """
        merged = self.config.model_dump()
        for key, value in changes.items():
            if key in MERGED_FIELDS and isinstance(value, Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        self.config = FakeConfig.model_validate(merged)
        return self.config

    # -- droplets -------------------------------------------------------------

    def create_droplet(
        self, payload: Any, base_url: str, account: str | None = None
    ) -> dict[str, Any]:
        """POST /v2/droplets: validate, check keys, region, limit, 422 injection; create.

        Returns the 202 body.
        """
        self.advance()  # builds that errored away by now free their slot
        owner = self._caller_account(account)
        with self._counting_422():
            request = parse_create_request(payload)
            fingerprints = self._resolve_keys(owner, request.ssh_keys)
            refused = offerings.refusal(self.config, request.region, request.size)
            if refused is not None:
                raise refused
            self._check_room(owner)
            self._maybe_reject_create()
        droplet, action = self._new_droplet(request, owner, ssh_keys=fingerprints)
        return {
            "droplet": droplet.to_json(),
            "links": {
                "actions": [
                    {"id": action.id, "rel": "create", "href": f"{base_url}/v2/actions/{action.id}"}
                ]
            },
        }

    def _maybe_reject_create(self) -> None:
        if self.config.create_422_permanent:
            raise unprocessable(PERMANENT_422_MESSAGE)
        if self.config.create_422_transient > 0:
            self.config.create_422_transient -= 1
            raise unprocessable(TRANSIENT_422_MESSAGE)

    def _fate_of(self, image: str | int) -> Fate:
        slug = str(image)
        if slug in self.config.errored_images:
            return "errored"
        if slug in self.config.never_active_images:
            return "never_active"
        if slug in self.config.errored_status_images:
            return "errored_status"
        return "active"

    def _new_droplet(
        self,
        request: CreateRequest,
        owner: Account,
        *,
        ssh_keys: tuple[str, ...] = (),
        boot: bool = True,
    ) -> tuple[Droplet, Action]:
        """Create the droplet and its create action in ``owner``; ``boot=False`` leaves both
        to the caller (a seeded droplet: visible at once, nothing scheduled)."""
        now, wall = self.clock(), self.wall_clock()
        droplet_id, action_id, seq = self._allocate_ids()
        droplet = Droplet(
            id=droplet_id,
            name=request.name,
            region=request.region,
            size=request.size,
            image=request.image,
            tags=request.tags,
            monitoring=request.monitoring,
            created_wall=wall,
            seq=seq,
            action_id=action_id,
            account=owner.name,
            ssh_keys=ssh_keys,
            user_data=request.user_data,
        )
        action = Action(
            id=action_id,
            droplet_id=droplet_id,
            region=request.region,
            started_wall=wall,
            account=owner.name,
        )
        self._droplets[droplet_id] = droplet
        self._record_action(action)
        self._created += 1
        owner.live += 1
        self._status_counts["new"] += 1
        self._tag_counts.update(droplet.tags)
        if boot:
            self._schedule(droplet, now)
        else:
            self._make_visible(droplet)
        return droplet, action

    def _allocate_ids(self) -> tuple[int, int, int]:
        ids = (self._next_droplet_id, self._next_action_id, self._next_seq)
        self._next_droplet_id += 1
        self._next_action_id += 1
        self._next_seq += 1
        return ids

    def _allocate_action_id(self) -> int:
        action_id = self._next_action_id
        self._next_action_id += 1
        return action_id

    def _schedule(self, droplet: Droplet, now: float) -> None:
        fate = self._fate_of(droplet.image)
        boot = self.config.boot_seconds
        if fate != "never_active":
            self._boot_seconds[droplet.id] = boot
            heapq.heappush(self._boot_queue, (now + boot, droplet.id, fate))
        delay = self.config.consistency_delay_s
        if delay > 0:
            heapq.heappush(self._visibility_queue, (now + delay, droplet.id))
        else:
            self._make_visible(droplet)

    def advance(self) -> None:
        """Apply every boot, visibility and action transition that is due by now."""
        now = self.clock()
        boot_queue, visibility_queue = self._boot_queue, self._visibility_queue
        while visibility_queue and visibility_queue[0][0] <= now:
            _, droplet_id = heapq.heappop(visibility_queue)
            droplet = self._droplets.get(droplet_id)
            if droplet is not None:  # it may have errored away meanwhile
                self._make_visible(droplet)
        while boot_queue and boot_queue[0][0] <= now:
            _, droplet_id, fate = heapq.heappop(boot_queue)
            self._finish_boot(droplet_id, fate)
        self._advance_actions(now)

    def _finish_boot(self, droplet_id: int, fate: Fate) -> None:
        droplet = self._droplets.get(droplet_id)
        if droplet is None:  # deleted while booting: its create action never completes
            self._boot_seconds.pop(droplet_id, None)
            return
        action = self._actions[droplet.action_id]
        action.completed_wall = droplet.created_wall + self._boot_seconds.pop(droplet_id, 0.0)
        if fate == "errored":
            action.status = "errored"
            self._forget(droplet)
            self._removed += 1
            self._unlist(droplet)
            return
        # "errored_status" still completes the action: it models a droplet
        # that DO reports as created but that came up broken.
        action.status = "completed"
        if droplet.status == "new":  # unless a test forced another status meanwhile
            self._set_status(droplet, "active" if fate == "active" else "errored")

    def _set_status(self, droplet: Droplet, status: str) -> None:
        self._status_counts[droplet.status] -= 1
        self._status_counts[status] += 1
        droplet.set_status(status)

    def _make_visible(self, droplet: Droplet) -> None:
        self._visible.add(droplet.id)
        self._index.add(droplet.id, droplet.tags)
        self._account(droplet.account).index.add(droplet.id, droplet.tags)

    def _forget(self, droplet: Droplet) -> None:
        """The droplet no longer exists: GET answers 404, stats stop counting it."""
        del self._droplets[droplet.id]
        self._account(droplet.account).live -= 1
        self._status_counts[droplet.status] -= 1
        self._tag_counts.subtract(droplet.tags)
        self._visible.discard(droplet.id)

    def _unlist(self, droplet: Droplet) -> None:
        """Listings stop showing the droplet (at once, or after the delete lag)."""
        if droplet.id not in self._index:
            return
        self._index.discard(droplet.id, droplet.tags)
        self._account(droplet.account).index.discard(droplet.id, droplet.tags)

    def get_droplet(self, droplet_id: int, account: str | None = None) -> dict[str, Any]:
        self.advance()
        return {"droplet": self._visible_droplet(droplet_id, account).to_json()}

    def list_droplets(
        self,
        *,
        tag_name: str | None,
        page: int,
        per_page: int,
        base_url: str,
        account: str | None = None,
    ) -> dict[str, Any]:
        """GET /v2/droplets[?tag_name=]: one page of the account's droplets, ids ascending."""
        self.advance()
        index = self._index if account is None else self._account(account).index
        return page_of(
            "droplets",
            index.listed(tag_name),
            lambda droplet_id: self._listed(droplet_id).to_json(),
            url=f"{base_url}/v2/droplets",
            page=page,
            per_page=per_page,
            extra={"tag_name": tag_name},
        )

    def _listed(self, droplet_id: int) -> Droplet:
        # A deleted droplet may still be listed for delete_listing_lag_seconds.
        droplet = self._droplets.get(droplet_id)
        return droplet if droplet is not None else self._lagging[droplet_id]

    def get_action(self, action_id: int, account: str | None = None) -> dict[str, Any]:
        self.advance()
        action = self._actions.get(action_id)
        if action is None or (account is not None and action.account != account):
            raise not_found()
        return {"action": action.to_json()}

    # -- introspection ----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        self.advance()
        per_tag = {tag: n for tag, n in sorted(self._tag_counts.items()) if n > 0}
        order_tags = {
            tag: n
            for tag, n in per_tag.items()
            if tag.startswith("order-") and tag != "order-service"
        }
        return {
            "requests": self._requests,
            "by_route": {kind: self._by_route[kind] for kind in ROUTE_KINDS},
            "rate_limited": self._rate_limited,
            "unauthorized": self._unauthorized,
            "server_errors": self._server_errors,
            "unprocessable": self._unprocessable,
            "droplets": self._created,
            "droplets_removed": self._removed,
            "droplets_by_status": {s: n for s, n in sorted(self._status_counts.items()) if n > 0},
            "droplets_per_tag": per_tag,
            "max_droplets_per_order_tag": max(order_tags.values(), default=0),
            "orders_with_multiple_droplets": [tag for tag, n in order_tags.items() if n > 1],
            **self._action_stats(),
            **self._account_stats(),
        }
