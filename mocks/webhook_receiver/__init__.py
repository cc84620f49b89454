"""A local webhook receiver for the dev stack: verifies signatures, prints one line per event."""

from mocks.webhook_receiver.app import create_app, describe

__all__ = ["create_app", "describe"]
