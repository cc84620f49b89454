"""Async client for the parts of the DigitalOcean API v2 the service uses.

One job per module:

* ``errors``    - the exceptions a caller sorts outcomes by;
* ``models``    - ``Droplet``, ``CreatedDroplet``, ``DropletAction`` and their parsers;
* ``responses`` - reading answers: error bodies, 429 waits, JSON documents, paging;
* ``transport`` - one logical request: rate budget, send, retry, sort the answer;
* ``client``    - the calls: droplets (create, get, list by tag, delete) and
  droplet actions (post, get, list);
* ``account_calls`` - the account, its SSH keys, regions and sizes, paged listings.

Import from here; the split is an internal matter.
"""

from order_service.provisioning.digitalocean.client import DigitalOceanClient
from order_service.provisioning.digitalocean.errors import (
    DigitalOceanAccountError,
    DigitalOceanAccountFullError,
    DigitalOceanAuthError,
    DigitalOceanBusyError,
    DigitalOceanError,
    DigitalOceanNotConfiguredError,
    DigitalOceanNotFoundError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    _RetryableFailure,
)
from order_service.provisioning.digitalocean.models import (
    DROPLET_ACTION_TYPES,
    Account,
    AccountKey,
    CreatedDroplet,
    Droplet,
    DropletAction,
    Region,
    Size,
)

__all__ = [
    "DROPLET_ACTION_TYPES",
    "Account",
    "AccountKey",
    "CreatedDroplet",
    "DigitalOceanAccountError",
    "DigitalOceanAccountFullError",
    "DigitalOceanAuthError",
    "DigitalOceanBusyError",
    "DigitalOceanClient",
    "DigitalOceanError",
    "DigitalOceanNotConfiguredError",
    "DigitalOceanNotFoundError",
    "DigitalOceanPermanentError",
    "DigitalOceanUnavailableError",
    "Droplet",
    "DropletAction",
    "Region",
    "Size",
    "_RetryableFailure",
]
