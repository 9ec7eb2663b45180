"""Logging set-up. Our log lines carry ids and outcomes only, never a child's words or IDs.

``BRIDGE_LOG_FORMAT=json`` writes one JSON object a line (for a log collector); the default is
one plain line a record. Either way a record holds what our code put in its message: ids,
outcomes and counts (see the rule in the README), nothing a caller sent.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601 with milliseconds), level, logger, message,
    and the exception's type and traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, str] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["traceback"] = record.exc_text
        # ensure_ascii: a control character or a lone surrogate in a message cannot break the line.
        return json.dumps(line, ensure_ascii=True)


def configure_logging(level: str | None = None, *, log_format: str | None = None) -> None:
    """Records on stderr, plain or JSON; libraries that could echo payloads stay at WARNING."""
    chosen = (log_format or os.environ.get("BRIDGE_LOG_FORMAT", "text")).lower()
    if chosen not in FORMATS:
        raise SystemExit(f"BRIDGE_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {chosen!r}")
    handler = logging.StreamHandler(sys.stderr)
    if chosen == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(
        level=(level or os.environ.get("BRIDGE_LOG_LEVEL", "INFO")).upper(),
        handlers=[handler],
        force=True,
    )
    # uvicorn's own loggers (configured by uvicorn before it loads the app) write through ours,
    # so one process writes one format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # slack_sdk, Bolt and line-bot-sdk log request and response bodies at DEBUG.
    for name in ("slack_sdk", "slack_bolt", "linebot", "aiohttp", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
