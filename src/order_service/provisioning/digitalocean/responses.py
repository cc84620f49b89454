"""Reading DigitalOcean's answers: error bodies, rate-limit waits, JSON documents, paging.

Pure functions of a response (no I/O, no client state), shared by the
transport (which sorts answers into outcomes) and the calls (which parse
successful ones).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from order_service.provisioning.digitalocean.errors import (
    DigitalOceanError,
    DigitalOceanUnavailableError,
)
from order_service.provisioning.digitalocean.models import _parse_id

T = TypeVar("T")

MAX_PER_PAGE = 200
#: Wait after a 429 that carries neither Retry-After nor ratelimit-reset.
_DEFAULT_RATE_LIMIT_WAIT_S = 60.0
#: Bounds for a 429 wait taken from headers: at least a moment (the reset may
#: already lie in the past by our clock), at most the hourly window.
_MIN_RATE_LIMIT_WAIT_S = 1.0
_MAX_RATE_LIMIT_WAIT_S = 3600.0
#: 422 messages containing one of these mean "busy, ask again", not "bad request".
#: "pending event" is DO's "Droplet already has a pending event." while another
#: action runs on the droplet.
_TRANSIENT_422_MARKERS = ("try again", "temporarily", "pending event")
_MAX_BODY_EXCERPT = 200


def describe_transport_error(exc: httpx.RequestError) -> str:
    """Short human text for a connection problem (``str()`` of httpx errors is often empty)."""
    text = str(exc).strip()
    if isinstance(exc, httpx.TimeoutException):
        return f"request timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        if not text or "refused" in text.lower():
            return "connection refused"
        return f"connection failed ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_details(response: httpx.Response) -> tuple[str | None, str]:
    """DigitalOcean's error ``id`` and ``message``, or an excerpt of a non-JSON body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        error_id = body.get("id")
        message = body.get("message")
        return (
            str(error_id) if error_id else None,
            str(message) if message else response.reason_phrase,
        )
    excerpt = response.text.strip()[:_MAX_BODY_EXCERPT]
    return None, excerpt or response.reason_phrase


def is_transient_422(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _TRANSIENT_422_MARKERS)


def is_droplet_limit_422(message: str) -> bool:
    """DO's "creating this/these droplet(s) will exceed your droplet limit": the account
    is full (SPEC section 13), which is the account's trouble, not the order's."""
    return "droplet limit" in message.lower()


def is_key_in_use_422(message: str) -> bool:
    """DO's "SSH Key is already in use on your account": the key is present."""
    return "already in use" in message.lower()


def _parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Retry-After as seconds (DigitalOcean sends seconds; HTTP also allows a date)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now_epoch
    return seconds if math.isfinite(seconds) else None


def rate_limit_wait_s(headers: httpx.Headers, now_epoch: float) -> float:
    """How long the process must wait after a 429.

    ``Retry-After`` (the per-minute burst limit) wins; otherwise wait until
    ``ratelimit-reset`` (the hourly limit); otherwise a conservative default.
    """
    seconds = _parse_retry_after(headers.get("retry-after"), now_epoch)
    if seconds is None:
        try:
            seconds = float(headers.get("ratelimit-reset", "")) - now_epoch
        except ValueError:
            seconds = _DEFAULT_RATE_LIMIT_WAIT_S
    if not math.isfinite(seconds):
        seconds = _DEFAULT_RATE_LIMIT_WAIT_S
    return min(max(seconds, _MIN_RATE_LIMIT_WAIT_S), _MAX_RATE_LIMIT_WAIT_S)


def json_object(response: httpx.Response, operation: str) -> Mapping[str, Any]:
    """The JSON body of a 2xx answer; anything unparseable is an outage, not a crash."""
    try:
        body = response.json()
    except ValueError as exc:
        raise DigitalOceanUnavailableError(
            f"DigitalOcean answered {operation} with malformed JSON (HTTP {response.status_code})",
            status_code=response.status_code,
        ) from exc
    if not isinstance(body, Mapping):
        raise DigitalOceanUnavailableError(
            f"DigitalOcean answered {operation} with an unexpected JSON document "
            f"(HTTP {response.status_code})",
            status_code=response.status_code,
        )
    return body


def malformed(operation: str, response: httpx.Response, exc: Exception) -> DigitalOceanError:
    return DigitalOceanUnavailableError(
        f"DigitalOcean answered {operation} with an unexpected document "
        f"(HTTP {response.status_code}): {type(exc).__name__}: {exc}",
        status_code=response.status_code,
    )


def parse_body(
    response: httpx.Response, operation: str, parse: Callable[[Mapping[str, Any]], T]
) -> T:
    """`parse` applied to the JSON body; a body of the wrong shape is an outage, not a crash."""
    body = json_object(response, operation)
    try:
        return parse(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed(operation, response, exc) from exc


def create_action_id(body: Mapping[str, Any]) -> int | None:
    """Id of the ``create`` action from ``links.actions`` (first action as a fallback)."""
    links = body.get("links")
    actions = links.get("actions") if isinstance(links, Mapping) else None
    if not isinstance(actions, list):
        return None
    candidates = [a for a in actions if isinstance(a, Mapping) and a.get("id") is not None]
    for action in candidates:
        if action.get("rel") == "create":
            return _parse_id(action["id"])
    return _parse_id(candidates[0]["id"]) if candidates else None


def next_page(body: Mapping[str, Any], page: int, per_page: int, seen: int) -> int | None:
    """The page to fetch after ``page``, or ``None`` when the listing is complete.

    Uses ``links.pages.next`` when present (its ``page`` parameter, since the
    link points at api.digitalocean.com even when we talk to a proxy or mock);
    otherwise ``meta.total``. An empty page always ends the listing so that an
    inconsistent answer cannot loop forever.
    """
    if seen == 0:
        return None
    links = body.get("links")
    pages = links.get("pages") if isinstance(links, Mapping) else None
    next_url = pages.get("next") if isinstance(pages, Mapping) else None
    if isinstance(next_url, str) and next_url:
        values = parse_qs(urlsplit(next_url).query).get("page")
        if values and values[0].isdigit() and int(values[0]) > page:
            return int(values[0])
        return page + 1
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, Mapping) else None
    if isinstance(total, int) and not isinstance(total, bool) and page * per_page < total:
        return page + 1
    return None
