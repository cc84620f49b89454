"""The DigitalOcean API v2 calls the service makes: droplets and droplet actions.

Each call sends through :class:`DigitalOceanTransport` (rate budget, retries,
error sorting) and parses the answer into the dataclasses of ``models``. What a
caller gets back is one of:

* a result (``None``/``False`` for "not found" where that is an ordinary answer:
  DigitalOcean is eventually consistent and only the caller knows whether a 404
  is expected);
* :class:`DigitalOceanPermanentError` (with :class:`DigitalOceanNotFoundError`
  for "the droplet is gone"): retrying cannot help;
* :class:`DigitalOceanUnavailableError` (with :class:`DigitalOceanBusyError`
  for a droplet that stayed busy): try again later. Malformed answers land
  here too: a garbled document is an outage, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from order_service.provisioning.digitalocean.account_calls import AccountCalls
from order_service.provisioning.digitalocean.models import (
    DROPLET_ACTION_TYPES,
    CreatedDroplet,
    Droplet,
    DropletAction,
)
from order_service.provisioning.digitalocean.responses import (
    MAX_PER_PAGE,
    create_action_id,
    json_object,
    malformed,
    parse_body,
)

__all__ = ["DigitalOceanClient"]


class DigitalOceanClient(AccountCalls):
    """Rate-budgeted, retrying client for droplets and actions (and, from
    ``AccountCalls``, the account, its SSH keys, regions and sizes).

    One instance holds one ``httpx.AsyncClient`` (connection pool); create it at
    start-up, share it, and :meth:`aclose` it at shutdown.
    """

    # ------------------------------------------------------------------ droplets

    async def create_droplet(
        self,
        *,
        name: str,
        region: str,
        size: str,
        image: str,
        tags: Sequence[str],
        ssh_keys: Sequence[str] = (),
        user_data: str | None = None,
    ) -> CreatedDroplet:
        """Ask DigitalOcean to build a droplet; 202 means accepted, not built.

        A create whose answer was lost (a timeout, a dropped connection, a 5xx)
        may still have reached DigitalOcean, and blindly sending it again could
        make a second droplet. So only failures that certainly created nothing
        are retried here (connection refused, 429, a transient 422); an
        ambiguous one raises DigitalOceanUnavailableError with `ambiguous=True`
        at once, and the caller looks the droplet up by its order tag before
        it ever creates again.

        ``ssh_keys`` are fingerprints of keys present in this account; ``user_data``
        is cloud-init (it may hold a secret: it goes to DO and nowhere else).
        """
        operation = "create_droplet"
        payload: dict[str, Any] = {
            "name": name,
            "region": region,
            "size": size,
            "image": image,
            "tags": list(tags),
            "monitoring": True,
        }
        if ssh_keys:
            payload["ssh_keys"] = list(ssh_keys)
        if user_data is not None:
            payload["user_data"] = user_data
        response = await self._request(
            operation, "POST", "/v2/droplets", json=payload, retry_ambiguous=False
        )
        assert response is not None  # 404 is not tolerated for POST
        return parse_body(
            response,
            operation,
            lambda body: CreatedDroplet(
                droplet=Droplet.from_api(body["droplet"]),
                create_action_id=create_action_id(body),
            ),
        )

    async def get_droplet(self, droplet_id: int) -> Droplet | None:
        """The droplet, or ``None`` on 404 (unknown, deleted, or not visible yet)."""
        operation = "get_droplet"
        response = await self._request(
            operation, "GET", f"/v2/droplets/{int(droplet_id)}", allow_404=True
        )
        if response is None:
            return None
        return parse_body(response, operation, lambda body: Droplet.from_api(body["droplet"]))

    async def list_droplets_by_tag(
        self, tag: str, *, per_page: int = 200, before_create: bool = False
    ) -> list[Droplet]:
        """Every droplet carrying ``tag``, across all pages (deduplicated by id).

        Pages can shift while droplets are created or deleted between requests,
        so the same droplet may show up twice; the first occurrence wins.
        ``before_create``: the look-up before a create, budgeted with the creates
        (transport.BULK_OPERATIONS), not with the follow-ups.
        """
        found: dict[int, Droplet] = {}
        for droplet in await self._list_all(
            "look_up_droplets" if before_create else "list_droplets",
            "/v2/droplets",
            "droplets",
            Droplet.from_api,
            params={"tag_name": tag},
            per_page=per_page,
        ):
            found.setdefault(droplet.id, droplet)
        return list(found.values())

    async def delete_droplet(self, droplet_id: int) -> bool:
        """``DELETE /v2/droplets/{id}``: ``True`` when deleted now (204), ``False`` on 404.

        A 404 means "already gone" - or, right after a create, "not visible
        yet": the caller decides (SPEC §7 counts a droplet as gone only after
        repeated 404s). Retried like a read: a second DELETE after a lost 204
        answers 404, which is the same end state. There is deliberately no
        delete by tag.
        """
        operation = "delete_droplet"
        response = await self._request(
            operation, "DELETE", f"/v2/droplets/{int(droplet_id)}", allow_404=True
        )
        return response is not None

    # ------------------------------------------------------------------- actions

    async def post_droplet_action(
        self,
        droplet_id: int,
        type: str,  # DigitalOcean's field name, so callers read like the API
        *,
        image: str | None = None,
        size: str | None = None,
        disk: bool = False,
        retry_ambiguous: bool = False,
    ) -> DropletAction:
        """``POST /v2/droplets/{id}/actions``: start ``reboot``, ``shutdown``,
        ``power_off``, ``power_on``, ``rebuild`` (which needs ``image``, a slug) or
        ``resize`` (which needs ``size``; ``disk`` grows the disk for good).

        Returns the new action (``in-progress``); follow it with
        :meth:`get_action`. ``422 "Droplet already has a pending event."`` is
        retried with the usual backoff and, if it outlasts the attempts,
        raises :class:`DigitalOceanBusyError` (nothing was started). A 404
        raises :class:`DigitalOceanNotFoundError` (the droplet is gone).

        Like a create, an action whose answer was lost (timeout, dropped
        connection, 5xx) may have started anyway, and sending it again could
        reboot twice. So by default those raise
        ``DigitalOceanUnavailableError(ambiguous=True)`` at once, and the
        caller reads :meth:`list_droplet_actions` before sending again; pass
        ``retry_ambiguous=True`` to retry them here instead.
        """
        if type not in DROPLET_ACTION_TYPES:
            raise ValueError(f"unsupported droplet action type: {type!r}")
        if (type == "rebuild") != bool(image):
            raise ValueError("an image slug is required for rebuild and only for rebuild")
        if (type == "resize") != bool(size):
            raise ValueError("a size slug is required for resize and only for resize")
        operation = "post_droplet_action"
        payload: dict[str, Any] = {"type": type}
        if image:
            payload["image"] = image
        if size:
            payload["size"] = size
            payload["disk"] = disk
        response = await self._request(
            operation,
            "POST",
            f"/v2/droplets/{int(droplet_id)}/actions",
            json=payload,
            retry_ambiguous=retry_ambiguous,
        )
        assert response is not None  # a 404 raised DigitalOceanNotFoundError
        return parse_body(response, operation, _action)

    async def get_action(self, action_id: int) -> DropletAction | None:
        """``GET /v2/actions/{id}``: the action, or ``None`` on 404."""
        operation = "get_action"
        response = await self._request(
            operation, "GET", f"/v2/actions/{int(action_id)}", allow_404=True
        )
        if response is None:
            return None
        return parse_body(response, operation, _action)

    async def get_action_status(self, action_id: int) -> str | None:
        """``in-progress``/``completed``/``errored``, or ``None`` on 404.

        Only needs the status, so it accepts an action without a usable id
        (which :meth:`get_action` would call malformed).
        """
        operation = "get_action"
        response = await self._request(
            operation, "GET", f"/v2/actions/{int(action_id)}", allow_404=True
        )
        if response is None:
            return None
        body = json_object(response, operation)
        try:
            status = body["action"]["status"]
        except (KeyError, TypeError) as exc:
            raise malformed(operation, response, exc) from exc
        if not isinstance(status, str):
            raise malformed(operation, response, TypeError(f"status is {status!r}"))
        return status

    async def list_droplet_actions(
        self, droplet_id: int, *, per_page: int = 20
    ) -> list[DropletAction]:
        """The droplet's most recent actions, newest first (highest id first).

        Only the first page is read: it serves the crash-recovery question "did
        an action of this type start after my intent?", and an intent that is
        more than ``per_page`` actions old has long been answered otherwise.
        A 404 raises :class:`DigitalOceanNotFoundError` (the droplet is gone).
        """
        operation = "list_droplet_actions"
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        response = await self._request(
            operation,
            "GET",
            f"/v2/droplets/{int(droplet_id)}/actions",
            params={"page": 1, "per_page": per_page},
        )
        assert response is not None  # a 404 raised DigitalOceanNotFoundError
        body = json_object(response, operation)
        try:
            raw_actions = body["actions"]
            if not isinstance(raw_actions, list):
                raise TypeError(f"actions is a {type(raw_actions).__name__}, not a list")
            actions = [DropletAction.from_api(raw) for raw in raw_actions]
        except (KeyError, TypeError, ValueError) as exc:
            raise malformed(operation, response, exc) from exc
        # DigitalOcean lists newest first; sort anyway so callers can rely on it.
        # Action ids grow with time, so the id orders them even without timestamps.
        return sorted(actions, key=lambda action: action.id, reverse=True)


def _action(body: Mapping[str, Any]) -> DropletAction:
    return DropletAction.from_api(body["action"])
