"""The ``[hours]`` table of the policy file -> the parts of a :class:`Schedule`.

A caller can rely on :func:`parse_hours` either returning every part validated (windows of a
day sorted and not overlapping, missing weekdays closed, other keys empty) or raising
:class:`ScheduleError` for the first offending key, its message starting with the key path
inside the table (``tuesday[1]: ...``, ``extra_openings."2027-03-22": ...``). It accepts what
TOML gives: strings, and unquoted dates as ``datetime.date``. :data:`DEFAULT_HOURS` is the
published policy's table. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NamedTuple

from bridge.core.schedule.days import DAY_MINUTES, WEEKDAYS, MonthDay, Window

__all__ = ["DEFAULT_HOURS", "DEFAULT_TIMEZONE", "ParsedHours", "ScheduleError", "parse_hours"]

DEFAULT_TIMEZONE = "Asia/Tokyo"

# The published policy: Tue-Fri 13-19, Sat 12-18, closed Sun/Mon and over the new year.
DEFAULT_HOURS: Mapping[str, Any] = MappingProxyType(
    {
        "monday": (),
        "tuesday": ("13:00-19:00",),
        "wednesday": ("13:00-19:00",),
        "thursday": ("13:00-19:00",),
        "friday": ("13:00-19:00",),
        "saturday": ("12:00-18:00",),
        "sunday": (),
        "yearly_closures": ("12-29..01-03",),
    }
)


_KNOWN_KEYS = frozenset((*WEEKDAYS, "yearly_closures", "closed_dates", "extra_openings"))

_WINDOW_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_MONTH_DAY_RE = re.compile(r"(\d{2})-(\d{2})")
_CLOSURE_RE = re.compile(r"\s*(\d{2}-\d{2})(?:\s*\.\.\s*(\d{2}-\d{2}))?\s*")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class ScheduleError(ValueError):
    """The ``[hours]`` table is wrong; the message starts with the key path inside it."""


class ParsedHours(NamedTuple):
    """The validated parts of an ``[hours]`` table: a :class:`Schedule`'s fields but its zone."""

    weekly: tuple[tuple[Window, ...], ...]
    yearly_closures: tuple[tuple[MonthDay, MonthDay], ...]
    closed_dates: frozenset[date]
    extra_openings: Mapping[date, tuple[Window, ...]]


def parse_hours(raw: Mapping[str, Any]) -> ParsedHours:
    """Validate the parsed ``[hours]`` table and return its parts.

    Missing weekdays are closed; other keys default to empty.  Windows of a day
    are sorted.  Raises :class:`ScheduleError` naming the first offending key.
    """
    for key in raw:
        if key not in _KNOWN_KEYS:
            raise ScheduleError(f"{key}: is not a known setting")
    weekly = tuple(_parse_windows(raw.get(day, ()), day) for day in WEEKDAYS)
    closures = tuple(
        _parse_closure(item, f"yearly_closures[{i}]")
        for i, item in enumerate(_as_list(raw.get("yearly_closures", ()), "yearly_closures"))
    )
    closed = frozenset(
        _parse_date(item, f"closed_dates[{i}]")
        for i, item in enumerate(_as_list(raw.get("closed_dates", ()), "closed_dates"))
    )
    extra_raw = raw.get("extra_openings", {})
    if not isinstance(extra_raw, Mapping):
        raise ScheduleError(f"extra_openings: must be a table of dates, got {extra_raw!r}")
    extra: dict[date, tuple[Window, ...]] = {}
    for key, windows in extra_raw.items():
        path = f'extra_openings."{key}"'
        day = _parse_date(key, path, quoted=False)
        if day in extra:
            raise ScheduleError(f"{path}: names {day} a second time")
        extra[day] = _parse_windows(windows, path)
    both = sorted(closed & extra.keys())
    if both:
        raise ScheduleError(f"closed_dates and extra_openings both name {both[0]}")
    return ParsedHours(weekly, closures, closed, MappingProxyType(extra))


def _as_list(value: object, path: str) -> Sequence[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ScheduleError(f"{path}: must be a list, got {value!r}")
    return value


def _parse_time(text: str) -> int | None:
    hours, minutes = int(text[:-3]), int(text[-2:])
    if hours > 24 or minutes > 59 or (hours == 24 and minutes != 0):
        return None
    return hours * 60 + minutes


def _parse_windows(value: object, path: str) -> tuple[Window, ...]:
    windows = []
    for i, item in enumerate(_as_list(value, path)):
        where = f"{path}[{i}]"
        match = _WINDOW_RE.fullmatch(item) if isinstance(item, str) else None
        if match is None:
            raise ScheduleError(f'{where}: {item!r} is not a window like "13:00-19:00"')
        text = f'"{item}"'
        start = _parse_time(f"{match[1]}:{match[2]}")
        end = _parse_time(f"{match[3]}:{match[4]}")
        if start is None or end is None:
            raise ScheduleError(f"{where}: {text} has a time that is not between 00:00 and 24:00")
        if start == DAY_MINUTES:
            raise ScheduleError(f"{where}: {text} starts at 24:00, which can only end a window")
        if end < start:
            raise ScheduleError(f"{where}: {text} ends before it starts")
        if end == start:
            raise ScheduleError(f"{where}: {text} is empty (it ends when it starts)")
        windows.append(Window(start, end))
    windows.sort()
    for before, after in pairwise(windows):
        if after.start < before.end:  # touching is fine: that is one longer period
            raise ScheduleError(f'{path}: "{before}" and "{after}" overlap')
    return tuple(windows)


def _parse_month_day(text: str, path: str) -> MonthDay:
    match = _MONTH_DAY_RE.fullmatch(text)
    if match is not None:
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year, so "02-29" is accepted (it then applies in leap years)
        except ValueError:
            pass
        else:
            return month, day
    raise ScheduleError(f'{path}: "{text}" is not a month-day')


def _parse_closure(item: object, path: str) -> tuple[MonthDay, MonthDay]:
    match = _CLOSURE_RE.fullmatch(item) if isinstance(item, str) else None
    if match is None:
        raise ScheduleError(f'{path}: {item!r} is not "MM-DD" or "MM-DD..MM-DD"')
    first = _parse_month_day(match[1], path)
    last = _parse_month_day(match[2], path) if match[2] else first
    return first, last


def _parse_date(item: object, path: str, *, quoted: bool = True) -> date:
    # TOML gives an unquoted date as a datetime.date; take that as it is.
    if isinstance(item, date) and not isinstance(item, datetime):
        return item
    if isinstance(item, str) and _DATE_RE.fullmatch(item):
        try:
            return date.fromisoformat(item)
        except ValueError:
            pass
    # Inside extra_openings the key path already quotes the date.
    raise ScheduleError(f'{path}: "{item}" is not a date' if quoted else f"{path}: not a date")
