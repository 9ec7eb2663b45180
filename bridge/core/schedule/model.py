"""The service's opening hours as a frozen value, and the questions it answers.

A :class:`Schedule` is built once from the ``[hours]`` table of the config
(:meth:`Schedule.from_config`, which :mod:`bridge.core.schedule.parse` validates) and then
answers questions about moments the caller passes in: which windows a calendar day has and why
a day is closed (:meth:`~Schedule.windows_on`, :meth:`~Schedule.closure_reason`), whether the
service is open at an instant, when it next opens or closes. Nothing here reads the clock or
does any I/O, so every rule can be tested with fixed datetimes. What the child and the
operator are told about the hours is worded in :mod:`bridge.core.schedule.wording`.

A caller can rely on: an extra opening replaces everything for its day, even inside a yearly
closure; a closed date or a yearly closure otherwise closes the day; adjacent windows (also
across midnight) are one open period, so a seam is neither an opening nor a closing; the
questions look :data:`HORIZON_DAYS` ahead (further if an extra opening lies beyond) and answer
None past that; a naive datetime is refused with ValueError.

All instants are compared in UTC.  Python compares two datetimes that share a
``tzinfo`` by wall clock alone, which is wrong around a DST change; converting
to UTC first keeps the arithmetic honest in zones that have DST.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from bridge.core.schedule.days import DAY_MINUTES, MonthDay, Window, require_aware
from bridge.core.schedule.parse import parse_hours

__all__ = ["HORIZON_DAYS", "Schedule"]

# How far next_opening / next_closing look ahead (further if an extra opening lies beyond).
HORIZON_DAYS = 400


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
        are sorted.  Raises :class:`~bridge.core.schedule.parse.ScheduleError` naming the
        first offending key (see :func:`~bridge.core.schedule.parse.parse_hours`).
        """
        return cls(timezone, *parse_hours(raw))

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
        if minutes >= DAY_MINUTES:
            day, minutes = day + timedelta(days=1), minutes - DAY_MINUTES
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.timezone)
        return local.astimezone(UTC)

    def local_date(self, at: datetime) -> date:
        """The calendar date of the instant ``at`` in the schedule's zone."""
        return at.astimezone(self.timezone).date()

    def _periods(self, at: datetime) -> Iterator[tuple[datetime, datetime, bool]]:
        """Open periods (start, end, runs_past_horizon) in UTC, seams merged, in order.

        Starts the day before ``at``'s local date so a period already running at
        ``at`` is seen whole, and stops at the horizon so an empty schedule ends.
        """
        first = self.local_date(at) - timedelta(days=1)
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
        require_aware(at)
        utc = at.astimezone(UTC)
        today = self.local_date(at)
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
        require_aware(at)
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
        require_aware(at)
        utc = at.astimezone(UTC)
        for _start, end, continues in self._periods(at):
            if end > utc:
                return None if continues else end.astimezone(self.timezone)
        return None
