"""How the opening hours are put into words, for the child and for an operator.

A caller can rely on :func:`format_opening` and :func:`summary` using the templates and weekday
names it passes (the policy's texts; Japanese defaults), and on :func:`week_report` giving the
same lines for the same schedule and instant, in the schedule's zone, whatever zone the instant
is in. Naive datetimes are refused with ValueError. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from bridge.core.schedule.days import DAY_MINUTES, MonthDay, Window, hhmm, require_aware
from bridge.core.schedule.model import HORIZON_DAYS, Schedule

__all__ = ["format_opening", "summary", "week_report"]


def format_opening(
    schedule: Schedule,
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
    require_aware(at)
    require_aware(now, "now")
    local = at.astimezone(schedule.timezone)
    days_ahead = (local.date() - schedule.local_date(now)).days
    values = {
        "weekday": weekdays[local.weekday()],
        "time": f"{local.hour:02d}:{local.minute:02d}",
        "month": local.month,
        "day": local.day,
    }
    return (this_week if 0 <= days_ahead <= 6 else later).format_map(values)


def summary(
    schedule: Schedule,
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
    for i, windows in enumerate(schedule.weekly):
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
        hours = "・".join(f"{hhmm(w.start)}〜{hhmm(w.end)}" for w in windows)
        parts.append(f"{days} {hours}")
    if not parts:
        return none
    text = "、".join(parts)
    if schedule.yearly_closures:
        text += closures.format(closures="、".join(_closure_ja(c) for c in schedule.yearly_closures))
    return text


def week_report(schedule: Schedule, at: datetime, *, weekdays: str) -> str:
    """Several lines for an operator: the seven days from ``at``'s local date, now, and what is next.

    Each day reads ``"12/01 (火)  13:00-19:00"``, ``"12/29 (火)  closed (yearly closure)"``
    or ``"... closed"``; an extra opening is marked ``(extra opening)``.  Then
    ``"now (2026-12-01 14:00 Asia/Tokyo): open"`` and ``"next closing: ... (in 5 h 0 min)"``
    / ``"next opening: ..."`` / ``"the schedule never opens"``.  ``weekdays`` names Monday first.
    """
    require_aware(at)
    local = at.astimezone(schedule.timezone)
    lines = []
    for offset in range(7):
        day = local.date() + timedelta(days=offset)
        label = f"{day:%m/%d} ({weekdays[day.weekday()]})  "
        windows = schedule.windows_on(day)
        if windows:
            extra = " (extra opening)" if day in schedule.extra_openings else ""
            lines.append(label + ", ".join(str(w) for w in windows) + extra)
        else:
            reason = schedule.closure_reason(day)
            lines.append(label + (f"closed ({reason})" if reason else "closed"))
    open_now = schedule.is_open(at)
    lines.append(f"now ({local:%Y-%m-%d %H:%M} {schedule.timezone.key}): {'open' if open_now else 'closed'}")
    if open_now:
        closing = schedule.next_closing(at)
        if closing is None:
            lines.append(f"next closing: none within {HORIZON_DAYS} days")
        else:
            lines.append(f"next closing: {closing:%Y-%m-%d %H:%M} (in {_duration(closing - at)})")
    else:
        opening = schedule.next_opening(at)
        if opening is None:
            lines.append("the schedule never opens")
        else:
            lines.append(f"next opening: {opening:%Y-%m-%d %H:%M} (in {_duration(opening - at)})")
    return "\n".join(lines)


def _closure_ja(closure: tuple[MonthDay, MonthDay]) -> str:
    (m1, d1), (m2, d2) = closure
    if (m1, d1) == (m2, d2):
        return f"{m1}月{d1}日"
    return f"{m1}月{d1}日〜{m2}月{d2}日"


def _duration(delta: timedelta) -> str:
    # Rounded up, so "in 0 min" only ever means "now".
    minutes = math.ceil(delta.total_seconds() / 60)
    days, rest = divmod(minutes, DAY_MINUTES)
    text = f"{rest // 60} h {rest % 60} min"
    return f"{days} d {text}" if days else text
