"""`python -m order_service` is the `order-service` command."""

import sys

from order_service.cli import main

sys.exit(main())
