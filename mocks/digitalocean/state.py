"""In-memory model of the fake DigitalOcean API v2.

Pure Python (no HTTP): droplets, create actions, the tag index, the per-token
rate windows and the failure-injection knobs. ``app.py`` only translates HTTP
to calls on :class:`FakeState` and :class:`ApiError` back to HTTP.

Time is read through two injectable callables: ``clock`` (monotonic, drives
boot, visibility and the rolling rate windows) and ``wall_clock`` (epoch
seconds, only used for ``created_at``/``started_at`` and ``ratelimit-reset``).
Tests swap ``clock`` for a manual one instead of sleeping.

Every hot path is O(1) amortised or O(page): droplets are indexed by id, the
visible ids are kept sorted per tag (ids are allocated in increasing order, so
an insert is almost always an append), and boot/visibility transitions are
applied lazily from two heaps the next time anyone looks at the state.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Literal, get_args
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, field_validator

RouteKind = Literal["create", "get", "list", "action"]
ROUTE_KINDS: tuple[RouteKind, ...] = get_args(RouteKind)

# Droplet outcome decided at creation time from the image slug and the config
# of that moment, so later config changes never rewrite a droplet's history.
Fate = Literal["active", "errored", "never_active", "errored_status"]

MINUTE_S = 60.0
HOUR_S = 3600.0
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200  # DO silently caps per_page at 200

# Large, DO-looking id ranges; they keep growing across /_fake/reset so an id
# a client cached before a reset can never alias a new droplet or action.
FIRST_DROPLET_ID = 300_000_001
FIRST_ACTION_ID = 2_000_000_001

NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
TRANSIENT_422_MESSAGE = "Droplet creation is temporarily unavailable, please try again later."
PERMANENT_422_MESSAGE = "You specified an invalid size for Droplet creation."

# DO's documented rules: hostnames for droplet names, a restricted alphabet for tags.
_NAME_RE = re.compile(r"^[A-Za-z0-9.\-]{1,255}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9:_\-]{1,255}$")


class FakeConfig(BaseModel):
    """Behaviour knobs of one fake instance; settable at construction and at run time."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[str] = Field(default_factory=lambda: ["fake-do-token"])
    boot_seconds: NonNegativeFloat = 2.0
    per_minute: NonNegativeInt = 250
    per_hour: NonNegativeInt = 5000
    consistency_delay_s: NonNegativeFloat = 0.0
    errored_images: list[str] = Field(default_factory=list)
    never_active_images: list[str] = Field(default_factory=list)
    errored_status_images: list[str] = Field(default_factory=list)
    fail_next: dict[RouteKind, NonNegativeInt] = Field(
        default_factory=lambda: dict.fromkeys(ROUTE_KINDS, 0)
    )
    fail_status: int = Field(default=500, ge=500, le=599)
    create_422_transient: NonNegativeInt = 0
    create_422_permanent: bool = False
    latency_ms: NonNegativeFloat = 0.0

    @field_validator("fail_next")
    @classmethod
    def _all_route_kinds(cls, value: dict[RouteKind, int]) -> dict[RouteKind, int]:
        # Always carry every kind so GET /_fake/config shows what is pending.
        return {kind: value.get(kind, 0) for kind in ROUTE_KINDS}


class ApiError(Exception):
    """An error answer in DO's ``{"id", "message"}`` shape."""

    def __init__(
        self,
        status: int,
        error_id: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def body(self) -> dict[str, str]:
        return {"id": self.error_id, "message": self.message}


def not_found() -> ApiError:
    return ApiError(404, "not_found", NOT_FOUND_MESSAGE)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


# --------------------------------------------------------------------------
# Static catalogue: just enough to render DO-shaped region/size/image objects.
# Unknown slugs are accepted (the catalog mock may use others) and rendered
# with plausible defaults instead of being rejected.
# --------------------------------------------------------------------------

_REGION_NAMES = {
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "sgp1": "Singapore 1",
    "tor1": "Toronto 1",
    "blr1": "Bangalore 1",
    "syd1": "Sydney 1",
}

# slug -> (memory MiB, vcpus, disk GB)
_SIZES = {
    "s-1vcpu-512mb-10gb": (512, 1, 10),
    "s-1vcpu-1gb": (1024, 1, 25),
    "s-1vcpu-2gb": (2048, 1, 50),
    "s-2vcpu-2gb": (2048, 2, 60),
    "s-2vcpu-4gb": (4096, 2, 80),
    "s-4vcpu-8gb": (8192, 4, 160),
    "s-8vcpu-16gb": (16384, 8, 320),
}
_SIZE_RE = re.compile(r"(\d+)vcpu-(\d+)gb")

_DISTRIBUTIONS = {
    "ubuntu": "Ubuntu",
    "debian": "Debian",
    "centos": "CentOS",
    "fedora": "Fedora",
    "rockylinux": "Rocky Linux",
    "almalinux": "AlmaLinux",
}


def size_spec(slug: str) -> tuple[int, int, int]:
    """(memory MiB, vcpus, disk GB) for a size slug, guessed from the slug if unknown."""
    if slug in _SIZES:
        return _SIZES[slug]
    match = _SIZE_RE.search(slug)
    if match is None:
        return (1024, 1, 25)
    vcpus, gigabytes = int(match.group(1)), int(match.group(2))
    return (gigabytes * 1024, vcpus, gigabytes * 25)


def region_json(slug: str) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": _REGION_NAMES.get(slug, slug.upper()),
        "available": True,
        "features": ["backups", "ipv6", "metadata", "install_agent"],
    }


def size_json(slug: str) -> dict[str, Any]:
    memory, vcpus, disk = size_spec(slug)
    return {"slug": slug, "memory": memory, "vcpus": vcpus, "disk": disk, "available": True}


def image_json(image: str | int) -> dict[str, Any]:
    if isinstance(image, int):
        return {"id": image, "slug": None, "name": f"Image {image}", "distribution": "Unknown"}
    head, _, rest = image.partition("-")
    parts = rest.split("-") if rest else []
    arch = parts.pop() if parts and parts[-1].startswith("x") else ""
    name = " ".join(p for p in (".".join(parts), arch) if p) or image
    return {
        # A stable id per slug, so the same image always reports the same id.
        "id": 100_000_000 + zlib.crc32(image.encode()) % 100_000_000,
        "slug": image,
        "name": name,
        "distribution": _DISTRIBUTIONS.get(head, head.capitalize()),
        "public": True,
        "type": "base",
    }


def vpc_uuid(region: str) -> str:
    # One default VPC per region, stable across runs like DO's real default VPCs.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-do-vpc/{region}"))


def iso8601(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# --------------------------------------------------------------------------
# Address allocation: the n-th droplet of an instance gets the n-th address,
# computed arithmetically (O(1)), never reused. Public addresses come from the
# documentation ranges first, then the benchmarking range, then CGNAT space, so
# even long benchmarks never run out or collide.
# --------------------------------------------------------------------------

_HOSTS_PER_BLOCK = 253  # .2-.254 of each /24: .0 network, .1 gateway, .255 broadcast
_PUBLIC_BLOCKS: tuple[tuple[int, int], ...] = (
    (int(IPv4Address("203.0.113.0")), 1),  # TEST-NET-3
    (int(IPv4Address("198.51.100.0")), 1),  # TEST-NET-2
    (int(IPv4Address("192.0.2.0")), 1),  # TEST-NET-1
    (int(IPv4Address("198.18.0.0")), 512),  # RFC 2544 benchmarking /15
    (int(IPv4Address("100.64.0.0")), 16384),  # RFC 6598 shared /10
)
_PRIVATE_BASE = int(IPv4Address("10.0.0.0"))


def _host_in_blocks(base: int, index: int) -> tuple[str, str]:
    block, host = divmod(index, _HOSTS_PER_BLOCK)
    network = base + block * 256
    return str(IPv4Address(network + host + 2)), str(IPv4Address(network + 1))


def public_ipv4(index: int) -> tuple[str, str]:
    """(address, gateway) of the index-th public address."""
    for base, blocks in _PUBLIC_BLOCKS:
        capacity = blocks * _HOSTS_PER_BLOCK
        if index < capacity:
            return _host_in_blocks(base, index)
        index -= capacity
    raise RuntimeError("the fake DigitalOcean API ran out of public test addresses")


def private_ipv4(index: int) -> tuple[str, str]:
    """(address, gateway) of the index-th private 10.x address."""
    return _host_in_blocks(_PRIVATE_BASE, index)


# --------------------------------------------------------------------------
# Model objects
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Droplet:
    id: int
    name: str
    region: str
    size: str
    image: str | int
    tags: tuple[str, ...]
    monitoring: bool
    created_wall: float
    seq: int  # allocation index for the addresses
    action_id: int
    status: str = "new"
    # Rendered JSON, rebuilt only when the status changes: listings of up to 200
    # droplets per page stay cheap. Callers must treat it as read-only.
    json_cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def set_status(self, status: str) -> None:
        self.status = status
        self.json_cache = None

    def networks(self) -> dict[str, list[dict[str, str]]]:
        # DO only reports addresses once the droplet is up.
        if self.status != "active":
            return {"v4": [], "v6": []}
        public, public_gw = public_ipv4(self.seq)
        private, private_gw = private_ipv4(self.seq)
        mask = "255.255.255.0"
        return {
            "v4": [
                {"ip_address": public, "netmask": mask, "gateway": public_gw, "type": "public"},
                {"ip_address": private, "netmask": mask, "gateway": private_gw, "type": "private"},
            ],
            "v6": [],
        }

    def to_json(self) -> dict[str, Any]:
        if self.json_cache is None:
            self.json_cache = self._render()
        return self.json_cache

    def _render(self) -> dict[str, Any]:
        memory, vcpus, disk = size_spec(self.size)
        return {
            "id": self.id,
            "name": self.name,
            "memory": memory,
            "vcpus": vcpus,
            "disk": disk,
            "locked": False,
            "status": self.status,
            "kernel": None,
            "created_at": iso8601(self.created_wall),
            "features": ["monitoring"] if self.monitoring else [],
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": image_json(self.image),
            "volume_ids": [],
            "size": size_json(self.size),
            "size_slug": self.size,
            "networks": self.networks(),
            "region": region_json(self.region),
            "tags": list(self.tags),
            "vpc_uuid": vpc_uuid(self.region),
        }


@dataclass(slots=True)
class Action:
    id: int
    droplet_id: int
    region: str
    started_wall: float
    status: str = "in-progress"
    completed_wall: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": "create",
            "started_at": iso8601(self.started_wall),
            "completed_at": None if self.completed_wall is None else iso8601(self.completed_wall),
            "resource_id": self.droplet_id,
            "resource_type": "droplet",
            "region": region_json(self.region),
            "region_slug": self.region,
        }


@dataclass(slots=True)
class RateWindow:
    """Arrival times (monotonic) of the counted requests of one token."""

    minute: deque[float] = field(default_factory=deque)
    hour: deque[float] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        # Half-open window (now - span, now]: a request expires exactly span later.
        minute, hour = self.minute, self.hour
        while minute and minute[0] <= now - MINUTE_S:
            minute.popleft()
        while hour and hour[0] <= now - HOUR_S:
            hour.popleft()

    def record(self, now: float) -> None:
        self.minute.append(now)
        self.hour.append(now)


@dataclass(slots=True)
class CreateRequest:
    name: str
    region: str
    size: str
    image: str | int
    tags: tuple[str, ...]
    monitoring: bool


def _required_string(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise unprocessable(f"{key} is required and must be a non-empty string.")
    return value


def parse_create_request(payload: Any) -> CreateRequest:
    """Validate a POST /v2/droplets body the way DO does for the fields we model."""
    if not isinstance(payload, dict):
        raise unprocessable("The request body must be a JSON object.")
    name = _required_string(payload, "name")
    if not _NAME_RE.match(name):
        raise unprocessable("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
    region = _required_string(payload, "region")
    size = _required_string(payload, "size")
    image = payload.get("image")
    # DO also accepts a numeric image id; bool is an int subclass, so exclude it.
    if isinstance(image, bool) or not isinstance(image, str | int) or image == "":
        raise unprocessable("image is required and must be a non-empty string.")
    return CreateRequest(
        name=name,
        region=region,
        size=size,
        image=image,
        tags=_parse_tags(payload.get("tags")),
        monitoring=_parse_monitoring(payload.get("monitoring")),
    )


def _parse_tags(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        raise unprocessable("tags must be a list of strings.")
    for tag in raw:
        if not _TAG_RE.match(tag):
            raise unprocessable(
                "Tag names may contain letters, numbers, colons, dashes, and underscores "
                "and are limited to 255 characters."
            )
    return tuple(dict.fromkeys(raw))  # dedupe, keep order


def _parse_monitoring(raw: Any) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise unprocessable("monitoring must be a boolean.")
    return raw


def parse_bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# --------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------


class FakeState:
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
        self._next_seq = 0
        self.reset()

    # -- lifecycle of the instance ------------------------------------------

    def reset(self) -> None:
        """Forget droplets, actions, windows and counters; restore the initial config."""
        self.config = self._initial_config.model_copy(deep=True)
        # Every droplet that exists, visible yet or not.
        self._droplets: dict[int, Droplet] = {}
        self._visible: set[int] = set()
        self._actions: dict[int, Action] = {}
        # Sorted ids of visible droplets: all, and per tag (for O(page) listing).
        self._visible_ids: list[int] = []
        self._visible_by_tag: dict[str, list[int]] = {}
        # (due monotonic time, droplet id [, fate]) min-heaps of pending transitions.
        self._boot_queue: list[tuple[float, int, Fate]] = []
        self._visibility_queue: list[tuple[float, int]] = []
        self._boot_seconds: dict[int, float] = {}
        self._windows: dict[str, RateWindow] = {}
        self._tag_counts: Counter[str] = Counter()
        self._status_counts: Counter[str] = Counter()
        self._requests = 0
        self._by_route: Counter[str] = Counter({kind: 0 for kind in ROUTE_KINDS})
        self._rate_limited = 0
        self._unauthorized = 0
        self._server_errors = 0
        self._unprocessable = 0
        self._created = 0
        self._removed = 0

    def update_config(self, changes: Mapping[str, Any]) -> FakeConfig:
        """Apply a partial config; validated as a whole. ``fail_next`` merges per kind."""
        merged = self.config.model_dump()
        for key, value in changes.items():
            if key == "fail_next" and isinstance(value, Mapping):
                merged["fail_next"] = {**merged["fail_next"], **value}
            else:
                merged[key] = value
        self.config = FakeConfig.model_validate(merged)
        return self.config

    # -- admission: auth, rate limit, injected 5xx --------------------------

    def admit(self, authorization: str | None, kind: RouteKind | None) -> dict[str, str]:
        """Count one /v2 request; return the rate headers or raise the error to answer.

        ``kind`` is None for /v2 paths the fake does not serve: they are still
        authenticated and counted, like on DO.
        """
        self._requests += 1
        if kind is not None:
            self._by_route[kind] += 1
        token = parse_bearer(authorization)
        if token is None or token not in self.config.tokens:
            self._unauthorized += 1
            raise ApiError(401, "unauthorized", "Unable to authenticate you")
        headers = self._count_against_limits(token)
        if kind is not None and self.config.fail_next.get(kind, 0) > 0:
            # Injected failures happen after counting: DO bills failed calls too.
            self.config.fail_next[kind] -= 1
            self._server_errors += 1
            raise ApiError(
                self.config.fail_status,
                "server_error",
                "Unexpected server-side error (injected by the fake).",
                headers,
            )
        return headers

    def _count_against_limits(self, token: str) -> dict[str, str]:
        now = self.clock()
        window = self._windows.get(token)
        if window is None:
            window = self._windows[token] = RateWindow()
        window.prune(now)
        # The hourly limit wins: waiting for a minute slot would not help then,
        # so no Retry-After; clients fall back to ratelimit-reset.
        if len(window.hour) >= self.config.per_hour:
            self._rate_limited += 1
            raise self._too_many(self._rate_headers(window, now))
        if len(window.minute) >= self.config.per_minute:
            self._rate_limited += 1
            headers = self._rate_headers(window, now)
            headers["retry-after"] = str(self._retry_after(window, now))
            raise self._too_many(headers)
        window.record(now)  # only accepted requests occupy the windows
        return self._rate_headers(window, now)

    @staticmethod
    def _too_many(headers: dict[str, str]) -> ApiError:
        return ApiError(429, "too_many_requests", "API Rate limit exceeded.", headers)

    @staticmethod
    def _retry_after(window: RateWindow, now: float) -> int:
        if not window.minute:  # only when per_minute is 0: nothing will ever free up
            return math.ceil(MINUTE_S)
        return max(1, math.ceil(window.minute[0] + MINUTE_S - now))

    def _rate_headers(self, window: RateWindow, now: float) -> dict[str, str]:
        per_hour = self.config.per_hour
        wall = self.wall_clock()
        reset = wall + (window.hour[0] + HOUR_S - now) if window.hour else wall
        return {
            "ratelimit-limit": str(per_hour),
            "ratelimit-remaining": str(max(0, per_hour - len(window.hour))),
            "ratelimit-reset": str(math.ceil(reset)),
        }

    # -- droplets -------------------------------------------------------------

    def create_droplet(self, payload: Any, base_url: str) -> dict[str, Any]:
        """POST /v2/droplets: validate, apply 422 injection, create. Returns the 202 body."""
        try:
            request = parse_create_request(payload)
            self._maybe_reject_create()
        except ApiError:
            self._unprocessable += 1
            raise
        droplet, action = self._new_droplet(request)
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

    def _new_droplet(self, request: CreateRequest) -> tuple[Droplet, Action]:
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
        )
        action = Action(
            id=action_id, droplet_id=droplet_id, region=request.region, started_wall=wall
        )
        self._droplets[droplet_id] = droplet
        self._actions[action_id] = action
        self._created += 1
        self._status_counts["new"] += 1
        self._tag_counts.update(droplet.tags)
        self._schedule(droplet, now)
        return droplet, action

    def _allocate_ids(self) -> tuple[int, int, int]:
        ids = (self._next_droplet_id, self._next_action_id, self._next_seq)
        self._next_droplet_id += 1
        self._next_action_id += 1
        self._next_seq += 1
        return ids

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
        """Apply every boot and visibility transition that is due by now."""
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

    def _finish_boot(self, droplet_id: int, fate: Fate) -> None:
        droplet = self._droplets.get(droplet_id)
        if droplet is None:
            return
        action = self._actions[droplet.action_id]
        action.completed_wall = droplet.created_wall + self._boot_seconds.pop(droplet_id, 0.0)
        if fate == "errored":
            action.status = "errored"
            self._remove(droplet)
            return
        # "errored_status" still completes the action: it models a droplet
        # that DO reports as created but that came up broken.
        action.status = "completed"
        self._set_status(droplet, "active" if fate == "active" else "errored")

    def _set_status(self, droplet: Droplet, status: str) -> None:
        self._status_counts[droplet.status] -= 1
        self._status_counts[status] += 1
        droplet.set_status(status)

    def _make_visible(self, droplet: Droplet) -> None:
        self._visible.add(droplet.id)
        bisect.insort(self._visible_ids, droplet.id)
        for tag in droplet.tags:
            bisect.insort(self._visible_by_tag.setdefault(tag, []), droplet.id)

    def _remove(self, droplet: Droplet) -> None:
        del self._droplets[droplet.id]
        self._removed += 1
        self._status_counts[droplet.status] -= 1
        self._tag_counts.subtract(droplet.tags)
        if droplet.id not in self._visible:
            return
        self._visible.discard(droplet.id)
        _discard_sorted(self._visible_ids, droplet.id)
        for tag in droplet.tags:
            ids = self._visible_by_tag[tag]
            _discard_sorted(ids, droplet.id)
            if not ids:
                del self._visible_by_tag[tag]

    def get_droplet(self, droplet_id: int) -> dict[str, Any]:
        self.advance()
        droplet = self._droplets.get(droplet_id)
        if droplet is None or droplet_id not in self._visible:
            raise not_found()
        return {"droplet": droplet.to_json()}

    def list_droplets(
        self,
        *,
        tag_name: str | None,
        page: int,
        per_page: int,
        base_url: str,
    ) -> dict[str, Any]:
        """GET /v2/droplets[?tag_name=]: one page, ids ascending, DO-style links."""
        self.advance()
        page = max(1, page)
        per_page = min(max(1, per_page), MAX_PER_PAGE)
        ids = self._visible_by_tag.get(tag_name, []) if tag_name else self._visible_ids
        start = (page - 1) * per_page
        droplets = [self._droplets[i].to_json() for i in ids[start : start + per_page]]
        pages = _page_links(
            f"{base_url}/v2/droplets", page, per_page, len(ids), {"tag_name": tag_name}
        )
        return {"droplets": droplets, "links": {"pages": pages}, "meta": {"total": len(ids)}}

    def get_action(self, action_id: int) -> dict[str, Any]:
        self.advance()
        action = self._actions.get(action_id)
        if action is None:
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
        }


def _discard_sorted(ids: list[int], value: int) -> None:
    index = bisect.bisect_left(ids, value)
    if index < len(ids) and ids[index] == value:
        del ids[index]


def _page_links(
    url: str, page: int, per_page: int, total: int, extra: Mapping[str, str | None]
) -> dict[str, str]:
    """DO's ``links.pages``: first/prev when not on page 1, next/last when more follow."""
    last = max(1, math.ceil(total / per_page))
    query_tail = {key: value for key, value in extra.items() if value}

    def link(number: int) -> str:
        return f"{url}?{urlencode({'page': number, 'per_page': per_page, **query_tail})}"

    pages: dict[str, str] = {}
    if page > 1:
        pages["first"] = link(1)
        pages["prev"] = link(min(page - 1, last))
    if page < last:
        pages["next"] = link(page + 1)
        pages["last"] = link(last)
    return pages
