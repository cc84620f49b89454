"""``python -m mocks.dev_stack``: the catalog mock, the fake DigitalOcean, the service and
a webhook receiver that prints every event of an order's life.

`make run` runs this from the repository root with the venv's python. It

1. checks that the three ports are free, and stops with a message naming a taken one;
2. works out the service's environment: a value from the environment or from `.env`
   wins; every other variable the dev stack needs gets a development default
   (HS256 with a dev secret, the dev internal API key, the two mocks' URLs, fast
   provisioning polls); it prints what is in use, hiding secrets that are not the
   dev ones;
3. migrates the database (`order-service migrate`);
4. starts the three processes, each in its own session with its own environment,
   their output prefixed with their name;
5. waits until each answers (`/health` on the mocks, `/api/v1/health/ready` on the
   service), or names the one that did not come up, with its last log lines;
6. prints a curl walkthrough;
   then registers the webhook receiver (port 4020) as an endpoint for every event and
   starts it with that endpoint's secret (never printed);
7. on SIGINT (Ctrl-C) or SIGTERM stops all four, the service first, and exits 0;
   if one of them dies on its own, stops the others and exits 1.

Only the standard library and python-dotenv (which pydantic-settings brings) are used,
so the script runs with the project's venv and nothing else.
"""

from mocks.dev_stack.children import Output, port_in_use
from mocks.dev_stack.config import DEV_DEFAULTS, redact_url, resolve_config
from mocks.dev_stack.stack import DevStack, main, parse_args

__all__ = [
    "DEV_DEFAULTS",
    "DevStack",
    "Output",
    "main",
    "parse_args",
    "port_in_use",
    "redact_url",
    "resolve_config",
]
