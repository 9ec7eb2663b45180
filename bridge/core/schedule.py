"""The service's opening hours, as pure functions.

A :class:`Schedule` is built once from the ``[hours]`` table of the config
(:meth:`Schedule.from_config`) and then answers questions about moments the
caller passes in: is the service open at this instant, when does it next open
or close, what should the child be told.  Nothing here reads the clock or does
any I/O, so every rule can be tested with fixed datetimes.

All instants are compared in UTC.  Python compares two datetimes that share a
``tzinfo`` by wall clock alone, which is wrong around a DST change; converting
to UTC first keeps the arithmetic honest in zones that have DST.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_TIMEZONE",
    "HORIZON_DAYS",
    "Schedule",
    "ScheduleError",
    "Window",
]

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

# How far next_opening / next_closing look ahead (further if an extra opening lies beyond).
HORIZON_DAYS = 400

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_KNOWN_KEYS = frozenset((*WEEKDAYS, "yearly_closures", "closed_dates", "extra_openings"))
_DAY_MINUTES = 24 * 60

_WINDOW_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_MONTH_DAY_RE = re.compile(r"(\d{2})-(\d{2})")
_CLOSURE_RE = re.compile(r"\s*(\d{2}-\d{2})(?:\s*\.\.\s*(\d{2}-\d{2}))?\s*")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

MonthDay = tuple[int, int]


class ScheduleError(ValueError):
    """The ``[hours]`` table is wrong; the message starts with the key path inside it."""


@dataclass(frozen=True, order=True)
class Window:
    """An opening window within one local day, in minutes from midnight (end exclusive)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= _DAY_MINUTES:
            raise ValueError(f"a window needs 0 <= start < end <= {_DAY_MINUTES}, got {self.start}..{self.end}")

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _require_aware(at: datetime, name: str = "at") -> None:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")


def _in_closure(md: MonthDay, closure: tuple[MonthDay, MonthDay]) -> bool:
    first, last = closure
    if first <= last:
        return first <= md <= last
    return md >= first or md <= last  # the range crosses the new year


@dataclass(frozen=True)
class Schedule:
    """Weekly opening windows plus yearly closures, one-off closed dates and one-off openings.

    ``weekly`` has seven entries, Monday first.  ``extra_openings`` is stored as a
    read-only mapping and left out of the hash (equality still compares it).
    """

    timezone: ZoneInfo
    weekly: tuple[tuple[Window, ...], ...]
    yearly_closures: tuple[tuple[MonthDay, MonthDay], ...] = ()
    closed_dates: frozenset[date] = frozenset()
    extra_openings: Mapping[date, tuple[Window, ...]] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError(f"weekly needs 7 days (Monday first), got {len(self.weekly)}")
        # Copy so a caller's dict cannot change a frozen schedule behind its back.
        object.__setattr__(self, "extra_openings", MappingProxyType(dict(self.extra_openings)))

    # ------------------------------------------------------------------
    # Building
    # ------------------------------------------------------------------

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], timezone: ZoneInfo) -> Schedule:
        """Validate and build a schedule from the parsed ``[hours]`` table.

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
        return cls(timezone, weekly, closures, closed, MappingProxyType(extra))

    # ------------------------------------------------------------------
    # Days
    # ------------------------------------------------------------------

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The windows of a local calendar day, sorted and non-overlapping.

        An extra opening replaces everything for its day (even inside a yearly
        closure); otherwise a closed date or a yearly closure gives no windows;
        otherwise the weekday's windows apply.
        """
        extra = self.extra_openings.get(day)
        if extra is not None:
            return extra
        if self.closure_reason(day) is not None:
            return ()
        return self.weekly[day.weekday()]

    def closure_reason(self, day: date) -> str | None:
        """``"yearly closure"``, ``"closed date"`` or None (also None on an extra-opening day)."""
        if day in self.extra_openings:
            return None
        md = (day.month, day.day)
        if any(_in_closure(md, c) for c in self.yearly_closures):
            return "yearly closure"
        if day in self.closed_dates:
            return "closed date"
        return None

    # ------------------------------------------------------------------
    # Instants
    # ------------------------------------------------------------------

    def _instant(self, day: date, minutes: int) -> datetime:
        """The UTC instant of a local wall-clock minute; 24:00 is the next day's 00:00."""
        if minutes >= _DAY_MINUTES:
            day, minutes = day + timedelta(days=1), minutes - _DAY_MINUTES
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.timezone)
        return local.astimezone(UTC)

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self.timezone).date()

    def _periods(self, at: datetime) -> Iterator[tuple[datetime, datetime, bool]]:
        """Open periods (start, end, runs_past_horizon) in UTC, seams merged, in order.

        Starts the day before ``at``'s local date so a period already running at
        ``at`` is seen whole, and stops at the horizon so an empty schedule ends.
        """
        first = self._local_date(at) - timedelta(days=1)
        last = first + timedelta(days=HORIZON_DAYS + 1)
        if self.extra_openings:
            last = max(last, max(self.extra_openings))
        current: tuple[datetime, datetime] | None = None
        day = first
        while day <= last:
            for w in self.windows_on(day):
                start, end = self._instant(day, w.start), self._instant(day, w.end)
                if current is not None and start <= current[1]:
                    current = (current[0], max(current[1], end))  # a seam: still one open period
                else:
                    if current is not None:
                        yield current[0], current[1], False
                    current = (start, end)
            day += timedelta(days=1)
        if current is not None:
            # The last period may carry on past the horizon: then its end is not a real closing.
            following = self.windows_on(day)
            continues = bool(following) and following[0].start == 0 and current[1] >= self._instant(day, 0)
            yield current[0], current[1], continues

    def is_open(self, at: datetime) -> bool:
        """Whether the service is open at the instant ``at`` (start inclusive, end exclusive).

        ``at`` must be timezone-aware (ValueError otherwise); any zone is fine.
        """
        _require_aware(at)
        utc = at.astimezone(UTC)
        today = self._local_date(at)
        for offset in (-1, 0, 1):  # DST shifts can move a neighbouring day's window next to `at`
            day = today + timedelta(days=offset)
            for w in self.windows_on(day):
                if self._instant(day, w.start) <= utc < self._instant(day, w.end):
                    return True
        return False

    def next_opening(self, at: datetime) -> datetime | None:
        """The earliest instant strictly after ``at`` at which the service goes from closed to open.

        Adjacent windows (also across midnight) are one period, so a seam is no
        opening.  Returned in the schedule's zone; None if it never opens within
        the horizon (:data:`HORIZON_DAYS`, or the last extra opening if later).
        """
        _require_aware(at)
        utc = at.astimezone(UTC)
        for start, _end, _continues in self._periods(at):
            if start > utc:
                return start.astimezone(self.timezone)
        return None

    def next_closing(self, at: datetime) -> datetime | None:
        """The earliest instant strictly after ``at`` at which an open period ends.

        If open now, the end of the current period; if closed, the end of the next
        one.  Seams do not count.  Returned in the schedule's zone; None if no
        period ends within the horizon (for example open all day every day).
        """
        _require_aware(at)
        utc = at.astimezone(UTC)
        for _start, end, continues in self._periods(at):
            if end > utc:
                return None if continues else end.astimezone(self.timezone)
        return None

    # ------------------------------------------------------------------
    # Text
    # ------------------------------------------------------------------

    def format_opening(
        self,
        at: datetime,
        now: datetime,
        *,
        this_week: str = "{weekday}曜日 {time}",
        later: str = "{month}月{day}日({weekday}) {time}",
        weekdays: str,
    ) -> str:
        """Wording of a moment for the child, in the schedule's zone (templates from the policy).

        Within six days after ``now``'s local date: ``this_week`` (``"火曜日 13:00"``); otherwise
        (or if in the past) ``later`` (``"1月4日(火) 13:00"``). ``weekdays`` names Monday first.
        """
        _require_aware(at)
        _require_aware(now, "now")
        local = at.astimezone(self.timezone)
        days_ahead = (local.date() - self._local_date(now)).days
        values = {
            "weekday": weekdays[local.weekday()],
            "time": f"{local.hour:02d}:{local.minute:02d}",
            "month": local.month,
            "day": local.day,
        }
        return (this_week if 0 <= days_ahead <= 6 else later).format_map(values)

    def summary(
        self,
        *,
        closures: str = "（{closures}はお休み）",
        none: str = "受付時間は決まっていません",
        weekdays: str,
    ) -> str:
        """One line of Japanese for the welcome text: the weekly hours, then yearly closures.

        Consecutive weekdays (Monday first) with identical windows are grouped, e.g.
        ``"火〜金 13:00〜19:00、土 12:00〜18:00（12月29日〜1月3日はお休み）"``.  One-off dates
        are not mentioned.  With no weekly windows: ``"受付時間は決まっていません"``.
        """
        groups: list[tuple[int, int, tuple[Window, ...]]] = []
        for i, windows in enumerate(self.weekly):
            if groups and groups[-1][2] == windows and groups[-1][1] == i - 1:
                groups[-1] = (groups[-1][0], i, windows)
            else:
                groups.append((i, i, windows))
        parts = []
        for first, last, windows in groups:
            if not windows:
                continue
            if first == last:
                days = weekdays[first]
            elif last == first + 1:
                days = f"{weekdays[first]}・{weekdays[last]}"
            else:
                days = f"{weekdays[first]}〜{weekdays[last]}"
            hours = "・".join(f"{_hhmm(w.start)}〜{_hhmm(w.end)}" for w in windows)
            parts.append(f"{days} {hours}")
        if not parts:
            return none
        text = "、".join(parts)
        if self.yearly_closures:
            text += closures.format(closures="、".join(_closure_ja(c) for c in self.yearly_closures))
        return text

    def week_report(self, at: datetime, *, weekdays: str) -> str:
        """Several lines for an operator: the seven days from ``at``'s local date, now, and what is next.

        Each day reads ``"12/01 (火)  13:00-19:00"``, ``"12/29 (火)  closed (yearly closure)"``
        or ``"... closed"``; an extra opening is marked ``(extra opening)``.  Then
        ``"now (2026-12-01 14:00 Asia/Tokyo): open"`` and ``"next closing: ... (in 5 h 0 min)"``
        / ``"next opening: ..."`` / ``"the schedule never opens"``.  ``weekdays`` names Monday first.
        """
        _require_aware(at)
        local = at.astimezone(self.timezone)
        lines = []
        for offset in range(7):
            day = local.date() + timedelta(days=offset)
            label = f"{day:%m/%d} ({weekdays[day.weekday()]})  "
            windows = self.windows_on(day)
            if windows:
                extra = " (extra opening)" if day in self.extra_openings else ""
                lines.append(label + ", ".join(str(w) for w in windows) + extra)
            else:
                reason = self.closure_reason(day)
                lines.append(label + (f"closed ({reason})" if reason else "closed"))
        open_now = self.is_open(at)
        lines.append(f"now ({local:%Y-%m-%d %H:%M} {self.timezone.key}): {'open' if open_now else 'closed'}")
        if open_now:
            closing = self.next_closing(at)
            if closing is None:
                lines.append(f"next closing: none within {HORIZON_DAYS} days")
            else:
                lines.append(f"next closing: {closing:%Y-%m-%d %H:%M} (in {_duration(closing - at)})")
        else:
            opening = self.next_opening(at)
            if opening is None:
                lines.append("the schedule never opens")
            else:
                lines.append(f"next opening: {opening:%Y-%m-%d %H:%M} (in {_duration(opening - at)})")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------


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
        if start == _DAY_MINUTES:
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


def _closure_ja(closure: tuple[MonthDay, MonthDay]) -> str:
    (m1, d1), (m2, d2) = closure
    if (m1, d1) == (m2, d2):
        return f"{m1}月{d1}日"
    return f"{m1}月{d1}日〜{m2}月{d2}日"


def _duration(delta: timedelta) -> str:
    # Rounded up, so "in 0 min" only ever means "now".
    minutes = math.ceil(delta.total_seconds() / 60)
    days, rest = divmod(minutes, _DAY_MINUTES)
    text = f"{rest // 60} h {rest % 60} min"
    return f"{days} d {text}" if days else text
