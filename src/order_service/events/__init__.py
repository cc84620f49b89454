"""Events and webhooks: the outbox, the feed, endpoints and deliveries (SPEC section 11)."""
