"""RESIZE (v1.2, SPEC sections 10 and 15): shutdown, resize, power on - one action, four steps.

A paid plan change's RESIZE is one server action worked by the same engine
as the others (one per order at a time, leased, durable). Its DO actions run
in a row, and the step reached is a column of the action (`step`, `step_at`),
committed before the step's first request:

    shutdown --off--> resize --done or errored--> power_on --active--> end
        \\--not off within SHUTDOWN_GRACE, or errored--> power_off --off--> resize

Every send inside a step keeps the crash rule of `droplet_action.py`
(intent before send; after a crash the droplet's action list is read before
anything is sent again), and the resize step also looks at the droplet's
size first: a droplet that already has the new size is not resized again.
Whatever goes wrong before the power_on step (DO's resize errored or was
refused, a step past ACTION_TIMEOUT), the error is recorded on the action
and the run goes on to power_on, so the server is never left off by the
service. The end is judged on DO's word: the droplet showing the new size
completes the plan change (plan_changes/completion.py, in the transaction
that ends the action); any other size fails it and the order keeps its plan.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from order_service.actions.droplet_action import DropletActionRun, Outcome
from order_service.actions.run import ACTION_FAILED, ACTION_TIMEOUT
from order_service.actions.store import ResizeTarget
from order_service.db import utcnow
from order_service.orders.states import ActionStatus
from order_service.provisioning.digitalocean import DigitalOceanPermanentError, Droplet

SHUTDOWN, POWER_OFF, RESIZE, POWER_ON = "shutdown", "power_off", "resize", "power_on"


class ResizeRun(DropletActionRun):
    # DO out of reach never fails a RESIZE half-way (that could leave the server
    # off): each step's ACTION_TIMEOUT moves it on to power_on instead.
    unavailable_limit = None
    target: ResizeTarget

    async def prepare(self) -> None:
        target = await self.store.resize_target(self.id)
        if target is None:
            await self.fail(ACTION_FAILED, "No paid plan change waits for this resize")
        self.target = target
        if self.row["step"] is None:
            await self.enter(SHUTDOWN)

    async def enter(self, step: str) -> None:
        """Move to `step`: committed before its first request, with an empty intent."""
        await self.save(step=step, step_at=utcnow(), intent_at=None, do_action_id=None)
        self.log("resize: step %s", step)

    async def give_up(self, code: str, message: str) -> None:
        """Keep the first error and power the droplet on again: the plan change fails
        (unless the droplet turns out resized after all)."""
        if self.row["error_code"] is None:
            await self.save(error_code=code, error_message=message)
        self.log("resize: %s (%s); powering the droplet on again", code, message)
        await self.enter(POWER_ON)

    # ------------------------------------------------------------ steps

    async def step(self) -> None:
        step = self.row["step"]
        try:
            if step == SHUTDOWN:
                await self.shutdown()
            elif step == POWER_OFF:
                await self.power_off()
            elif step == RESIZE:
                await self.resize()
            else:
                await self.power_on()
        except DigitalOceanPermanentError as exc:
            if step == POWER_ON:
                raise
            await self.give_up(ACTION_FAILED, exc.message)

    async def shutdown(self) -> None:
        outcome = await self.drive("shutdown", end_status="off")
        if outcome is Outcome.END_STATE or (
            outcome is Outcome.COMPLETED and (await self.look()).status == "off"
        ):
            await self.enter(RESIZE)
        elif outcome is Outcome.ERRORED or utcnow() >= self.row["step_at"] + self.grace:
            await self.enter(POWER_OFF)
        elif outcome is Outcome.COMPLETED:
            await self.sleep(self.config.poll_interval_s)

    async def power_off(self) -> None:
        outcome = await self.drive("power_off", end_status="off")
        if outcome is Outcome.END_STATE or (
            outcome is Outcome.COMPLETED and (await self.look()).status == "off"
        ):
            await self.enter(RESIZE)
        elif outcome is Outcome.ERRORED:
            await self.give_up(ACTION_FAILED, self.errored_message("power_off"))
        elif outcome is Outcome.COMPLETED:
            await self.sleep(self.config.poll_interval_s)

    async def resize(self) -> None:
        if self.row["do_action_id"] is None:
            droplet = await self.look()
            if droplet.size == self.target.size_slug:
                # DO finished it before a crash let us store the step: never twice.
                self.log("droplet already has size %s: not resized again", droplet.size)
                await self.enter(POWER_ON)
                return
            if droplet.status != "off" and self.row["intent_at"] is None:
                await self.enter(POWER_OFF)  # turned on meanwhile: resize needs it off
                return
        outcome = await self.drive(
            "resize", size=self.target.size_slug, disk=self.target.resize_disk
        )
        if outcome is Outcome.COMPLETED:
            await self.enter(POWER_ON)
        elif outcome is Outcome.ERRORED:
            await self.give_up(ACTION_FAILED, self.errored_message("resize"))

    async def power_on(self) -> None:
        outcome = await self.drive("power_on", end_status="active")
        if outcome is Outcome.ERRORED:
            droplet = await self.look()
            await self.fail(
                ACTION_FAILED, self.errored_message("power_on"), droplet_size=droplet.size
            )
        if outcome is Outcome.END_STATE:
            await self.done(self.seen)
        if outcome is Outcome.COMPLETED:
            droplet = await self.look()
            if droplet.status == "active":
                await self.done(droplet)
            await self.sleep(self.config.poll_interval_s)

    async def done(self, droplet: Droplet) -> NoReturn:
        """The droplet is on again: the new size completes the change, any other fails it."""
        resized = droplet.size == self.target.size_slug
        if resized:
            await self.finish(
                ActionStatus.COMPLETED, droplet_status=droplet.status, droplet_size=droplet.size
            )
        await self.finish(
            ActionStatus.FAILED,
            error_code=self.row["error_code"] or ACTION_FAILED,
            error_message=self.row["error_message"]
            or f"The droplet's size is {droplet.size}, not {self.target.size_slug}",
            droplet_status=droplet.status,
            droplet_size=droplet.size,
        )

    # ------------------------------------------------------------ deadlines

    @property
    def grace(self) -> timedelta:
        return self.config.shutdown_grace or self.config.timeout

    async def check_deadline(self) -> None:
        """ACTION_TIMEOUT counts per step: past it, a step before power_on gives up and
        powers the droplet on; power_on past it looks once more, then fails."""
        step_at = self.row["step_at"]
        if step_at is None or utcnow() < step_at + self.config.timeout:
            return
        step = self.row["step"]
        seconds = f"{self.config.timeout.total_seconds():g}s"
        if step == SHUTDOWN:
            await self.enter(POWER_OFF)
        elif step != POWER_ON:
            await self.give_up(ACTION_TIMEOUT, f"The {step} step was not done within {seconds}")
        else:
            droplet = await self.look()
            if droplet.status == "active":
                await self.done(droplet)
            await self.fail(
                ACTION_TIMEOUT,
                f"The droplet was not powered on within {seconds} of the resize",
                droplet_size=droplet.size,
            )
