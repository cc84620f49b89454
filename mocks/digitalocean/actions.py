"""Droplet actions, deletes and the test-only droplet controls of the fake.

A mixin of :class:`~mocks.digitalocean.state.FakeState` (it works on the
state's droplets, actions and counters; ``state.py`` keeps creates, reads,
admission and stats). Like boots, actions finish lazily: each started action
sits in a heap until its due time, and :meth:`_advance_actions` applies the
ones that are due the next time anyone looks at the state.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from mocks.digitalocean import offerings
from mocks.digitalocean.catalogue import size_spec
from mocks.digitalocean.config import ACTION_TYPES, FakeConfig
from mocks.digitalocean.models import (
    PENDING_EVENT_MESSAGE,
    Action,
    ApiError,
    Droplet,
    not_found,
    unprocessable,
)
from mocks.digitalocean.paging import MAX_PER_PAGE, clamp_page, listing
from mocks.digitalocean.parsing import (
    ActionRequest,
    CreateRequest,
    parse_action_request,
    parse_create_request,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from mocks.digitalocean.accounts import Account

#: The droplet's status once an action of that type completed (SPEC §7).
END_STATUS: Final[Mapping[str, str]] = {
    "reboot": "active",
    "shutdown": "off",
    "power_off": "off",
    "power_on": "active",
    "rebuild": "active",
    "resize": "off",  # it must be off to start, and DO leaves it off
}

RESIZE_WHILE_ON_MESSAGE = "Droplet is currently on. Please power it off to run this event."
DISK_SHRINK_MESSAGE = (
    "This size is not available because it has a smaller disk than the Droplet: "
    "a disk can never shrink."
)

#: Statuses a test may give a seeded droplet or force on one.
CONTROL_STATUSES: Final = frozenset({"new", "active", "off", "errored", "archive"})

# A started droplet action waiting for its end:
# (due monotonic time, action id, seconds it runs, ends errored?, the request).
_Pending = tuple[float, int, float, bool, ActionRequest]


class ActionsMixin:
    """Droplet actions, DELETE and the seeding/forcing controls; see the module docstring."""

    if TYPE_CHECKING:  # provided by FakeState
        config: FakeConfig
        clock: Callable[[], float]
        wall_clock: Callable[[], float]
        _droplets: dict[int, Droplet]
        _visible: set[int]
        _actions: dict[int, Action]

        def advance(self) -> None: ...
        def _set_status(self, droplet: Droplet, status: str) -> None: ...
        def _forget(self, droplet: Droplet) -> None: ...
        def _unlist(self, droplet: Droplet) -> None: ...
        def _allocate_action_id(self) -> int: ...
        def _counting_422(self) -> AbstractContextManager[None]: ...
        def _account(self, name: str) -> Account: ...
        def default_account(self) -> str: ...
        def _new_droplet(
            self,
            request: CreateRequest,
            owner: Account,
            *,
            ssh_keys: tuple[str, ...] = (),
            boot: bool = True,
        ) -> tuple[Droplet, Action]: ...

    def _reset_actions(self) -> None:
        """Called by ``FakeState.reset``."""
        # Action ids of each droplet in creation order (ids only grow: oldest first).
        self._actions_by_droplet: dict[int, list[int]] = {}
        # Droplet id -> its in-progress droplet action (the "pending event").
        self._busy: dict[int, int] = {}
        self._action_queue: list[_Pending] = []
        # Deleted droplets that listings still show (delete_listing_lag_seconds).
        self._lagging: dict[int, Droplet] = {}
        self._unlist_queue: list[tuple[float, int]] = []
        self._action_counts: Counter[str] = Counter(dict.fromkeys(ACTION_TYPES, 0))
        self._action_errored: Counter[str] = Counter(dict.fromkeys(ACTION_TYPES, 0))
        self._pending_event = 0
        self._deletes = 0
        self._seeded = 0

    def _record_action(self, action: Action) -> None:
        self._actions[action.id] = action
        self._actions_by_droplet.setdefault(action.droplet_id, []).append(action.id)

    def _visible_droplet(self, droplet_id: int, account: str | None = None) -> Droplet:
        """The droplet if the caller may see it: another account's droplet is unknown to it."""
        droplet = self._droplets.get(droplet_id)
        if droplet is None or droplet_id not in self._visible:
            raise not_found()
        if account is not None and droplet.account != account:
            raise not_found()
        return droplet

    # -- /v2 -------------------------------------------------------------------------

    def post_droplet_action(
        self, droplet_id: int, payload: Any, account: str | None = None
    ) -> dict[str, Any]:
        """POST /v2/droplets/{id}/actions: 404, 422 (invalid, pending event, a resize
        that cannot be) or the 201 body."""
        self.advance()
        droplet = self._visible_droplet(droplet_id, account)
        with self._counting_422():
            request = parse_action_request(payload)
            if self.config.action_422_pending > 0:
                self.config.action_422_pending -= 1
                raise self._pending_event_error()
            # A droplet still booting has its create action pending, as on DO.
            if droplet.status == "new" or droplet.id in self._busy:
                raise self._pending_event_error()
            if request.type == "resize":
                self._check_resize(droplet, request)
        now, wall = self.clock(), self.wall_clock()
        action = Action(
            id=self._allocate_action_id(),
            droplet_id=droplet.id,
            region=droplet.region,
            started_wall=wall,
            account=droplet.account,
            type=request.type,
        )
        self._record_action(action)
        self._busy[droplet.id] = action.id
        self._action_counts[request.type] += 1
        doomed = self.config.action_errored_next[request.type] > 0
        if doomed:
            self.config.action_errored_next[request.type] -= 1
        seconds = self.config.action_seconds
        heapq.heappush(self._action_queue, (now + seconds, action.id, seconds, doomed, request))
        return {"action": action.to_json()}

    def _check_resize(self, droplet: Droplet, request: ActionRequest) -> None:
        """DO's rules: powered off; a disk never shrinks (with ``disk`` false only CPU and
        RAM change, which needs a size whose disk holds the current one); offered there."""
        if droplet.status != "off":
            raise unprocessable(RESIZE_WHILE_ON_MESSAGE)
        assert request.size is not None  # parse_action_request requires it for a resize
        if size_spec(request.size)[2] < droplet.disk:
            raise unprocessable(DISK_SHRINK_MESSAGE)
        refused = offerings.refusal(self.config, droplet.region, request.size)
        if refused is not None:
            raise refused

    def _pending_event_error(self) -> ApiError:
        self._pending_event += 1
        return unprocessable(PENDING_EVENT_MESSAGE)

    def list_droplet_actions(
        self,
        droplet_id: int,
        *,
        page: int,
        per_page: int,
        base_url: str,
        max_per_page: int = MAX_PER_PAGE,
        account: str | None = None,
    ) -> dict[str, Any]:
        """GET /v2/droplets/{id}/actions: one page, newest first, the create action included."""
        self.advance()
        self._visible_droplet(droplet_id, account)
        page, per_page = clamp_page(page, per_page, max_per_page)
        ids = self._actions_by_droplet.get(droplet_id, [])
        total = len(ids)
        # Newest first: walk the oldest-first list from its end.
        stop = total - (page - 1) * per_page
        start = max(0, stop - per_page)
        actions = [self._actions[i].to_json() for i in reversed(ids[start : max(0, stop)])]
        url = f"{base_url}/v2/droplets/{droplet_id}/actions"
        return listing("actions", actions, url=url, page=page, per_page=per_page, total=total)

    def delete_droplet(self, droplet_id: int, account: str | None = None) -> None:
        """DELETE /v2/droplets/{id}: gone for GET at once, from listings after the lag."""
        self.advance()
        droplet = self._visible_droplet(droplet_id, account)
        # Its pending action, if any, ends errored when due (the droplet is gone).
        self._busy.pop(droplet.id, None)
        self._forget(droplet)
        self._deletes += 1
        lag = self.config.delete_listing_lag_seconds
        if lag > 0:
            self._lagging[droplet.id] = droplet
            heapq.heappush(self._unlist_queue, (self.clock() + lag, droplet.id))
        else:
            self._unlist(droplet)

    def _advance_actions(self, now: float) -> None:
        """Finish every droplet action and delayed unlisting that is due by ``now``."""
        queue = self._action_queue
        while queue and queue[0][0] <= now:
            _, action_id, seconds, doomed, request = heapq.heappop(queue)
            self._finish_action(action_id, seconds, doomed, request)
        unlist = self._unlist_queue
        while unlist and unlist[0][0] <= now:
            _, droplet_id = heapq.heappop(unlist)
            droplet = self._lagging.pop(droplet_id, None)
            if droplet is not None:
                self._unlist(droplet)

    def _finish_action(
        self, action_id: int, seconds: float, doomed: bool, request: ActionRequest
    ) -> None:
        action = self._actions[action_id]
        action.completed_wall = action.started_wall + seconds
        if self._busy.get(action.droplet_id) == action_id:
            del self._busy[action.droplet_id]
        droplet = self._droplets.get(action.droplet_id)
        if doomed or droplet is None:
            # An errored action leaves the droplet as it was.
            action.status = "errored"
            self._action_errored[action.type] += 1
            return
        action.status = "completed"
        if request.image is not None:
            droplet.set_image(request.image)
        if request.size is not None:
            droplet.resize(request.size, disk=request.disk)
        self._set_status(droplet, END_STATUS[action.type])

    # -- test controls (no /v2 request, not counted) ------------------------------------

    def add_droplet(
        self,
        *,
        tags: list[str] | tuple[str, ...] = (),
        status: str = "active",
        name: str = "seeded-droplet",
        region: str = "nyc1",
        size: str = "s-1vcpu-1gb",
        image: str | int = "ubuntu-24-04-x64",
        account: str | None = None,
    ) -> dict[str, Any]:
        """Put a droplet in the fake as if created earlier; returns its JSON.

        ``status="new"`` boots it like a create (``boot_seconds``); any other
        status holds at once, with a completed create action. Visible at once
        (no consistency delay). Counted in ``droplets`` and ``droplets_seeded``.
        ``account`` defaults to the first token's; seeding ignores the droplet
        limit and the regions' offers (a test may fill an account past its limit).
        """
        if status not in CONTROL_STATUSES:
            raise unprocessable(f"status must be one of {sorted(CONTROL_STATUSES)}.")
        if account is not None and (not isinstance(account, str) or not account):
            raise unprocessable("account must be a non-empty string.")
        request = parse_create_request(
            {"name": name, "region": region, "size": size, "image": image, "tags": list(tags)}
        )
        owner = self._account(account or self.default_account())
        droplet, action = self._new_droplet(request, owner, boot=status == "new")
        self._seeded += 1
        if status != "new":
            action.status = "completed"
            action.completed_wall = action.started_wall
            self._set_status(droplet, status)
        return {"droplet": droplet.to_json()}

    def set_droplet_status(self, droplet_id: int, status: str) -> dict[str, Any]:
        """Force a droplet's status (e.g. ``errored``); a later boot or action overrides it."""
        if status not in CONTROL_STATUSES:
            raise unprocessable(f"status must be one of {sorted(CONTROL_STATUSES)}.")
        self.advance()
        droplet = self._droplets.get(droplet_id)
        if droplet is None:
            raise not_found()
        self._set_status(droplet, status)
        return {"droplet": droplet.to_json()}

    def droplet_details(self, droplet_id: int) -> dict[str, Any]:
        """What a test may read beyond DO's JSON: the account, keys and user_data given."""
        self.advance()
        droplet = self._droplets.get(droplet_id)
        if droplet is None:
            raise not_found()
        return {
            "droplet": droplet.to_json(),
            "account": droplet.account,
            "ssh_keys": list(droplet.ssh_keys),
            "user_data": droplet.user_data,
        }

    def _action_stats(self) -> dict[str, Any]:
        return {
            "actions": {kind: self._action_counts[kind] for kind in ACTION_TYPES},
            "actions_errored": {kind: self._action_errored[kind] for kind in ACTION_TYPES},
            "actions_in_progress": len(self._busy),
            "actions_pending_event": self._pending_event,
            "deletes": self._deletes,
            "droplets_seeded": self._seeded,
        }


__all__ = ["CONTROL_STATUSES", "END_STATUS", "ActionsMixin"]
