"""Renewals: another paid period for an ACTIVE or SUSPENDED order (SPEC section 9)."""
