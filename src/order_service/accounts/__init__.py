"""DigitalOcean accounts (SPEC section 13): placement by capacity, health, a client per account."""
