"""The order after ACTIVE: its billing period, the lifecycle scan, ops and user changes."""
