"""Plan changes with a prorated price (SPEC section 15)."""
