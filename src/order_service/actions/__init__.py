"""Server actions: reboot, power, rebuild and destroy a droplet (SPEC section 10)."""
