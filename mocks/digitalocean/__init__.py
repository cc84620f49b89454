"""A fake DigitalOcean API v2 (droplets, actions, rate limits, failure injection).

Run it with ``python -m mocks.digitalocean``; embed it with ``create_app()``.
"""

from mocks.digitalocean.app import create_app
from mocks.digitalocean.state import FakeConfig, FakeState

__all__ = ["FakeConfig", "FakeState", "create_app"]
