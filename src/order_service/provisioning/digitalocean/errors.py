"""The exceptions of the DigitalOcean client.

The client turns DigitalOcean's many ways of failing into a few outcomes a
caller can act on without knowing HTTP:

* :class:`DigitalOceanPermanentError` - retrying cannot help (bad size, image
  or region): fail the task at once.
  :class:`DigitalOceanNotFoundError` is the kind of it a caller may expect
  ("the droplet is gone").
* :class:`DigitalOceanUnavailableError` - DigitalOcean is down, slow or
  unreachable even after our retries: try again later.
  :class:`DigitalOceanBusyError` is the kind of it that means "the droplet is
  busy with another event" (a transient 422 that outlasted our retries).
* :class:`DigitalOceanAccountError` (v1.2, SPEC section 13) - the account's own
  trouble, not the order's: its token was refused (401/403,
  :class:`DigitalOceanAuthError`), it has no token
  (:class:`DigitalOceanNotConfiguredError`), or it holds all the droplets it
  may (the droplet-limit 422, :class:`DigitalOceanAccountFullError`). The work
  waits for a healthy account with room instead of failing.
"""

from __future__ import annotations

__all__ = [
    "DigitalOceanAccountError",
    "DigitalOceanAccountFullError",
    "DigitalOceanAuthError",
    "DigitalOceanBusyError",
    "DigitalOceanError",
    "DigitalOceanNotConfiguredError",
    "DigitalOceanNotFoundError",
    "DigitalOceanPermanentError",
    "DigitalOceanUnavailableError",
]


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
    """Retrying cannot help (an invalid request): fail the task at once."""


class DigitalOceanAccountError(DigitalOceanError):
    """The account cannot take this request; another account, or this one once ops
    fixed it, can. Never a reason to fail an order (SPEC sections 7 and 13)."""


class DigitalOceanAuthError(DigitalOceanAccountError):
    """DigitalOcean refused the account's token (401) or the request (403)."""


class DigitalOceanNotConfiguredError(DigitalOceanAuthError):
    """The account has no token (DIGITALOCEAN_API_TOKEN unset): raised before sending."""


class DigitalOceanAccountFullError(DigitalOceanAccountError):
    """A create refused with DO's droplet-limit 422: the account holds all it may."""


class DigitalOceanNotFoundError(DigitalOceanPermanentError):
    """A 404 where the call needs the resource (an action on a droplet that is gone).

    Calls for which "not found" is an ordinary answer (``get_droplet``,
    ``get_action``, ``delete_droplet``) return ``None``/``False`` instead.
    """


class DigitalOceanUnavailableError(DigitalOceanError):
    """DigitalOcean unreachable, timing out, failing (5xx) or rate limiting, past our retries.

    ``ambiguous`` is true when a write (a create, a droplet action) may have
    reached DigitalOcean although no answer said so: the caller must look
    before sending it again (the order tag for a create, the droplet's action
    list for an action).
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.ambiguous = ambiguous


class DigitalOceanBusyError(DigitalOceanUnavailableError):
    """DigitalOcean kept answering a transient 422 ("Droplet already has a pending event.").

    Nothing was done (a 422 is a refusal), so sending again later is safe.
    """


class _RetryableFailure(Exception):
    """One failed attempt that a later attempt may fix; internal to the retry loop."""

    def __init__(self, summary: str, *, status_code: int | None, detail: str = "") -> None:
        super().__init__(f"{summary}: {detail}" if detail else summary)
        self.summary = summary
        self.detail = detail
        self.status_code = status_code
