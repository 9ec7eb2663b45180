"""The opening hours in words (bridge.core.schedule.wording): for the child and for an operator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from bridge.core.schedule.model import HORIZON_DAYS, Schedule
from bridge.core.schedule.parse import DEFAULT_HOURS
from bridge.core.schedule.wording import format_opening, summary, week_report
from tests.schedule_examples import ALWAYS, DEFAULT, EMPTY, SPECIAL, SPLIT, TOKYO, WEEKDAYS, jst, utc


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
    assert format_opening(DEFAULT, at, now, weekdays=WEEKDAYS) == text


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
    assert summary(Schedule.from_config(raw, TOKYO), weekdays=WEEKDAYS) == text


def test_week_report_while_open() -> None:
    assert week_report(DEFAULT, jst(2026, 12, 1, 14, 0), weekdays=WEEKDAYS) == "\n".join(
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
    assert week_report(SPECIAL, utc(2026, 12, 26, 9, 0), weekdays=WEEKDAYS) == "\n".join(
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
    assert line in week_report(schedule, at, weekdays=WEEKDAYS).splitlines()
