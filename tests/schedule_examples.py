"""Example schedules and instants shared by the schedule tests (test_schedule*.py).

The calendar the tests use: 2026-12-01 is a Tuesday, 2026-12-26 a Saturday, 2026-12-28 a
Monday, 2027-01-05 a Tuesday, 2027-03-22 a Monday, 2027-05-06 a Thursday, and
2027-03-28 / 2027-10-31 are the Sundays Europe/Berlin springs forward / falls back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bridge.core.schedule.model import Schedule
from bridge.core.schedule.parse import DEFAULT_HOURS

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")

DEFAULT = Schedule.from_config(DEFAULT_HOURS, TOKYO)
# The default policy plus a one-off closed date and two one-off openings (one inside the new-year closure).
SPECIAL = Schedule.from_config(
    {
        **DEFAULT_HOURS,
        "closed_dates": ["2027-05-06"],
        "extra_openings": {"2027-03-22": ["13:00-17:00"], "2026-12-30": ["10:00-12:00"]},
    },
    TOKYO,
)
EMPTY = Schedule.from_config({}, TOKYO)
ALWAYS = Schedule.from_config({day: ["00:00-24:00"] for day in DEFAULT_HOURS if day.endswith("day")}, TOKYO)
SPLIT = Schedule.from_config({"tuesday": ["16:00-19:00", "13:00-15:00"]}, TOKYO)
ADJACENT = Schedule.from_config({"tuesday": ["12:00-13:00", "13:00-14:00"]}, TOKYO)
MIDNIGHT = Schedule.from_config({"monday": ["18:00-24:00"], "tuesday": ["00:00-02:00"]}, TOKYO)
BERLIN_SUNDAY = Schedule.from_config({"sunday": ["01:00-04:00"]}, BERLIN)


def jst(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=TOKYO)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


WEEKDAYS = "月火水木金土日"  # the weekday names, Monday first (the policy's weekday_names text)
