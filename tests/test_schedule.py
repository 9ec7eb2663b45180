"""The opening-hours rules of bridge.core.schedule.model: windows, closures, next opening/closing.

See tests/schedule_examples.py for the calendar and the example schedules.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

import pytest

from bridge.core.schedule import wording
from bridge.core.schedule.days import Window
from bridge.core.schedule.model import HORIZON_DAYS, Schedule
from bridge.core.schedule.parse import DEFAULT_HOURS
from tests.schedule_examples import (
    ADJACENT,
    ALWAYS,
    BERLIN_SUNDAY,
    DEFAULT,
    EMPTY,
    MIDNIGHT,
    SPECIAL,
    SPLIT,
    TOKYO,
    WEEKDAYS,
    jst,
    utc,
)

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
        lambda s, at: wording.week_report(s, at, weekdays=WEEKDAYS),
        lambda s, at: wording.format_opening(s, at, jst(2026, 12, 1), weekdays=WEEKDAYS),
        lambda s, at: wording.format_opening(s, jst(2026, 12, 1), at, weekdays=WEEKDAYS),
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
# The value: frozen, copied, windows
# --------------------------------------------------------------------------


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
    ("window", "text"),
    [(Window(780, 1140), "13:00-19:00"), (Window(0, 1440), "00:00-24:00"), (Window(65, 90), "01:05-01:30")],
)
def test_window_str(window: Window, text: str) -> None:
    assert str(window) == text


@pytest.mark.parametrize(("start", "end"), [(10, 5), (10, 10), (-1, 5), (0, 1441)])
def test_a_window_out_of_range_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        Window(start, end)
