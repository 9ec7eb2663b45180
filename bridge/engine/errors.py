"""Errors as the logs may show them: never with their message, which may quote content."""

from __future__ import annotations

import traceback


def safe_trace(exc: BaseException) -> str:
    """The exception's type and stack frames, without its message (which may quote content)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"{frames}{type(exc).__module__}.{type(exc).__qualname__}"
