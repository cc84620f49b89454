"""The one engine for durable work: leased rows worked by one process at a time.

Every side effect outside the database (a DigitalOcean request, a webhook)
is a row committed with the change that caused it. A `WorkRunner` per kind
of work (provisioning, server actions, webhook deliveries) claims due rows
with a lease through a `LeaseStore`, runs one worker coroutine per row,
renews the leases of live workers, and gives them back on shutdown; a
process that dies leaves leases that expire, and any process then resumes
the work. What a worker does is the kind's own business, and it finishes by
checking the world (DO's state), not its memory.
"""

from order_service.engine.leases import LeaseLost, LeaseStore
from order_service.engine.runner import WorkRunner, process_identity

__all__ = ["LeaseLost", "LeaseStore", "WorkRunner", "process_identity"]
