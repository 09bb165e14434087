"""The worker runtime: claim loop, doorbell, health."""
