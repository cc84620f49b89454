"""Droplet actions: one DO action sent once, whatever crashes (SPEC sections 7, 10).

`DropletActionRun.drive()` carries one DO action (`POST /v2/droplets/{id}/actions`)
a step further each call, by the crash rule: `intent_at` is committed *before*
the request is sent, and a run that finds an intent without a DO action id
(the process died, or the answer was lost) asks DO first - the droplet may
already show the end state, or its action list shows an action of that type
started at/after the intent, which is then followed instead of sending again.
`SingleActionRun` is the power changes, reboot and rebuild: one DO action,
done when the droplet shows its end state. `resize.py` drives several in a row.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from enum import Enum
from typing import Any, Final

from order_service.actions.run import ACTION_FAILED, ACTION_TIMEOUT, ActionRun
from order_service.actions.writer import SYSTEM
from order_service.db import utcnow
from order_service.orders.states import ActionStatus, ActionType
from order_service.provisioning.digitalocean import DigitalOceanError, Droplet

#: The DigitalOcean action type of each single-action kind.
DO_TYPE: Final = {
    ActionType.REBOOT: "reboot",
    ActionType.SHUTDOWN: "shutdown",
    ActionType.POWER_OFF: "power_off",
    ActionType.POWER_ON: "power_on",
    ActionType.REBUILD: "rebuild",
}
#: The droplet's status once the action is done (SPEC sections 7 and 10).
END_STATUS: Final = {
    ActionType.REBOOT: "active",
    ActionType.SHUTDOWN: "off",
    ActionType.POWER_OFF: "off",
    ActionType.POWER_ON: "active",
    ActionType.REBUILD: "active",
}
# Whose end state can already hold: then nothing is sent. A reboot or a
# rebuild always acts.
POWER_CHANGES: Final = frozenset({ActionType.SHUTDOWN, ActionType.POWER_OFF, ActionType.POWER_ON})

# DO's clock and ours differ a little: an action DO says started this much
# before our intent still counts as ours.
CLOCK_SKEW = timedelta(seconds=5)


class Outcome(Enum):
    """How one DO action ended, as `drive()` reports it."""

    END_STATE = "end_state"  # the droplet already showed the end state: nothing (more) sent
    COMPLETED = "completed"
    ERRORED = "errored"


class DropletActionRun(ActionRun):
    """A run whose work is DO droplet actions, each sent by the crash rule."""

    #: The droplet as the last `look()` saw it.
    seen: Droplet

    async def drive(
        self, do_type: str, *, end_status: str | None = None, **payload: Any
    ) -> Outcome | None:
        """One call's worth of progress on DO action `do_type`; None while it is in flight.

        With `end_status`, a droplet already in it ends the action without a
        (further) request. `payload` goes with the POST (image, size, disk).
        """
        if self.row["do_action_id"] is not None:
            return await self._follow()
        if self.row["intent_at"] is not None:
            return await self._recover(do_type, end_status, payload)
        if end_status is not None and (await self.look()).status == end_status:
            return Outcome.END_STATE
        await self._send(do_type, payload)
        return None

    async def look(self) -> Droplet:
        """The droplet as DO shows it now (gone: the action fails)."""
        droplet = await self.client.get_droplet(self.droplet_id)
        if droplet is None:
            await self.droplet_gone()
        self.seen = droplet
        return droplet

    async def _send(self, do_type: str, payload: dict[str, Any]) -> None:
        # The intent commits before the request leaves: after a crash, DO is
        # asked before anything is sent again.
        await self.save(intent_at=utcnow(), attempts=(self.row["attempts"] or 0) + 1)
        action = await self.client.post_droplet_action(self.droplet_id, do_type, **payload)
        await self.save(do_action_id=action.id)
        self.log("DigitalOcean %s action %s started", do_type, action.id)

    async def _recover(
        self, do_type: str, end_status: str | None, payload: dict[str, Any]
    ) -> Outcome | None:
        """An intent without a DO action id: find what was sent, or send it now."""
        intent_at = self.row["intent_at"]
        settle = (intent_at - utcnow()).total_seconds() + self.config.settle_s
        if settle > 0:
            await self.sleep(settle)
        if end_status is not None and (await self.look()).status == end_status:
            return Outcome.END_STATE
        known = await self.store.known_do_action_ids(self.row["order_id"])
        since = intent_at - CLOCK_SKEW
        for action in await self.client.list_droplet_actions(self.droplet_id):
            if action.type != do_type or action.id in known:
                continue
            started = action.started_at
            if (started is None and action.status == "in-progress") or (
                started is not None and started >= since
            ):
                await self.save(do_action_id=action.id)
                self.log("adopted DigitalOcean action %s sent before a restart", action.id)
                return None
        self.log("no %s action reached DigitalOcean: sending it", do_type)
        await self._send(do_type, payload)
        return None

    async def _follow(self) -> Outcome | None:
        action = await self.client.get_action(self.row["do_action_id"])
        if action is None or action.status == "in-progress":
            await self.sleep(self.config.poll_interval_s)
            return None
        return Outcome.ERRORED if action.status == "errored" else Outcome.COMPLETED

    def errored_message(self, do_type: str) -> str:
        return (
            f"DigitalOcean reports the {do_type} action {self.row['do_action_id']} "
            f"on droplet {self.droplet_id} errored"
        )


class SingleActionRun(DropletActionRun):
    """REBOOT, SHUTDOWN, POWER_OFF, POWER_ON, REBUILD: one DO action."""

    async def step(self) -> None:
        do_type, end_status = DO_TYPE[self.type], END_STATUS[self.type]
        image = self.row["image_slug"] if self.type is ActionType.REBUILD else None
        outcome = await self.drive(
            do_type, end_status=end_status if self.type in POWER_CHANGES else None, image=image
        )
        if outcome is Outcome.END_STATE:
            self.log("droplet is already %s: nothing to send", end_status)
            await self.finish(ActionStatus.COMPLETED, droplet_status=end_status)
        if outcome is Outcome.ERRORED:
            await self.fail(ACTION_FAILED, self.errored_message(do_type))
        if outcome is Outcome.COMPLETED:
            droplet = await self.look()
            if droplet.status == end_status:
                await self.finish(ActionStatus.COMPLETED, droplet_status=droplet.status)
            # The action completed but the droplet does not show it yet: look again.
            await self.sleep(self.config.poll_interval_s)

    async def check_deadline(self) -> None:
        await super().check_deadline()
        grace = self.config.shutdown_grace
        if (
            grace is not None
            and self.type is ActionType.SHUTDOWN
            and self.row["requested_by"] == SYSTEM
            and utcnow() >= self.row["created_at"] + grace
        ):
            await self.fail(
                ACTION_TIMEOUT,
                f"The droplet was not off within {grace.total_seconds():g}s of the graceful "
                "shutdown; the hard POWER_OFF queued behind it takes over",
            )

    async def last_look(self) -> None:
        """Past the deadline, DO is asked once more (SPEC section 7): an action that DO
        finished while nobody watched (the process was down) completes instead of
        failing. Only a sent action can have finished, and only its end state says so."""
        if self.row["do_action_id"] is None and self.type not in POWER_CHANGES:
            return
        with contextlib.suppress(DigitalOceanError):
            if self.row["do_action_id"] is not None:
                action = await self.client.get_action(self.row["do_action_id"])
                if action is None or action.status != "completed":
                    return
            droplet = await self.client.get_droplet(self.droplet_id)
            if droplet is not None and droplet.status == END_STATUS[self.type]:
                self.log("done by DO's word, though past the deadline")
                await self.finish(ActionStatus.COMPLETED, droplet_status=droplet.status)
