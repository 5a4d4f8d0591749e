"""Lontar's shell: channels, storage, outbox and the composition root around `flows`."""
