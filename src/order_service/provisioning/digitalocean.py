"""Async client for the parts of the DigitalOcean API v2 the provisioner uses.

The client's job is to turn DigitalOcean's many ways of failing into three
outcomes the provisioner can act on without knowing HTTP:

* :class:`DigitalOceanPermanentError` - retrying cannot help (bad token, bad
  size/image/region, droplet limit): fail the task at once.
* :class:`DigitalOceanUnavailableError` - DigitalOcean is down, slow or
  unreachable even after our retries: try again later.
* a result (``None`` for "not found", since DigitalOcean is eventually consistent
  and only the caller knows whether a 404 is expected).

Every request - each retry and each page included - goes through the shared
:class:`~order_service.provisioning.rate_budget.RateBudget`, so the whole
process stays below the per-token rate limits. The API token is only ever held
by the underlying ``httpx.AsyncClient``'s headers; it never reaches a message,
a log line or a ``repr``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import stamina

from order_service.provisioning.rate_budget import RateBudget

__all__ = [
    "CreatedDroplet",
    "DigitalOceanClient",
    "DigitalOceanError",
    "DigitalOceanNotConfiguredError",
    "DigitalOceanPermanentError",
    "DigitalOceanUnavailableError",
    "Droplet",
]

logger = logging.getLogger("order_service.digitalocean")

_MAX_PER_PAGE = 200
#: Wait after a 429 that carries neither Retry-After nor ratelimit-reset.
_DEFAULT_RATE_LIMIT_WAIT_S = 60.0
#: Bounds for a 429 wait taken from headers: at least a moment (the reset may
#: already lie in the past by our clock), at most the hourly window.
_MIN_RATE_LIMIT_WAIT_S = 1.0
_MAX_RATE_LIMIT_WAIT_S = 3600.0
#: 422 messages containing one of these mean "busy, ask again", not "bad request".
_TRANSIENT_422_MARKERS = ("try again", "temporarily")
_MAX_BODY_EXCERPT = 200
#: Shorter "tokens" (test values) are not scrubbed: replacing them would mangle
#: ordinary words. Real DigitalOcean tokens are 64+ characters.
_MIN_SCRUB_LEN = 8


# --------------------------------------------------------------------------- data


def _slug(value: Any) -> str | None:
    """DigitalOcean nests slugs (``{"slug": ...}``) but some fields are plain strings."""
    if isinstance(value, Mapping):
        value = value.get("slug")
    return value if isinstance(value, str) and value else None


def _image_ref(value: Any) -> str | None:
    """Image slug, or the numeric id for snapshots/custom images that have no slug."""
    if isinstance(value, Mapping) and value.get("slug") is None and value.get("id") is not None:
        return str(value["id"])
    return _slug(value)


def _ipv4(raw: Mapping[str, Any], kind: str) -> str | None:
    """First IPv4 address of the given type ("public"/"private"), if any."""
    networks = raw.get("networks")
    v4 = networks.get("v4") if isinstance(networks, Mapping) else None
    if not isinstance(v4, list):
        return None
    for entry in v4:
        if isinstance(entry, Mapping) and entry.get("type") == kind and entry.get("ip_address"):
            return str(entry["ip_address"])
    return None


def _parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 to an aware UTC datetime; unparseable means unknown, not an error."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_id(value: Any) -> int:
    """Droplet/action ids are integers; anything else is a malformed answer."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"invalid id: {value!r}")
    return int(value)


@dataclass(frozen=True, slots=True)
class Droplet:
    """The fields of a droplet the service cares about, flattened."""

    id: int
    name: str
    status: str
    region: str | None
    size: str | None
    image: str | None
    ipv4_public: str | None
    ipv4_private: str | None
    tags: tuple[str, ...]
    created_at: datetime | None  # tz-aware UTC

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Droplet:
        """Build from a ``droplet`` object of the API.

        Tolerant of missing optional fields (a droplet that is still ``new`` has
        no networks yet); only a missing or non-numeric ``id`` (or a droplet
        that is not an object) is an error, since without it the droplet is
        useless.
        """
        if not isinstance(raw, Mapping):
            raise TypeError(f"droplet is a {type(raw).__name__}, not an object")
        raw_tags = raw.get("tags")
        tags = tuple(str(t) for t in raw_tags) if isinstance(raw_tags, list) else ()
        return cls(
            id=_parse_id(raw["id"]),
            name=str(raw.get("name") or ""),
            status=str(raw.get("status") or "unknown"),
            region=_slug(raw.get("region")),
            size=_slug(raw.get("size_slug")) or _slug(raw.get("size")),
            image=_image_ref(raw.get("image")),
            ipv4_public=_ipv4(raw, "public"),
            ipv4_private=_ipv4(raw, "private"),
            tags=tags,
            created_at=_parse_timestamp(raw.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class CreatedDroplet:
    """A droplet DigitalOcean accepted (202): not built yet - poll the create action."""

    droplet: Droplet
    create_action_id: int | None


# ------------------------------------------------------------------------- errors


class DigitalOceanError(Exception):
    """Base of every error the client raises.

    ``message`` is meant for humans (task error column, logs) and never
    contains the API token. ``status_code`` is DigitalOcean's HTTP status, or
    ``None`` when no answer was received.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class DigitalOceanPermanentError(DigitalOceanError):
    """Retrying cannot help (401/403/invalid request): fail the task at once."""


class DigitalOceanNotConfiguredError(DigitalOceanPermanentError):
    """No API token configured: raised before any request is sent."""


class DigitalOceanUnavailableError(DigitalOceanError):
    """DigitalOcean unreachable, timing out, failing (5xx) or rate limiting, past our retries.

    ``ambiguous`` is true when a create may have reached DigitalOcean although
    no answer said so: the caller must look for the droplet before creating.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.ambiguous = ambiguous


class _RetryableFailure(Exception):
    """One failed attempt that a later attempt may fix; internal to the retry loop."""

    def __init__(self, summary: str, *, status_code: int | None, detail: str = "") -> None:
        super().__init__(f"{summary}: {detail}" if detail else summary)
        self.summary = summary
        self.detail = detail
        self.status_code = status_code


# ------------------------------------------------------------------------ helpers


def _describe_transport_error(exc: httpx.RequestError) -> str:
    """Short human text for a connection problem (``str()`` of httpx errors is often empty)."""
    text = str(exc).strip()
    if isinstance(exc, httpx.TimeoutException):
        return f"request timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        if not text or "refused" in text.lower():
            return "connection refused"
        return f"connection failed ({text})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_details(response: httpx.Response) -> tuple[str | None, str]:
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


def _is_transient_422(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _TRANSIENT_422_MARKERS)


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


def _rate_limit_wait_s(headers: httpx.Headers, now_epoch: float) -> float:
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


def _json_object(response: httpx.Response, operation: str) -> Mapping[str, Any]:
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


def _malformed(operation: str, response: httpx.Response, exc: Exception) -> DigitalOceanError:
    return DigitalOceanUnavailableError(
        f"DigitalOcean answered {operation} with an unexpected document "
        f"(HTTP {response.status_code}): {type(exc).__name__}: {exc}",
        status_code=response.status_code,
    )


def _create_action_id(body: Mapping[str, Any]) -> int | None:
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


def _next_page(body: Mapping[str, Any], page: int, per_page: int, seen: int) -> int | None:
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


def _api_root(base_url: str) -> str:
    """Accept both ``https://api.digitalocean.com`` and ``.../v2`` as base URL."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v2")


@dataclass(slots=True)
class _CallState:
    """Counters of one logical operation across its attempts."""

    operation: str
    retry_ambiguous: bool = True
    attempts: int = 0
    rate_limit_waits: int = 0


# Transport errors after which the request certainly never reached DigitalOcean.
_CERTAINLY_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


# ------------------------------------------------------------------------- client


class DigitalOceanClient:
    """Rate-budgeted, retrying client for droplets and actions.

    One instance holds one ``httpx.AsyncClient`` (connection pool); create it at
    start-up, share it, and :meth:`aclose` it at shutdown.
    """

    _MAX_CONNECTIONS = 50

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        budget: RateBudget | None = None,
        timeout_s: float = 15.0,
        retry_attempts: int = 5,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 8.0,
        max_rate_limit_waits: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
        on_response: Callable[[str, int], None] | None = None,
    ) -> None:
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        if max_rate_limit_waits < 0:
            raise ValueError("max_rate_limit_waits must not be negative")
        self._configured = bool(token)
        # Kept only to scrub it from any text that might echo it; never printed.
        self._secret = token if token and len(token) >= _MIN_SCRUB_LEN else None
        self._budget = budget if budget is not None else RateBudget()
        self._retry_attempts = retry_attempts
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._max_rate_limit_waits = max_rate_limit_waits
        self._on_response = on_response
        headers = {"Accept": "application/json", "User-Agent": "order-service"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._base_url = _api_root(base_url)
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=self._MAX_CONNECTIONS,
                max_keepalive_connections=self._MAX_CONNECTIONS,
            ),
            transport=transport,
        )

    def __repr__(self) -> str:
        token_state = "set" if self._configured else "missing"
        return f"DigitalOceanClient(base_url={self._base_url!r}, token=<{token_state}>)"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ operations

    async def create_droplet(
        self, *, name: str, region: str, size: str, image: str, tags: Sequence[str]
    ) -> CreatedDroplet:
        """Ask DigitalOcean to build a droplet; 202 means accepted, not built.

        A create whose answer was lost (a timeout, a dropped connection, a 5xx)
        may still have reached DigitalOcean, and blindly sending it again could
        make a second droplet. So only failures that certainly created nothing
        are retried here (connection refused, 429, a transient 422); an
        ambiguous one raises DigitalOceanUnavailableError with `ambiguous=True`
        at once, and the caller looks the droplet up by its order tag before
        it ever creates again.
        """
        operation = "create_droplet"
        payload = {
            "name": name,
            "region": region,
            "size": size,
            "image": image,
            "tags": list(tags),
            "monitoring": True,
        }
        response = await self._request(
            operation, "POST", "/v2/droplets", json=payload, retry_ambiguous=False
        )
        assert response is not None  # 404 is not tolerated for POST
        body = _json_object(response, operation)
        try:
            return CreatedDroplet(
                droplet=Droplet.from_api(body["droplet"]),
                create_action_id=_create_action_id(body),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed(operation, response, exc) from exc

    async def get_droplet(self, droplet_id: int) -> Droplet | None:
        """The droplet, or ``None`` on 404 (unknown, deleted, or not visible yet)."""
        operation = "get_droplet"
        response = await self._request(
            operation, "GET", f"/v2/droplets/{int(droplet_id)}", allow_404=True
        )
        if response is None:
            return None
        body = _json_object(response, operation)
        try:
            return Droplet.from_api(body["droplet"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _malformed(operation, response, exc) from exc

    async def get_action_status(self, action_id: int) -> str | None:
        """``in-progress``/``completed``/``errored``, or ``None`` on 404."""
        operation = "get_action"
        response = await self._request(
            operation, "GET", f"/v2/actions/{int(action_id)}", allow_404=True
        )
        if response is None:
            return None
        body = _json_object(response, operation)
        try:
            status = body["action"]["status"]
        except (KeyError, TypeError) as exc:
            raise _malformed(operation, response, exc) from exc
        if not isinstance(status, str):
            raise _malformed(operation, response, TypeError(f"status is {status!r}"))
        return status

    async def list_droplets_by_tag(self, tag: str, *, per_page: int = 200) -> list[Droplet]:
        """Every droplet carrying ``tag``, across all pages (deduplicated by id).

        Pages can shift while droplets are created or deleted between requests,
        so the same droplet may show up twice; the first occurrence wins.
        """
        operation = "list_droplets"
        per_page = max(1, min(per_page, _MAX_PER_PAGE))
        found: dict[int, Droplet] = {}
        page: int | None = 1
        while page is not None:
            params = {"tag_name": tag, "page": page, "per_page": per_page}
            response = await self._request(operation, "GET", "/v2/droplets", params=params)
            assert response is not None  # 404 is not tolerated for listings
            body = _json_object(response, operation)
            try:
                raw_droplets = body["droplets"]
                droplets = [Droplet.from_api(raw) for raw in raw_droplets]
            except (KeyError, TypeError, ValueError) as exc:
                raise _malformed(operation, response, exc) from exc
            for droplet in droplets:
                found.setdefault(droplet.id, droplet)
            page = _next_page(body, page, per_page, len(droplets))
        return list(found.values())

    # -------------------------------------------------------------------- plumbing

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        allow_404: bool = False,
        retry_ambiguous: bool = True,
    ) -> httpx.Response | None:
        """Send one logical request with retries; a 2xx response, or ``None`` for a 404.

        stamina retries :class:`_RetryableFailure` (5xx, transient 422, transport
        errors) with jittered exponential backoff. 429s are handled inside an
        attempt (see :meth:`_send`) so they do not use up attempts.
        """
        if not self._configured:
            raise DigitalOceanNotConfiguredError(
                "DigitalOcean API token is not configured: DIGITALOCEAN_API_TOKEN is not set"
            )
        state = _CallState(operation, retry_ambiguous=retry_ambiguous)
        try:
            async for attempt in stamina.retry_context(
                on=self._backoff_hook(),
                attempts=self._retry_attempts,
                timeout=None,  # 429 waits may be long; attempts bound the retries
                wait_initial=self._retry_initial_s,
                wait_max=self._retry_max_s,
                wait_jitter=0.0,  # jitter comes from the backoff hook
            ):
                with attempt:
                    state.attempts += 1
                    response = await self._send(state, method, path, json=json, params=params)
                    return self._check_status(state, response, allow_404=allow_404)
        except _RetryableFailure as exc:
            raise self._unavailable(state, exc) from exc
        raise AssertionError("unreachable: stamina either returns or raises")  # pragma: no cover

    def _backoff_hook(self) -> Callable[[Exception], bool | float]:
        """A stamina backoff hook: equal jitter over ``initial * 2**n`` capped at ``max``.

        Equal jitter (half fixed, half random) spreads out the retries of many
        concurrent tasks after a shared outage while still guaranteeing a
        minimum pause. Only :class:`_RetryableFailure` is retried.
        """
        failures = 0

        def hook(exc: Exception) -> bool | float:
            nonlocal failures
            if not isinstance(exc, _RetryableFailure):
                return False
            failures += 1
            ceiling = min(self._retry_max_s, self._retry_initial_s * 2 ** (failures - 1))
            return ceiling / 2 + random.uniform(0, ceiling / 2)

        return hook

    async def _send(
        self,
        state: _CallState,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> httpx.Response:
        """One attempt: budgeted sends until an answer other than 429 arrives."""
        while True:
            await self._budget.acquire()
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.RequestError as exc:  # transport errors, timeouts, bad encodings
                self._notify(state.operation, 0)
                description = self._scrub(_describe_transport_error(exc))
                logger.warning(
                    "digitalocean %s failed: %s (attempt %d/%d)",
                    state.operation,
                    description,
                    state.attempts,
                    self._retry_attempts,
                )
                if not state.retry_ambiguous and not isinstance(exc, _CERTAINLY_NOT_SENT):
                    raise DigitalOceanUnavailableError(
                        f"DigitalOcean {state.operation} outcome unknown: {description}",
                        ambiguous=True,
                    ) from exc
                raise _RetryableFailure(description, status_code=None) from exc
            self._notify(state.operation, response.status_code)
            self._budget.observe(response.headers)
            logger.debug(
                "digitalocean %s -> %d (attempt %d)",
                state.operation,
                response.status_code,
                state.attempts,
            )
            if response.status_code != httpx.codes.TOO_MANY_REQUESTS:
                return response
            self._wait_out_rate_limit(state, response)

    def _wait_out_rate_limit(self, state: _CallState, response: httpx.Response) -> None:
        """Pause the whole process after a 429, or give up past ``max_rate_limit_waits``."""
        if state.rate_limit_waits >= self._max_rate_limit_waits:
            raise DigitalOceanUnavailableError(
                f"DigitalOcean kept rate limiting {state.operation} "
                f"(429 after {state.rate_limit_waits} waits)",
                status_code=response.status_code,
            )
        state.rate_limit_waits += 1
        wait_s = _rate_limit_wait_s(response.headers, time.time())
        logger.warning(
            "digitalocean %s rate limited (429); pausing all requests for %.1f s (wait %d/%d)",
            state.operation,
            wait_s,
            state.rate_limit_waits,
            self._max_rate_limit_waits,
        )
        self._budget.pause_for(wait_s)

    def _check_status(
        self, state: _CallState, response: httpx.Response, *, allow_404: bool
    ) -> httpx.Response | None:
        """Sort a non-429 answer into success, not-found, retryable or permanent."""
        operation = state.operation
        status = response.status_code
        if response.is_success:
            return response
        if status == httpx.codes.NOT_FOUND and allow_404:
            return None
        error_id, message = _error_details(response)
        message = self._scrub(message)
        label = f"{status} {error_id}" if error_id else str(status)
        if status >= httpx.codes.INTERNAL_SERVER_ERROR and not state.retry_ambiguous:
            raise DigitalOceanUnavailableError(
                f"DigitalOcean answered {label} to {operation}: {message}",
                status_code=status,
                ambiguous=True,
            )
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or (
            status == httpx.codes.UNPROCESSABLE_ENTITY and _is_transient_422(message)
        ):
            logger.warning(
                "digitalocean %s answered %d (attempt %d/%d)",
                operation,
                status,
                state.attempts,
                self._retry_attempts,
            )
            raise _RetryableFailure(f"answered {label}", status_code=status, detail=message)
        if status == httpx.codes.UNAUTHORIZED:
            text = f"DigitalOcean rejected the API token ({label}): {message}"
        elif status == httpx.codes.FORBIDDEN:
            text = f"DigitalOcean refused {operation} ({label}): {message}"
        else:
            text = f"DigitalOcean rejected {operation} ({label}): {message}"
        logger.warning("digitalocean %s failed permanently: HTTP %d", operation, status)
        raise DigitalOceanPermanentError(text, status_code=status)

    def _unavailable(
        self, state: _CallState, failure: _RetryableFailure
    ) -> DigitalOceanUnavailableError:
        """The error for a call whose attempts are all used up."""
        attempts = f"{state.attempts} attempt{'s' if state.attempts != 1 else ''}"
        if failure.status_code is None:
            text = f"DigitalOcean unreachable: {failure.summary} after {attempts}"
            text = f"{text} ({state.operation})"
        else:
            text = f"DigitalOcean {failure.summary} to {state.operation} after {attempts}"
            if failure.detail:
                text = f"{text}: {failure.detail}"
        return DigitalOceanUnavailableError(text, status_code=failure.status_code)

    def _notify(self, operation: str, status_code: int) -> None:
        """Report a response to the metrics hook; a broken hook must not break the call."""
        if self._on_response is None:
            return
        try:
            self._on_response(operation, status_code)
        except Exception:
            logger.exception("digitalocean on_response hook failed for %s", operation)

    def _scrub(self, text: str) -> str:
        """Defence in depth: remove the token should any text ever echo it."""
        if self._secret and self._secret in text:
            return text.replace(self._secret, "***")
        return text
