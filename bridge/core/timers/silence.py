"""Silence after a counsellor's message: a check-in, then the automatic close."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.case import (
    Case,
    CaseStatus,
    CloseReason,
)
from bridge.core.deliveries import (
    LinePush,
    PostRole,
    ThreadPost,
    retry_key,
)
from bridge.core.effects import (
    NOTHING,
    CloseCase,
    Decision,
    Effect,
    ScheduleTimer,
)
from bridge.core.events import TimerKind
from bridge.core.policy import Policy
from bridge.core.root import root_update


def silence_timers(case: Case, policy: Policy, replied_at: float) -> list[Effect]:
    """After a counsellor's message: the check-in and the close, named after that message's
    time, so a later message (of either side) makes them moot instead of moving them."""
    replied_ms = round(replied_at * 1000)
    timers = [
        (TimerKind.IDLE_WARNING, policy.idle_warning_seconds),
        (TimerKind.IDLE_CLOSE, policy.idle_close_seconds),
    ]
    return [
        ScheduleTimer(kind, replied_at + seconds, case=case.number, instant=replied_ms)
        for kind, seconds in timers
        if seconds > 0
    ]


def _silence_still_holds(case: Case | None, replied_ms: int) -> bool:
    """The counsellor's message the timer was set for is still the last word, unanswered."""
    if case is None or not case.is_open or case.hold or case.last_counsellor_at is None:
        return False
    if round(case.last_counsellor_at * 1000) != replied_ms:
        return False  # a later counsellor message set timers of its own
    return case.last_child_at is None or round(case.last_child_at * 1000) < replied_ms


def on_silence_timer(kind: TimerKind, replied_ms: int, case: Case | None, policy: Policy, *, now: float) -> Decision:
    """Ten minutes without a reply may end a consultation: first a check-in, then the close.
    replied_ms names the counsellor's message the timer was set after (ms since the epoch)."""
    if not _silence_still_holds(case, replied_ms):
        return NOTHING
    assert case is not None
    if kind == TimerKind.IDLE_WARNING:
        checkin = LinePush(
            to=case.child_id,
            texts=(policy.render("idle_checkin"),),
            retry_key=retry_key(f"idle-warning:{case.number}:{replied_ms}"),
            case=case.number,
        )
        return Decision(deliveries=(checkin,))
    closed = replace(case, status=CaseStatus.CLOSED, closed_at=now, closed_reason=CloseReason.IDLE)
    minutes = max(1, round(policy.idle_close_seconds / 60))
    return Decision(
        deliveries=(
            LinePush(
                to=case.child_id,
                texts=(policy.render("idle_closed_child"),),
                retry_key=retry_key(f"idle-close:{case.number}:{replied_ms}"),
                case=case.number,
            ),
            ThreadPost(
                case=case.number, text=policy.render_parts("idle_closed_note", minutes=minutes), role=PostRole.NOTE
            ),
            root_update(closed, policy),
        ),
        effects=(CloseCase(case.number, CloseReason.IDLE),),
    )
