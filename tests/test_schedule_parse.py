"""The [hours] table of the policy file, parsed and validated (bridge.core.schedule.parse)."""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from typing import Any

import pytest

from bridge.core.schedule import wording
from bridge.core.schedule.days import Window
from bridge.core.schedule.model import Schedule
from bridge.core.schedule.parse import ScheduleError
from tests.schedule_examples import DEFAULT, SPLIT, TOKYO, WEEKDAYS, jst

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
    assert wording.summary(schedule, weekdays=WEEKDAYS) == wording.summary(DEFAULT, weekdays=WEEKDAYS)


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
