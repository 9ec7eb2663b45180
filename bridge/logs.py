"""Logging set-up. Our log lines carry ids and outcomes only, never a child's words or IDs."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(level: str | None = None) -> None:
    """Plain one-line records on stderr; libraries that could echo payloads stay at WARNING."""
    logging.basicConfig(
        level=(level or os.environ.get("BRIDGE_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # slack_sdk, Bolt and line-bot-sdk log request and response bodies at DEBUG.
    for name in ("slack_sdk", "slack_bolt", "linebot", "aiohttp", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
