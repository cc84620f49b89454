"""One logical DigitalOcean request: budget, send, sort the answer, retry.

:class:`DigitalOceanTransport` is the machinery every call of
:class:`~order_service.provisioning.digitalocean.client.DigitalOceanClient`
goes through:

* every send - each retry and each page included - first takes a slot from the
  shared rate budget (``acquire()``), reports the answer's rate headers back to
  it (``observe(headers)``) and, after a 429, pauses every caller
  (``pause_for(seconds)``). Those three methods are all the transport uses, so
  any budget with them can be plugged in;
* 5xx, transport errors and transient 422s are retried with jittered
  exponential backoff (stamina); 429s are waited out inside an attempt so they
  do not use attempts up;
* a write that may have reached DigitalOcean although no answer said so is not
  retried when the caller says so (``retry_ambiguous=False``): it raises
  ``DigitalOceanUnavailableError(ambiguous=True)`` and the caller looks first.

The API token is only ever held by the ``httpx.AsyncClient``'s headers; it
never reaches a message, a log line or a ``repr``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import stamina

from order_service.provisioning.digitalocean.errors import (
    DigitalOceanAccountError,
    DigitalOceanAccountFullError,
    DigitalOceanAuthError,
    DigitalOceanBusyError,
    DigitalOceanNotConfiguredError,
    DigitalOceanNotFoundError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    _RetryableFailure,
)
from order_service.provisioning.digitalocean.responses import (
    describe_transport_error,
    error_details,
    is_droplet_limit_422,
    is_transient_422,
    rate_limit_wait_s,
)
from order_service.provisioning.rate_budget import RateBudget

__all__ = ["DigitalOceanTransport"]

# The logger name predates the package split; log configuration and tests use it.
logger = logging.getLogger("order_service.digitalocean")

#: Shorter "tokens" (test values) are not scrubbed: replacing them would mangle
#: ordinary words. Real DigitalOcean tokens are 64+ characters.
_MIN_SCRUB_LEN = 8

#: Requests that come by the hundred in a storm or a backlog: they never take the
#: follow-ups' reserve of the budget (rate_budget.py), so the listings and GETs that
#: see droplets boot keep flowing while creates wait for the next minute. The look-up
#: before a create (lookup.py) is part of the create's cost: left among the follow-ups,
#: a storm's look-up rounds (one per scan, each listing every droplet of ours) spent
#: the reserve before any droplet had booted (bench: 5 of 500 ACTIVE until 62 s).
BULK_OPERATIONS = frozenset(
    {
        "create_droplet",
        "look_up_droplets",
        "post_droplet_action",
        "delete_droplet",
        "create_ssh_key",
    }
)

# Transport errors after which the request certainly never reached DigitalOcean.
_CERTAINLY_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


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


class DigitalOceanTransport:
    """Rate-budgeted, retrying HTTP core; the calls live in the client subclass.

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
        on_account_error: Callable[[DigitalOceanAccountError], None] | None = None,
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
        # Told of every 401/403 and droplet-limit 422 (accounts/: health, capacity).
        self._on_account_error = on_account_error
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

    @property
    def budget(self) -> RateBudget:
        """The rate budget every call of this client draws from."""
        return self._budget

    def __repr__(self) -> str:
        token_state = "set" if self._configured else "missing"
        return f"{type(self).__name__}(base_url={self._base_url!r}, token=<{token_state}>)"

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
        attempt (see :meth:`_send`) so they do not use up attempts. A 404 that
        is not allowed raises :class:`DigitalOceanNotFoundError`.
        """
        if not self._configured:
            raise self._account_error(
                DigitalOceanNotConfiguredError(
                    "DigitalOcean API token is not configured: DIGITALOCEAN_API_TOKEN is not set"
                )
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
            await self._budget.acquire(bulk=state.operation in BULK_OPERATIONS)
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.RequestError as exc:  # transport errors, timeouts, bad encodings
                self._notify(state.operation, 0)
                description = self._scrub(describe_transport_error(exc))
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
        wait_s = rate_limit_wait_s(response.headers, time.time())
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
        error_id, message = error_details(response)
        message = self._scrub(message)
        label = f"{status} {error_id}" if error_id else str(status)
        if status >= httpx.codes.INTERNAL_SERVER_ERROR and not state.retry_ambiguous:
            raise DigitalOceanUnavailableError(
                f"DigitalOcean answered {label} to {operation}: {message}",
                status_code=status,
                ambiguous=True,
            )
        if status >= httpx.codes.INTERNAL_SERVER_ERROR or (
            status == httpx.codes.UNPROCESSABLE_ENTITY and is_transient_422(message)
        ):
            logger.warning(
                "digitalocean %s answered %d (attempt %d/%d)",
                operation,
                status,
                state.attempts,
                self._retry_attempts,
            )
            raise _RetryableFailure(f"answered {label}", status_code=status, detail=message)
        logger.warning("digitalocean %s failed permanently: HTTP %d", operation, status)
        if status == httpx.codes.UNAUTHORIZED:
            raise self._account_error(
                DigitalOceanAuthError(
                    f"DigitalOcean rejected the API token ({label}): {message}",
                    status_code=status,
                )
            )
        if status == httpx.codes.FORBIDDEN:
            raise self._account_error(
                DigitalOceanAuthError(
                    f"DigitalOcean refused {operation} ({label}): {message}", status_code=status
                )
            )
        if status == httpx.codes.UNPROCESSABLE_ENTITY and is_droplet_limit_422(message):
            raise self._account_error(
                DigitalOceanAccountFullError(
                    f"DigitalOcean refused {operation}: the account is full ({label}): {message}",
                    status_code=status,
                )
            )
        error_class: type[DigitalOceanPermanentError] = DigitalOceanPermanentError
        if status == httpx.codes.NOT_FOUND:
            text = f"DigitalOcean found nothing for {operation} ({label}): {message}"
            error_class = DigitalOceanNotFoundError
        else:
            text = f"DigitalOcean rejected {operation} ({label}): {message}"
        raise error_class(text, status_code=status)

    def _account_error(self, error: DigitalOceanAccountError) -> DigitalOceanAccountError:
        """Tell the account's owner (health, capacity), then hand the error back to raise."""
        if self._on_account_error is not None:
            try:
                self._on_account_error(error)
            except Exception:
                logger.exception("digitalocean on_account_error hook failed")
        return error

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
        # Only transient 422s are retried among 4xx: the droplet is busy, nothing was done.
        if failure.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
            return DigitalOceanBusyError(text, status_code=failure.status_code)
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
