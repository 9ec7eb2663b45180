"""The words the opening hours are made of: weekdays, a window within one day, a month-day.

A caller can rely on :class:`Window` being a valid span of one local day in minutes from
midnight (``0 <= start < end <= 1440``, end exclusive, so ``24:00`` ends a day), printed as
``"13:00-19:00"``; on :data:`WEEKDAYS` naming the days Monday first, as the ``[hours]`` table
and ``Schedule.weekly`` order them; and on :func:`require_aware` refusing a naive datetime
with ValueError. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DAY_MINUTES", "WEEKDAYS", "MonthDay", "Window", "hhmm", "require_aware"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_MINUTES = 24 * 60

MonthDay = tuple[int, int]


@dataclass(frozen=True, order=True)
class Window:
    """An opening window within one local day, in minutes from midnight (end exclusive)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= DAY_MINUTES:
            raise ValueError(f"a window needs 0 <= start < end <= {DAY_MINUTES}, got {self.start}..{self.end}")

    def __str__(self) -> str:
        return f"{hhmm(self.start)}-{hhmm(self.end)}"


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def require_aware(at: datetime, name: str = "at") -> None:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")
