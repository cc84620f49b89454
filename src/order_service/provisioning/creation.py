"""A task gets exactly one droplet: a slot in an account, a look at DO, then the create.

The first half of a provisioning worker (`provisioner.py` has the rest): it
takes a slot in the account with the most room (SPEC section 13), adopts a
droplet an earlier create may have made (after a crash, a takeover, a lost
commit: SPEC section 7 asks DO before every create), or creates one. The
account's own troubles (full, a refused token) send the task to another
account or make it wait; they never fail the order.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any, NoReturn

from order_service.access.account_keys import AccountKeys
from order_service.access.first_access import cloud_init_user_data
from order_service.accounts.clients import AccountClients
from order_service.actions.engine import delete_until_gone
from order_service.db import utcnow
from order_service.provisioning.digitalocean import (
    DigitalOceanAccountError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    Droplet,
)
from order_service.provisioning.lookup import order_tag
from order_service.provisioning.store import TaskStore
from order_service.provisioning.work import (
    ProvisionerConfig,
    ServerSpec,
    Work,
    cohort_tag,
    droplet_values,
)
from order_service.secret_box import SecretBox

logger = logging.getLogger("order_service.provisioning")

PROVISIONING_FAILED = "PROVISIONING_FAILED"
DIGITALOCEAN_UNAVAILABLE = "DIGITALOCEAN_UNAVAILABLE"
PROVISIONING_TIMEOUT = "PROVISIONING_TIMEOUT"
NO_CAPACITY_MESSAGE = (
    "No DigitalOcean account has room for this droplet (all full, disabled, unhealthy or "
    "unchecked): it is created as soon as a slot frees or an account is added"
)

# Consecutive creates that failed without a clear answer (each followed by a
# lookup by tag before the next one).
CREATE_FAILURE_LIMIT = 5
# Consecutive account refusals of one create (full, token) before the task waits
# instead of trying yet another account at once.
ACCOUNT_REFUSAL_LIMIT = 5
GONE = ("destroyed", "gone")


class Finished(Exception):
    """The worker is done with the task for now (it ended, or it waits); unwinds it."""


class DropletCreation:
    """Placement, adoption and creation; the endings are the provisioner's."""

    _store: TaskStore
    _accounts: AccountClients
    _config: ProvisionerConfig
    _keys: AccountKeys | None
    _box: SecretBox | None

    async def _sleep(self, seconds: float) -> None:  # pragma: no cover - set by __init__
        raise NotImplementedError

    async def _fail(
        self, work: Work, code: str, message: str, values: dict[str, Any] | None = None
    ) -> NoReturn:  # pragma: no cover - the provisioner's
        raise NotImplementedError

    async def _wait_for_account(
        self, work: Work, error: DigitalOceanAccountError, account: Any = None
    ) -> None:  # pragma: no cover - the provisioner's
        raise NotImplementedError

    # ------------------------------------------------------------ a retry's droplet

    async def _resume_retried(self, work: Work) -> None:
        """An ops retry of a task that has a droplet: keep it if DO still has it and
        it is sound; destroy a broken one (errored) and wait for DO's 404 first.

        Never two live droplets: the new one is created only once DO answers
        404 for the old one. The old id stays on the row until the new droplet
        is recorded, so a crash anywhere in between comes back here: the GET
        (404, or the broken droplet again) decides, and DELETE is idempotent.
        """
        now = utcnow()
        old_id = work.droplet_id or 0
        destroyed = work.droplet_status in GONE
        droplet: Droplet | None = None
        while not destroyed:
            account = await self._client_of(work)
            try:
                droplet = await account.client.get_droplet(old_id)
                if droplet is not None and await self._is_broken(work, droplet):
                    self._log(work, "retry: droplet %s is broken; destroying it first", old_id)
                    if not await delete_until_gone(
                        account.client,
                        old_id,
                        poll_s=self._config.poll_interval_s,
                        sleep=self._sleep,
                    ):
                        await self._fail(
                            work,
                            DIGITALOCEAN_UNAVAILABLE,
                            f"Droplet {old_id} still exists after DELETE; retry later",
                        )
                    droplet, destroyed = None, True
                break
            except DigitalOceanAccountError as exc:
                await self._wait_for_account(work, exc, account)  # returns: try again now
            except DigitalOceanPermanentError as exc:
                await self._fail(work, PROVISIONING_FAILED, exc.message)
            except DigitalOceanUnavailableError as exc:
                await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
        work.requested_at = now
        if droplet is not None:
            await self._store.save(work.id, status="IN_PROGRESS", requested_at=now, started_at=now)
            self._log(work, "retry keeps droplet %s", droplet.id)
            return
        # The droplet is gone: provision a new one (after a lookup by tag), in the
        # account with the most room now (its slot was freed with the droplet).
        self._log(work, "retry: droplet %s is gone, creating a new one", old_id)
        work.replaced.add(old_id)
        work.droplet_id = None
        work.create_intent_at = work.create_intent_at or now
        work.droplet_status = "destroyed" if destroyed else "gone"
        work.account_id = None
        await self._store.save(
            work.id, status="IN_PROGRESS", droplet_status=work.droplet_status, do_account_id=None
        )

    async def _is_broken(self, work: Work, droplet: Droplet) -> bool:
        """An errored droplet, or one whose build DO reports errored (SPEC section 10)."""
        if droplet.status == "errored":
            return True
        if droplet.status != "new" or work.create_action_id is None:
            return False
        client = (await self._client_of(work)).client
        return await client.get_action_status(work.create_action_id) == "errored"

    # ------------------------------------------------------------ the create

    async def _ensure_droplet(self, work: Work) -> None:
        """Take a slot, adopt the order's droplet if DO has one, else create one.

        DO is asked before *every* create, the first included (SPEC section 7):
        the intent row is not enough when the database lost its last commits
        (a restored backup, a failover) and DO already built the droplet.
        """
        failures = refusals = 0
        server = await self._server_of(work)
        keys_asked_again = False
        while work.droplet_id is None:
            if work.account_id is None:
                await self._place(work)
            if await self._adopt(work):
                return
            assert work.account_id is not None
            account: Any = work.account_id  # the entry, once the client is had
            try:
                account = await self._accounts.get(work.account_id)
                # The order's keys in this account first (DO asked once per account).
                fingerprints = await self._ensure_keys(work.account_id, account, server)
                now = utcnow()
                tags = ["order-service", order_tag(work.order_id), cohort_tag(now)]
                password = await self._store.start_create(
                    work.id,
                    now,
                    password_of=work.order_id if server.wants_password else None,
                    box=self._box,
                )
                work.create_intent_at = now
                created = await account.client.create_droplet(
                    name=server.name,
                    region=work.region,
                    size=work.size,
                    image=work.image,
                    tags=tags,
                    ssh_keys=fingerprints,
                    # The password's only way out of this process but the owner's API.
                    user_data=cloud_init_user_data(password) if password else None,
                )
            except DigitalOceanAccountError as exc:
                # Full, or its token refused (or unreadable): nothing was made there.
                # Write what it says of the account, give the slot back, place again
                # (unless the token was stale: then the same slot, with the new token).
                refusals += 1
                self._log(work, "the account refused the create: %s", exc.message)
                if await self._accounts.trouble(account, exc) and refusals < ACCOUNT_REFUSAL_LIMIT:
                    continue
                await self._store.release_slot(work.id)
                work.account_id = None
                if refusals >= ACCOUNT_REFUSAL_LIMIT:
                    await self._wait_for_capacity(work)
                continue
            except DigitalOceanPermanentError as exc:
                if server.ssh_keys and "ssh" in exc.message.lower() and not keys_asked_again:
                    # A key we remembered was removed from the account by hand: ask DO
                    # again (it is uploaded anew) and create once more.
                    keys_asked_again = True
                    self._log(work, "DO refused the keys, asking again: %s", exc.message)
                    assert self._keys is not None
                    await self._keys.forget(
                        work.account_id, [key["fingerprint"] for key in server.ssh_keys]
                    )
                    continue
                await self._fail(work, PROVISIONING_FAILED, exc.message)
            except DigitalOceanUnavailableError as exc:
                failures += 1
                if failures >= CREATE_FAILURE_LIMIT:
                    await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
                self._log(work, "droplet create failed, will look up and retry: %s", exc.message)
                # The create may have reached DO only now (after a budget wait
                # and a slow answer): the settle time before the lookup counts
                # from here, not from the recorded intent.
                work.create_intent_at = utcnow()
                await self._sleep(self._backoff(failures))
                continue
            await self._record_droplet(work, created.droplet, created.create_action_id, tags)
            self._log(work, "droplet %s requested in account %s", created.droplet.id, account.name)

    async def _server_of(self, work: Work) -> ServerSpec:
        """The droplet's name, keys and first access, from the order (once per worker)."""
        if work.server is None:
            work.server = ServerSpec.from_order(
                work.order_id, await self._store.server_spec(work.order_id)
            )
        if work.server.wants_password and self._box is None:
            await self._fail(
                work,
                PROVISIONING_FAILED,
                "This order's first-access password needs SECRETS_KEY, which this process "
                "does not have: set it, then retry the provisioning",
            )
        return work.server

    async def _ensure_keys(self, account_id: Any, account: Any, server: ServerSpec) -> list[str]:
        if not server.ssh_keys:
            return []
        assert self._keys is not None, "a provisioner that creates with keys is given AccountKeys"
        return await self._keys.ensure_present(account_id, account.client, server.ssh_keys)

    async def _place(self, work: Work) -> None:
        """A slot in the account with the most room, or wait for one (never FAILED)."""
        account_id = await self._store.place(work.id, self._accounts.budget_left)
        if account_id is None:
            # Accounts nobody checked yet have no known limit: check them now (or see
            # the check another duty just made) rather than wait for the next one.
            await self._check_unchecked_accounts()
            account_id = await self._store.place(work.id, self._accounts.budget_left)
        if account_id is None:
            await self._wait_for_capacity(work)
        work.account_id = account_id
        work.error_code = None

    async def _check_unchecked_accounts(self) -> None:
        checker = getattr(self, "_checker", None)
        if checker is not None:
            await checker.check_unknown()

    async def _wait_for_capacity(self, work: Work) -> NoReturn:
        await self._store.wait_for_capacity(
            work.id,
            work.order_id,
            message=NO_CAPACITY_MESSAGE,
            first=work.error_code != "WAITING_FOR_CAPACITY",
            retry_at=utcnow() + timedelta(seconds=self._config.wait_retry_s),
        )
        self._log(work, "waiting for capacity")
        raise Finished

    async def _adopt(self, work: Work) -> bool:
        """Find a droplet an earlier create made (crash, retry, takeover, lost commit)
        and keep it; one listing by the order's tag in every usable account."""
        if work.create_intent_at is not None:
            # A create that may have just been sent needs a moment to be listed.
            settle = (work.create_intent_at - utcnow()).total_seconds() + self._config.settle_s
            if settle > 0:
                await self._sleep(settle)
        try:
            # Coalesced with the other workers asking now (lookup.py): a storm's
            # lookups cost one listing per account, not one request per order.
            found = await self._accounts.find_everywhere(work.order_id)
        except DigitalOceanPermanentError as exc:
            await self._fail(work, PROVISIONING_FAILED, exc.message)
        except DigitalOceanUnavailableError as exc:
            await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
        found = [(a, droplet) for a, droplet in found if droplet.id not in work.replaced]
        if not found:
            return False
        found.sort(key=lambda pair: pair[1].id)
        if len(found) > 1:
            logger.error(
                "order has %d droplets; keeping the oldest %s",
                len(found),
                found[0][1].id,
                extra={"order_id": str(work.order_id)},
            )
        account_id, droplet = found[0]
        work.account_id = account_id  # where it really is, whatever the slot said
        await self._record_droplet(work, droplet, None, list(droplet.tags))
        self._log(work, "adopted existing droplet %s", droplet.id)
        return True

    async def _record_droplet(
        self, work: Work, droplet: Droplet, action_id: int | None, tags: list[str]
    ) -> None:
        work.droplet_id = droplet.id
        work.create_action_id = action_id or work.create_action_id
        work.tags = list(droplet.tags) or tags
        work.requested_at = work.requested_at or utcnow()
        await self._store.save(
            work.id,
            status="IN_PROGRESS",
            do_account_id=work.account_id,
            create_action_id=work.create_action_id,
            requested_at=work.requested_at,
            started_at=work.requested_at,
            not_found_count=0,
            **{**droplet_values(droplet), "droplet_tags": work.tags},
        )

    async def _client_of(self, work: Work) -> Any:
        while True:
            try:
                return await self._accounts.get(work.account_id)
            except DigitalOceanAccountError as exc:
                await self._wait_for_account(work, exc)

    def _backoff(self, failures: int) -> float:
        ceiling = min(
            self._config.create_retry_max_s,
            self._config.create_retry_initial_s * 2 ** (failures - 1),
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @staticmethod
    def _log(work: Work, message: str, *args: Any) -> None:
        logger.info(
            message,
            *args,
            extra={"order_id": str(work.order_id), "droplet_id": work.droplet_id},
        )
