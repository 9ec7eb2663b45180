"""Shortly before closing, every open thread is reminded that time is nearly up."""

from __future__ import annotations

from datetime import datetime

from bridge.core.case import (
    Case,
)
from bridge.core.clock import local
from bridge.core.deliveries import (
    PostRole,
    ThreadPost,
)
from bridge.core.effects import (
    NOTHING,
    Decision,
    Effect,
    ScheduleTimer,
)
from bridge.core.events import TimerKind
from bridge.core.policy import Policy


def _closing_reminder_timer(policy: Policy, at: datetime) -> list[Effect]:
    if not policy.closing_reminder_minutes:
        return []
    closing = policy.schedule.next_closing(at)
    if closing is None:
        return []
    remind_at = closing.timestamp() - policy.closing_reminder_minutes * 60
    if remind_at <= at.timestamp():
        return []  # too late for a reminder in this period
    return [ScheduleTimer(TimerKind.CLOSING, remind_at, instant=int(closing.timestamp()))]


def standing_timers(policy: Policy, *, now: float) -> tuple[Effect, ...]:
    """Timers that must exist whatever happens: the next closing reminder. The router
    schedules them regularly; scheduling one twice changes nothing."""
    return tuple(_closing_reminder_timer(policy, local(now, policy)))


def on_closing_timer(open_cases: list[Case], closing_at: float, policy: Policy, *, now: float) -> Decision:
    """Shortly before closing, every open case's thread is reminded that time is nearly up."""
    at = local(now, policy)
    if not policy.schedule.is_open(at) or now >= closing_at:
        return NOTHING
    minutes = max(1, round((closing_at - now) / 60))
    text = policy.render_parts(
        "closing_reminder", minutes=minutes, closing_at=local(closing_at, policy).strftime("%H:%M")
    )
    return Decision(
        deliveries=tuple(ThreadPost(case=c.number, text=text, role=PostRole.NOTE) for c in open_cases if c.is_open)
    )
