"""Admission of /v2 requests: who is calling, the per-token rate windows, injected 5xx,
and the request log.

A mixin of :class:`~mocks.digitalocean.state.FakeState`. Every /v2 request is
first *identified* (its bearer token, the account the token belongs to, the
token's last four characters), then *admitted* (401, 429 or an injected 5xx
raise; otherwise the rate headers are returned), and once answered it is
appended to a bounded log that tests read through ``GET /_fake/requests``.
Rate windows are kept per token, as on DO; droplets belong to accounts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mocks.digitalocean.config import FakeConfig, RouteKind
from mocks.digitalocean.models import HOUR_S, MINUTE_S, ApiError, RateWindow
from mocks.digitalocean.parsing import parse_bearer

if TYPE_CHECKING:
    from mocks.digitalocean.accounts import Account

#: How many /v2 requests the log keeps (the oldest are dropped first).
REQUEST_LOG_SIZE = 20_000


@dataclass(slots=True)  # not frozen: a frozen init costs on every request
class Caller:
    """Who sent a /v2 request. ``account`` is None when the token is missing or not accepted."""

    token: str | None
    account: str | None

    @property
    def token_hint(self) -> str | None:
        # Never the whole token: the log is read by tests and may be printed.
        return None if self.token is None else self.token[-4:]


class AdmissionMixin:
    """Identification, rate limits, injected 5xx and the request log; see the module docstring."""

    if TYPE_CHECKING:  # provided by FakeState and AccountsMixin
        config: FakeConfig
        clock: Callable[[], float]
        wall_clock: Callable[[], float]

        def _account(self, name: str) -> Account: ...

    def _reset_admission(self) -> None:
        """Called by ``FakeState.reset``; the log's sequence numbers keep growing."""
        self._windows: dict[str, RateWindow] = {}
        self._requests = 0
        self._by_route: Counter[str] = Counter()
        self._rate_limited = 0
        self._unauthorized = 0
        self._server_errors = 0
        self._unprocessable = 0
        # Entries in arrival order; trimmed in halves so appends stay O(1) amortised
        # and a read from any sequence number is one slice.
        self._log: list[dict[str, Any]] = []

    def identify(self, authorization: str | None) -> Caller:
        token = parse_bearer(authorization)
        if token is None or token not in self.config.tokens:
            return Caller(token=token, account=None)
        return Caller(token=token, account=self.config.account_of(token))

    def admit(self, authorization: str | None, kind: RouteKind | None) -> dict[str, str]:
        """Count one /v2 request; return the rate headers or raise the error to answer."""
        return self.admit_caller(self.identify(authorization), kind)

    def admit_caller(self, caller: Caller, kind: RouteKind | None) -> dict[str, str]:
        """Like :meth:`admit` for an identified caller.

        ``kind`` is None for /v2 paths the fake does not serve: they are still
        authenticated and counted, like on DO.
        """
        self._requests += 1
        if kind is not None:
            self._by_route[kind] += 1
        if caller.token is None or caller.account is None:
            self._unauthorized += 1
            raise ApiError(401, "unauthorized", "Unable to authenticate you")
        account = self._account(caller.account)
        account.requests += 1
        try:
            headers = self._count_against_limits(caller.token)
        except ApiError:
            account.rate_limited += 1
            raise
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

    @contextmanager
    def _counting_422(self) -> Iterator[None]:
        """Count a 422 raised inside the block in ``stats()["unprocessable"]``."""
        try:
            yield
        except ApiError as error:
            if error.status == 422:
                self._unprocessable += 1
            raise

    # -- the request log -----------------------------------------------------------

    def log_request(
        self, method: str, path: str, kind: RouteKind | None, caller: Caller, status: int
    ) -> None:
        """Append one answered /v2 request to the log."""
        self._next_log_seq += 1
        self._log.append(
            {
                "seq": self._next_log_seq,
                "method": method,
                "path": path,
                "kind": kind,
                "account": caller.account,
                "token_hint": caller.token_hint,
                "status": status,
            }
        )
        if len(self._log) >= 2 * REQUEST_LOG_SIZE:
            del self._log[:REQUEST_LOG_SIZE]

    def requests_since(self, since: int = 0) -> dict[str, Any]:
        """The logged requests whose ``seq`` is above ``since`` (oldest first), and the
        ``next`` value to pass as ``since`` to get only what comes after them."""
        log = self._log
        if not log:
            return {"requests": [], "next": since}
        # Only the last REQUEST_LOG_SIZE count; their sequence numbers are consecutive,
        # so where ``since`` falls is arithmetic.
        first = max(0, len(log) - REQUEST_LOG_SIZE)
        start = first + min(len(log) - first, max(0, since - log[first]["seq"] + 1))
        entries = log[start:]
        return {"requests": entries, "next": entries[-1]["seq"] if entries else since}
