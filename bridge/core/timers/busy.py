"""The busy notice: a child nobody has answered yet hears once that replies may take a while."""

from __future__ import annotations

from bridge.core.case import (
    Case,
    Queue,
)
from bridge.core.clock import local
from bridge.core.deliveries import (
    LinePush,
    retry_key,
)
from bridge.core.effects import (
    NOTHING,
    Decision,
    MarkBusyNotified,
    ScheduleTimer,
)
from bridge.core.events import TimerKind
from bridge.core.ids import CaseNumber
from bridge.core.policy import Policy


def busy_timer(number: CaseNumber, at: float) -> ScheduleTimer:
    """A busy-notice timer; the time in its name keeps a re-armed timer distinct from a fired one."""
    return ScheduleTimer(TimerKind.BUSY, at, case=number, instant=int(at))


def on_busy_timer(case: Case | None, policy: Policy, *, now: float, queue: Queue | None) -> Decision:
    """No counsellor answered in time: the child hears once that replies may take a while.

    If the service closed meanwhile, the timer moves to the next opening.
    """
    if case is None or not case.is_open or case.counsellor is not None or case.busy_notified:
        return NOTHING
    at = local(now, policy)
    if not policy.schedule.is_open(at):
        opening = policy.schedule.next_opening(at)
        if opening is None or not policy.busy_notice_seconds:
            return NOTHING
        return Decision(effects=(busy_timer(case.number, opening.timestamp() + policy.busy_notice_seconds),))
    place = queue.place if queue else 1
    push = LinePush(
        to=case.child_id,
        texts=(policy.render("busy_notice", place=place),),
        retry_key=retry_key(f"busy-timer:{case.number}"),
        case=case.number,
    )
    return Decision(deliveries=(push,), effects=(MarkBusyNotified(case.number),))
