"""Operators' commands that act on the bridge's state in Redis (run from bridge/cli.py)."""
