"""Adapters: the LINE and Slack platforms and Redis, translated to and from the core's values."""
