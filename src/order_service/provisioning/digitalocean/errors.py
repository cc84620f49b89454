"""The exceptions of the DigitalOcean client.

The client turns DigitalOcean's many ways of failing into a few outcomes a
caller can act on without knowing HTTP:

* :class:`DigitalOceanPermanentError` - retrying cannot help (bad token, bad
  size/image/region, droplet limit): fail the task at once.
  :class:`DigitalOceanNotFoundError` is the kind of it a caller may expect
  ("the droplet is gone").
* :class:`DigitalOceanUnavailableError` - DigitalOcean is down, slow or
  unreachable even after our retries: try again later.
  :class:`DigitalOceanBusyError` is the kind of it that means "the droplet is
  busy with another event" (a transient 422 that outlasted our retries).
"""

from __future__ import annotations

__all__ = [
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
    """Retrying cannot help (401/403/invalid request): fail the task at once."""


class DigitalOceanNotConfiguredError(DigitalOceanPermanentError):
    """No API token configured: raised before any request is sent."""


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
