"""The opening-hours rules: windows, closures, next opening/closing, wording. Pure functions.

Calendar used below: 2026-12-01 is a Tuesday, 2026-12-26 a Saturday, 2026-12-28 a
Monday, 2027-01-05 a Tuesday, 2027-03-22 a Monday, 2027-05-06 a Thursday, and
2027-03-28 / 2027-10-31 are the Sundays Europe/Berlin springs forward / falls back.
"""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.core.schedule import DEFAULT_HOURS, HORIZON_DAYS, Schedule, ScheduleError, Window

TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = "月火水木金土日"  # the weekday names, Monday first (the policy's weekday_names text)
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


# --------------------------------------------------------------------------
# is_open
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "at", "expected"),
    [
        # window edges: start inclusive, end exclusive
        (DEFAULT, jst(2026, 12, 1, 13, 0), True),
        (DEFAULT, jst(2026, 12, 1, 12, 59, 59), False),
        (DEFAULT, jst(2026, 12, 1, 19, 0), False),
        (DEFAULT, jst(2026, 12, 1, 18, 59, 59), True),
        (DEFAULT, jst(2026, 12, 4, 15, 0), True),  # Friday
        (DEFAULT, jst(2026, 12, 5, 12, 0), True),  # Saturday
        (DEFAULT, jst(2026, 12, 5, 11, 59, 59), False),
        (DEFAULT, jst(2026, 12, 5, 17, 59, 59), True),
        (DEFAULT, jst(2026, 12, 5, 18, 0), False),
        (DEFAULT, jst(2026, 12, 6, 14, 0), False),  # Sunday
        (DEFAULT, jst(2026, 12, 7, 14, 0), False),  # Monday
        # the new-year closure, crossing the year
        (DEFAULT, jst(2026, 12, 26, 13, 0), True),
        (DEFAULT, jst(2026, 12, 29, 14, 0), False),
        (DEFAULT, jst(2027, 1, 1, 14, 0), False),
        (DEFAULT, jst(2027, 1, 2, 13, 0), False),  # a Saturday inside the closure
        (DEFAULT, jst(2027, 1, 5, 13, 0), True),
        # `at` in UTC is converted: 04:00Z is 13:00 in Tokyo
        (DEFAULT, utc(2026, 12, 1, 4, 0), True),
        (DEFAULT, utc(2026, 12, 1, 3, 59, 59), False),
        (DEFAULT, utc(2026, 12, 1, 10, 0), False),
        (DEFAULT, utc(2026, 12, 1, 9, 59, 59), True),
        # one-off closed date and openings
        (SPECIAL, jst(2027, 5, 6, 14, 0), False),
        (SPECIAL, jst(2027, 5, 7, 14, 0), True),
        (SPECIAL, jst(2027, 3, 22, 13, 0), True),
        (SPECIAL, jst(2027, 3, 22, 16, 59, 59), True),
        (SPECIAL, jst(2027, 3, 22, 17, 0), False),
        (SPECIAL, jst(2026, 12, 30, 11, 0), True),
        (SPECIAL, jst(2026, 12, 30, 13, 0), False),  # the extra opening replaces the weekday's hours
        # several windows on one day
        (SPLIT, jst(2026, 12, 1, 14, 0), True),
        (SPLIT, jst(2026, 12, 1, 15, 30), False),
        (SPLIT, jst(2026, 12, 1, 16, 0), True),
        # seams
        (ADJACENT, jst(2026, 12, 1, 13, 0), True),
        (MIDNIGHT, jst(2026, 12, 7, 23, 59, 59), True),
        (MIDNIGHT, jst(2026, 12, 8, 0, 0), True),
        (MIDNIGHT, jst(2026, 12, 8, 2, 0), False),
        (EMPTY, jst(2026, 12, 1, 14, 0), False),
        (ALWAYS, jst(2026, 12, 1, 0, 0), True),
        (ALWAYS, jst(2026, 12, 31, 23, 59, 59), True),
    ],
)
def test_is_open(schedule: Schedule, at: datetime, expected: bool) -> None:
    assert schedule.is_open(at) is expected


# --------------------------------------------------------------------------
# next_opening / next_closing
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "at", "expected"),
    [
        (DEFAULT, jst(2026, 12, 1, 12, 59), jst(2026, 12, 1, 13, 0)),
        (DEFAULT, jst(2026, 12, 1, 13, 0), jst(2026, 12, 2, 13, 0)),  # strictly after
        (DEFAULT, jst(2026, 12, 1, 15, 0), jst(2026, 12, 2, 13, 0)),  # open now: the next opening
        (DEFAULT, jst(2026, 12, 4, 19, 0), jst(2026, 12, 5, 12, 0)),  # Friday evening -> Saturday noon
        (DEFAULT, jst(2026, 12, 5, 18, 0), jst(2026, 12, 8, 13, 0)),  # Saturday 18:00 -> Tuesday 13:00
        (DEFAULT, jst(2026, 12, 6, 9, 0), jst(2026, 12, 8, 13, 0)),
        (DEFAULT, jst(2026, 12, 26, 18, 0), jst(2027, 1, 5, 13, 0)),  # across the new-year closure
        (DEFAULT, jst(2026, 12, 28, 10, 0), jst(2027, 1, 5, 13, 0)),
        (DEFAULT, jst(2027, 1, 1, 0, 0), jst(2027, 1, 5, 13, 0)),
        (DEFAULT, utc(2026, 12, 5, 9, 0), jst(2026, 12, 8, 13, 0)),  # Saturday 18:00 JST given in UTC
        (SPECIAL, jst(2027, 5, 5, 19, 0), jst(2027, 5, 7, 13, 0)),  # skips the closed Thursday
        (SPECIAL, jst(2027, 3, 20, 18, 0), jst(2027, 3, 22, 13, 0)),  # the extra Monday
        (SPECIAL, jst(2027, 3, 22, 13, 0), jst(2027, 3, 23, 13, 0)),
        (SPECIAL, jst(2026, 12, 26, 18, 0), jst(2026, 12, 30, 10, 0)),  # extra opening inside the closure
        (SPECIAL, jst(2026, 12, 30, 10, 0), jst(2027, 1, 5, 13, 0)),
        (SPLIT, jst(2026, 12, 1, 15, 30), jst(2026, 12, 1, 16, 0)),
        (SPLIT, jst(2026, 12, 1, 14, 0), jst(2026, 12, 1, 16, 0)),
        (ADJACENT, jst(2026, 12, 1, 11, 0), jst(2026, 12, 1, 12, 0)),
        (ADJACENT, jst(2026, 12, 1, 12, 0), jst(2026, 12, 8, 12, 0)),  # no opening at the 13:00 seam
        (MIDNIGHT, jst(2026, 12, 7, 17, 0), jst(2026, 12, 7, 18, 0)),
        (MIDNIGHT, jst(2026, 12, 7, 18, 0), jst(2026, 12, 14, 18, 0)),  # no opening at the midnight seam
        (MIDNIGHT, jst(2026, 12, 8, 1, 0), jst(2026, 12, 14, 18, 0)),
        (EMPTY, jst(2026, 12, 1, 14, 0), None),
        (ALWAYS, jst(2026, 12, 1, 14, 0), None),  # already open and never closes: never "opens"
    ],
)
def test_next_opening(schedule: Schedule, at: datetime, expected: datetime | None) -> None:
    result = schedule.next_opening(at)
    assert result == expected
    if result is not None:
        assert result.tzinfo is schedule.timezone


@pytest.mark.parametrize(
    ("schedule", "at", "expected"),
    [
        (DEFAULT, jst(2026, 12, 1, 13, 0), jst(2026, 12, 1, 19, 0)),
        (DEFAULT, jst(2026, 12, 1, 18, 59, 59), jst(2026, 12, 1, 19, 0)),
        (DEFAULT, jst(2026, 12, 1, 19, 0), jst(2026, 12, 2, 19, 0)),  # strictly after
        (DEFAULT, jst(2026, 12, 5, 11, 0), jst(2026, 12, 5, 18, 0)),  # closed now: end of the next period
        (DEFAULT, jst(2026, 12, 5, 18, 0), jst(2026, 12, 8, 19, 0)),
        (DEFAULT, jst(2026, 12, 27, 12, 0), jst(2027, 1, 5, 19, 0)),
        (DEFAULT, utc(2026, 12, 1, 5, 0), jst(2026, 12, 1, 19, 0)),
        (SPECIAL, jst(2027, 3, 22, 14, 0), jst(2027, 3, 22, 17, 0)),
        (SPECIAL, jst(2026, 12, 28, 0, 0), jst(2026, 12, 30, 12, 0)),
        (SPLIT, jst(2026, 12, 1, 14, 0), jst(2026, 12, 1, 15, 0)),
        (SPLIT, jst(2026, 12, 1, 15, 30), jst(2026, 12, 1, 19, 0)),
        (ADJACENT, jst(2026, 12, 1, 12, 30), jst(2026, 12, 1, 14, 0)),  # the 13:00 seam is no closing
        (MIDNIGHT, jst(2026, 12, 7, 19, 0), jst(2026, 12, 8, 2, 0)),  # nor is midnight
        (MIDNIGHT, jst(2026, 12, 8, 0, 0), jst(2026, 12, 8, 2, 0)),
        (EMPTY, jst(2026, 12, 1, 14, 0), None),
        (ALWAYS, jst(2026, 12, 1, 14, 0), None),
    ],
)
def test_next_closing(schedule: Schedule, at: datetime, expected: datetime | None) -> None:
    result = schedule.next_closing(at)
    assert result == expected
    if result is not None:
        assert result.tzinfo is schedule.timezone


def test_always_open_with_a_yearly_closure_closes_and_opens_around_it() -> None:
    schedule = Schedule.from_config(
        {**{day: ["00:00-24:00"] for day in DEFAULT_HOURS if day.endswith("day")}, "yearly_closures": ["12-29..01-03"]},
        TOKYO,
    )
    assert schedule.next_closing(jst(2026, 12, 1, 14, 0)) == jst(2026, 12, 29, 0, 0)
    assert schedule.next_opening(jst(2026, 12, 1, 14, 0)) == jst(2027, 1, 4, 0, 0)


def test_the_horizon_reaches_a_far_extra_opening() -> None:
    schedule = Schedule.from_config({"extra_openings": {"2029-01-10": ["10:00-11:00"]}}, TOKYO)
    assert schedule.next_opening(jst(2026, 12, 1)) == jst(2029, 1, 10, 10, 0)
    assert schedule.next_closing(jst(2026, 12, 1)) == jst(2029, 1, 10, 11, 0)


def test_an_opening_beyond_the_horizon_is_not_found() -> None:
    schedule = Schedule.from_config({"yearly_closures": ["01-01..12-31"], "tuesday": ["13:00-19:00"]}, TOKYO)
    assert schedule.next_opening(jst(2026, 12, 1)) is None
    assert HORIZON_DAYS >= 366


def test_an_empty_schedule_answers_quickly() -> None:
    started = time.perf_counter()
    for _ in range(10):
        assert EMPTY.next_opening(jst(2026, 12, 1)) is None
        assert EMPTY.next_closing(jst(2026, 12, 1)) is None
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    "call",
    [
        lambda s, at: s.is_open(at),
        lambda s, at: s.next_opening(at),
        lambda s, at: s.next_closing(at),
        lambda s, at: s.week_report(at, weekdays=WEEKDAYS),
        lambda s, at: s.format_opening(at, jst(2026, 12, 1), weekdays=WEEKDAYS),
        lambda s, at: s.format_opening(jst(2026, 12, 1), at, weekdays=WEEKDAYS),
    ],
)
def test_a_naive_datetime_is_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(DEFAULT, datetime(2026, 12, 1, 14, 0))


# --------------------------------------------------------------------------
# DST (Europe/Berlin): 2027-03-28 02:00 -> 03:00, 2027-10-31 03:00 -> 02:00
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2027, 3, 27, 12), utc(2027, 3, 28, 0, 0)),  # 01:00 CET
        (utc(2027, 10, 30, 12), utc(2027, 10, 30, 23, 0)),  # 01:00 CEST
    ],
)
def test_dst_opening(at: datetime, expected: datetime) -> None:
    assert BERLIN_SUNDAY.next_opening(at) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2027, 3, 28, 0, 0), utc(2027, 3, 28, 2, 0)),  # 04:00 CEST: the window lasts two real hours
        (utc(2027, 10, 30, 23, 0), utc(2027, 10, 31, 3, 0)),  # 04:00 CET: four real hours
    ],
)
def test_dst_closing(at: datetime, expected: datetime) -> None:
    assert BERLIN_SUNDAY.next_closing(at) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2027, 3, 27, 23, 59), False),
        (utc(2027, 3, 28, 0, 30), True),  # 01:30 CET
        (utc(2027, 3, 28, 1, 30), True),  # 03:30 CEST
        (utc(2027, 3, 28, 1, 59, 59), True),
        (utc(2027, 3, 28, 2, 0), False),  # 04:00 CEST
        (utc(2027, 10, 30, 22, 59), False),
        (utc(2027, 10, 31, 0, 30), True),  # 02:30 CEST, first time round
        (utc(2027, 10, 31, 1, 30), True),  # 02:30 CET, second time round
        (utc(2027, 10, 31, 2, 59, 59), True),
        (utc(2027, 10, 31, 3, 0), False),  # 04:00 CET
    ],
)
def test_dst_is_open(at: datetime, expected: bool) -> None:
    assert BERLIN_SUNDAY.is_open(at) is expected


# --------------------------------------------------------------------------
# Days: precedence and reasons
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "windows", "reason"),
    [
        (date(2026, 12, 1), ("13:00-19:00",), None),
        (date(2026, 12, 5), ("12:00-18:00",), None),
        (date(2026, 12, 7), (), None),  # Monday: closed, but not a closure
        (date(2026, 12, 28), (), None),
        (date(2026, 12, 29), (), "yearly closure"),
        (date(2026, 12, 30), ("10:00-12:00",), None),  # the extra opening wins over the yearly closure
        (date(2027, 1, 3), (), "yearly closure"),
        (date(2027, 1, 4), (), None),
        (date(2027, 3, 22), ("13:00-17:00",), None),  # the extra opening on a Monday
        (date(2027, 5, 6), (), "closed date"),
    ],
)
def test_windows_on_and_closure_reason(day: date, windows: tuple[str, ...], reason: str | None) -> None:
    assert tuple(str(w) for w in SPECIAL.windows_on(day)) == windows
    assert SPECIAL.closure_reason(day) == reason


@pytest.mark.parametrize(
    ("closures", "inside", "outside"),
    [
        (["12-29..01-03"], [date(2026, 12, 29), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 3)], []),
        (["12-29..01-03"], [], [date(2026, 12, 28), date(2027, 1, 4), date(2027, 6, 1)]),
        (["08-13..08-16"], [date(2027, 8, 13), date(2027, 8, 16)], [date(2027, 8, 12), date(2027, 8, 17)]),
        (["05-03"], [date(2027, 5, 3)], [date(2027, 5, 2), date(2027, 5, 4)]),
        (["02-29"], [date(2028, 2, 29)], [date(2028, 2, 28), date(2027, 3, 1)]),
    ],
)
def test_yearly_closures(closures: list[str], inside: list[date], outside: list[date]) -> None:
    schedule = Schedule.from_config({"yearly_closures": closures}, TOKYO)
    assert all(schedule.closure_reason(d) == "yearly closure" for d in inside)
    assert all(schedule.closure_reason(d) is None for d in outside)


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------

TOML = """
[hours]
monday = []
tuesday = ["13:00-19:00"]
wednesday = ["13:00-19:00"]
thursday = ["13:00-19:00"]
friday = ["13:00-19:00"]
saturday = ["12:00-18:00"]
sunday = []
yearly_closures = ["12-29..01-03"]
closed_dates = ["2027-05-06", 2027-05-07]
[hours.extra_openings]
"2027-03-22" = ["13:00-17:00"]
"""


def test_from_toml() -> None:
    schedule = Schedule.from_config(tomllib.loads(TOML)["hours"], TOKYO)
    assert schedule.timezone is TOKYO
    assert schedule.weekly[0] == () and schedule.weekly[1] == (Window(780, 1140),)
    assert schedule.weekly[5] == (Window(720, 1080),)
    assert schedule.yearly_closures == (((12, 29), (1, 3)),)
    assert schedule.closed_dates == frozenset({date(2027, 5, 6), date(2027, 5, 7)})
    assert dict(schedule.extra_openings) == {date(2027, 3, 22): (Window(780, 1020),)}
    assert schedule.summary(weekdays=WEEKDAYS) == DEFAULT.summary(weekdays=WEEKDAYS)


def test_a_schedule_is_frozen_equal_and_hashable() -> None:
    again = Schedule.from_config(dict(DEFAULT_HOURS), TOKYO)
    assert again == DEFAULT and hash(again) == hash(DEFAULT)
    assert hash(SPECIAL) is not None
    with pytest.raises(TypeError):
        SPECIAL.extra_openings[date(2027, 1, 1)] = ()  # type: ignore[index]


def test_a_changed_dict_does_not_change_a_built_schedule() -> None:
    openings = {date(2027, 3, 22): (Window(780, 1020),)}
    schedule = Schedule(TOKYO, EMPTY.weekly, extra_openings=openings)
    openings[date(2027, 3, 23)] = (Window(0, 1440),)
    del openings[date(2027, 3, 22)]
    assert schedule.is_open(jst(2027, 3, 22, 14, 0))
    assert not schedule.is_open(jst(2027, 3, 23, 14, 0))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (jst(2026, 12, 1, 9, 29, 59), False),
        (jst(2026, 12, 1, 9, 30), True),
        (jst(2026, 12, 1, 12, 0), True),  # where the two windows touch
        (jst(2026, 12, 1, 18, 58, 59), True),
        (jst(2026, 12, 1, 18, 59), False),
    ],
)
def test_windows_keep_their_minutes_and_touching_windows_are_one_period(at: datetime, expected: bool) -> None:
    # Built here, not at import, so the parsing itself is what the test exercises.
    schedule = Schedule.from_config({"tuesday": ["12:00-18:59", "09:30-12:00"]}, TOKYO)
    assert tuple(str(w) for w in schedule.weekly[1]) == ("09:30-12:00", "12:00-18:59")
    assert schedule.is_open(at) is expected
    assert schedule.next_opening(jst(2026, 12, 1, 8, 0)) == jst(2026, 12, 1, 9, 30)
    assert schedule.next_closing(jst(2026, 12, 1, 10, 0)) == jst(2026, 12, 1, 18, 59)  # 12:00 is no closing


def test_missing_weekdays_are_closed_and_windows_sorted() -> None:
    assert Schedule.from_config({"friday": ["00:00-24:00"]}, TOKYO).weekly == (
        (),
        (),
        (),
        (),
        (Window(0, 1440),),
        (),
        (),
    )
    assert tuple(str(w) for w in SPLIT.weekly[1]) == ("13:00-15:00", "16:00-19:00")


@pytest.mark.parametrize(
    ("window", "text"),
    [(Window(780, 1140), "13:00-19:00"), (Window(0, 1440), "00:00-24:00"), (Window(65, 90), "01:05-01:30")],
)
def test_window_str(window: Window, text: str) -> None:
    assert str(window) == text


@pytest.mark.parametrize(("start", "end"), [(10, 5), (10, 10), (-1, 5), (0, 1441)])
def test_a_window_out_of_range_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        Window(start, end)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tuesday": ["13:00-12:00"]}, 'tuesday[0]: "13:00-12:00" ends before it starts'),
        ({"tuesday": ["10:00-11:00", "13:00-13:00"]}, 'tuesday[1]: "13:00-13:00" is empty (it ends when it starts)'),
        ({"sunday": ["24:00-24:00"]}, 'sunday[0]: "24:00-24:00" starts at 24:00, which can only end a window'),
        ({"monday": ["25:00-26:00"]}, 'monday[0]: "25:00-26:00" has a time that is not between 00:00 and 24:00'),
        ({"monday": ["13:60-14:00"]}, 'monday[0]: "13:60-14:00" has a time that is not between 00:00 and 24:00'),
        ({"monday": ["23:00-24:30"]}, 'monday[0]: "23:00-24:30" has a time that is not between 00:00 and 24:00'),
        ({"monday": ["23:00-25:00"]}, 'monday[0]: "23:00-25:00" has a time that is not between 00:00 and 24:00'),
        ({"monday": ["1pm-7pm"]}, "monday[0]: '1pm-7pm' is not a window like \"13:00-19:00\""),
        ({"monday": [1300]}, 'monday[0]: 1300 is not a window like "13:00-19:00"'),
        ({"tuesday": "13:00-19:00"}, "tuesday: must be a list, got '13:00-19:00'"),
        ({"tuesday": ["14:00-16:00", "13:00-15:00"]}, 'tuesday: "13:00-15:00" and "14:00-16:00" overlap'),
        ({"yearly_closures": ["12-29..01-03", "13-01"]}, 'yearly_closures[1]: "13-01" is not a month-day'),
        ({"yearly_closures": ["02-30"]}, 'yearly_closures[0]: "02-30" is not a month-day'),
        ({"yearly_closures": ["12-29..01-32"]}, 'yearly_closures[0]: "01-32" is not a month-day'),
        ({"yearly_closures": ["Dec 29"]}, 'yearly_closures[0]: \'Dec 29\' is not "MM-DD" or "MM-DD..MM-DD"'),
        ({"yearly_closures": "12-29..01-03"}, "yearly_closures: must be a list, got '12-29..01-03'"),
        ({"closed_dates": "2027-05-06"}, "closed_dates: must be a list, got '2027-05-06'"),
        ({"closed_dates": ["2027-13-01"]}, 'closed_dates[0]: "2027-13-01" is not a date'),
        ({"closed_dates": ["2027-05-06", "May 6"]}, 'closed_dates[1]: "May 6" is not a date'),
        ({"extra_openings": {"2027-02-30": ["13:00-17:00"]}}, 'extra_openings."2027-02-30": not a date'),
        ({"extra_openings": {"tomorrow": []}}, 'extra_openings."tomorrow": not a date'),
        (
            {"extra_openings": {"2027-03-22": ["13:00-12:00"]}},
            'extra_openings."2027-03-22"[0]: "13:00-12:00" ends before it starts',
        ),
        ({"extra_openings": ["2027-03-22"]}, "extra_openings: must be a table of dates, got ['2027-03-22']"),
        (
            {"closed_dates": ["2027-03-22"], "extra_openings": {"2027-03-22": ["13:00-17:00"]}},
            "closed_dates and extra_openings both name 2027-03-22",
        ),
        ({"colour": "red"}, "colour: is not a known setting"),
        ({"tuesday": [], "Tuesday": []}, "Tuesday: is not a known setting"),
    ],
)
def test_schedule_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_config(raw, TOKYO)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "now", "text"),
    [
        (jst(2026, 12, 1, 19, 0), jst(2026, 12, 1, 14, 0), "火曜日 19:00"),  # later today
        (jst(2026, 12, 5, 12, 0), jst(2026, 12, 1, 14, 0), "土曜日 12:00"),
        (jst(2026, 12, 7, 13, 0), jst(2026, 12, 1, 14, 0), "月曜日 13:00"),  # six days after: still a weekday
        (jst(2026, 12, 8, 13, 0), jst(2026, 12, 1, 14, 0), "12月8日(火) 13:00"),  # seven: the date
        (jst(2027, 1, 5, 13, 0), jst(2026, 12, 26, 18, 0), "1月5日(火) 13:00"),
        (jst(2022, 1, 4, 13, 0), jst(2021, 12, 20, 9, 0), "1月4日(火) 13:00"),
        (jst(2026, 11, 30, 13, 0), jst(2026, 12, 1, 14, 0), "11月30日(月) 13:00"),  # the past: the date
        (utc(2026, 12, 2, 4, 0), jst(2026, 12, 1, 14, 0), "水曜日 13:00"),  # `at` in UTC
        # `now` in UTC is already Wednesday in Tokyo, so Tuesday the 8th is six days away
        (jst(2026, 12, 8, 13, 0), utc(2026, 12, 1, 16, 0), "火曜日 13:00"),
    ],
)
def test_format_opening(at: datetime, now: datetime, text: str) -> None:
    assert DEFAULT.format_opening(at, now, weekdays=WEEKDAYS) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (DEFAULT_HOURS, "火〜金 13:00〜19:00、土 12:00〜18:00（12月29日〜1月3日はお休み）"),
        ({}, "受付時間は決まっていません"),
        ({"yearly_closures": ["12-29..01-03"]}, "受付時間は決まっていません"),
        ({day: ["10:00-17:00"] for day in DEFAULT_HOURS if day.endswith("day")}, "月〜日 10:00〜17:00"),
        (
            {
                "wednesday": ["13:00-15:00", "10:00-12:00"],
                "saturday": ["10:00-12:00"],
                "sunday": ["10:00-12:00"],
                "yearly_closures": ["05-03", "12-29..01-03"],
                "closed_dates": ["2027-05-06"],
            },
            "水 10:00〜12:00・13:00〜15:00、土・日 10:00〜12:00（5月3日、12月29日〜1月3日はお休み）",
        ),
        (
            {"tuesday": ["13:00-19:00"], "wednesday": ["13:00-17:00"], "thursday": ["13:00-19:00"]},
            "火 13:00〜19:00、水 13:00〜17:00、木 13:00〜19:00",
        ),
        ({"friday": ["18:00-24:00"]}, "金 18:00〜24:00"),
    ],
)
def test_summary(raw: dict[str, Any], text: str) -> None:
    assert Schedule.from_config(raw, TOKYO).summary(weekdays=WEEKDAYS) == text


def test_week_report_while_open() -> None:
    assert DEFAULT.week_report(jst(2026, 12, 1, 14, 0), weekdays=WEEKDAYS) == "\n".join(
        [
            "12/01 (火)  13:00-19:00",
            "12/02 (水)  13:00-19:00",
            "12/03 (木)  13:00-19:00",
            "12/04 (金)  13:00-19:00",
            "12/05 (土)  12:00-18:00",
            "12/06 (日)  closed",
            "12/07 (月)  closed",
            "now (2026-12-01 14:00 Asia/Tokyo): open",
            "next closing: 2026-12-01 19:00 (in 5 h 0 min)",
        ]
    )


def test_week_report_over_the_new_year_from_utc() -> None:
    assert SPECIAL.week_report(utc(2026, 12, 26, 9, 0), weekdays=WEEKDAYS) == "\n".join(
        [
            "12/26 (土)  12:00-18:00",
            "12/27 (日)  closed",
            "12/28 (月)  closed",
            "12/29 (火)  closed (yearly closure)",
            "12/30 (水)  10:00-12:00 (extra opening)",
            "12/31 (木)  closed (yearly closure)",
            "01/01 (金)  closed (yearly closure)",
            "now (2026-12-26 18:00 Asia/Tokyo): closed",
            "next opening: 2026-12-30 10:00 (in 3 d 16 h 0 min)",
        ]
    )


@pytest.mark.parametrize(
    ("schedule", "at", "line"),
    [
        (SPECIAL, jst(2027, 5, 4, 10, 0), "05/06 (木)  closed (closed date)"),
        (SPLIT, jst(2026, 12, 1, 10, 0), "12/01 (火)  13:00-15:00, 16:00-19:00"),
        (DEFAULT, jst(2026, 12, 1, 12, 59, 30), "next opening: 2026-12-01 13:00 (in 0 h 1 min)"),
        (EMPTY, jst(2026, 12, 1, 14, 0), "the schedule never opens"),
        (ALWAYS, jst(2026, 12, 1, 14, 0), f"next closing: none within {HORIZON_DAYS} days"),
    ],
)
def test_week_report_lines(schedule: Schedule, at: datetime, line: str) -> None:
    assert line in schedule.week_report(at, weekdays=WEEKDAYS).splitlines()


def test_the_weekday_names_are_the_callers() -> None:
    english = "MTWTFSS"
    assert DEFAULT.week_report(jst(2026, 12, 1, 14, 0), weekdays=english).startswith("12/01 (T)  13:00-19:00")
    assert DEFAULT.summary(weekdays=english).startswith("T〜F 13:00〜19:00、S 12:00〜18:00")
    assert DEFAULT.format_opening(jst(2026, 12, 2, 13, 0), jst(2026, 12, 1, 14, 0), weekdays=english) == "W曜日 13:00"
