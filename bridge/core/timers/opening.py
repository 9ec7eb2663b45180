"""The opening digest: the cases that came in while the service was closed."""

from __future__ import annotations

from bridge.core.case import (
    Case,
    conversation_is_live,
)
from bridge.core.clock import day_time, local
from bridge.core.deliveries import (
    ChannelPost,
)
from bridge.core.effects import (
    NOTHING,
    ClearClosedArrivals,
    Decision,
    Effect,
    ScheduleTimer,
)
from bridge.core.events import TimerKind
from bridge.core.policy import Policy
from bridge.core.timers.busy import busy_timer
from bridge.core.timers.guideline import consultation_timers


def opening_timer(opening_at: float) -> ScheduleTimer:
    """The timer of the opening digest, named by the opening."""
    return ScheduleTimer(TimerKind.OPENING, opening_at, instant=int(opening_at))


def on_opening_timer(arrivals: list[tuple[Case, float]], policy: Policy, *, now: float, opening_at: float) -> Decision:
    """The service opened: one channel message lists the cases that came in while closed,
    oldest first, and each of them gets its busy-notice timer from the opening on."""
    # Judged at the opening instant at the earliest: clocks of Redis and workers may differ.
    at = local(max(now, opening_at), policy)
    if not policy.schedule.is_open(at):
        # The hours changed, or the timer fired after a whole open period: wait for the next one.
        opening = policy.schedule.next_opening(at)
        if opening is None:
            return NOTHING
        return Decision(effects=(opening_timer(opening.timestamp()),))
    waiting = sorted(
        ((arrived, case) for case, arrived in arrivals if case.is_open and not conversation_is_live(case, now)),
        key=lambda p: p[0],
    )
    effects: list[Effect] = [ClearClosedArrivals(tuple(case.number for case, _ in arrivals))]
    for _, case in waiting:
        if policy.busy_notice_seconds and case.counsellor is None and not case.busy_notified:
            effects.append(busy_timer(case.number, at.timestamp() + policy.busy_notice_seconds))
        if case.arrived_closed:  # its consultation starts now: the guideline counts from here
            effects.extend(consultation_timers(case, policy, at.timestamp()))
    if not waiting:
        return Decision(effects=tuple(effects))
    lines = "\n".join(
        policy.render("opening_digest_line", case=case.number, arrived_at=day_time(arrived, policy))
        for arrived, case in waiting
    )
    digest = ChannelPost(text=policy.render_parts("opening_digest", count=len(waiting), cases=lines))
    return Decision(deliveries=(digest,), effects=tuple(effects))
