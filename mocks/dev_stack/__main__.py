"""`python -m mocks.dev_stack` (what `make run` runs)."""

import sys

from mocks.dev_stack import main

sys.exit(main())
