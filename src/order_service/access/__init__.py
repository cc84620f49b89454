"""The customer's access to their server (SPEC section 14): SSH keys and first access."""
