"""The one-hour guideline and the unanswered alert: reminders in the thread, then the supervisors."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.alerts import thread_link
from bridge.core.case import (
    Case,
    CaseStatus,
    CloseReason,
)
from bridge.core.clock import local
from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    PostRole,
    ThreadPost,
)
from bridge.core.effects import (
    AUTO,
    NOTHING,
    Audit,
    CloseCase,
    Decision,
    Effect,
    ScheduleTimer,
)
from bridge.core.events import TimerKind
from bridge.core.parts import GroupMention, OnDuty
from bridge.core.policy import Policy
from bridge.core.root import root_update


def consultation_timers(case: Case, policy: Policy, start: float) -> list[Effect]:
    """The deadlines a consultation keeps from `start`: unanswered alert, the one-hour guideline."""
    deadlines = [
        (TimerKind.UNANSWERED, policy.unanswered_alert_seconds),
        (TimerKind.SOFT_WARNING, policy.soft_limit_warning_seconds),
        (TimerKind.SOFT_LIMIT, policy.soft_limit_seconds),
        (TimerKind.OVERTIME, policy.overtime_alert_seconds),
        (TimerKind.UNANSWERED_CLOSE, policy.unanswered_close_hours * 3600),
    ]
    return [ScheduleTimer(kind, start + seconds, case=case.number) for kind, seconds in deadlines if seconds > 0]


def on_unanswered_timer(case: Case | None, policy: Policy, *, now: float) -> Decision:
    """Nobody has answered a case yet: the channel is told, addressed to those on duty."""
    if case is None or not case.is_open or case.counsellor is not None:
        return NOTHING
    if not policy.schedule.is_open(local(now, policy)):
        return NOTHING  # the opening digest lists it instead
    mention = GroupMention(policy.on_duty_group) if policy.on_duty_group else OnDuty()
    waited = max(1, round((now - case.opened_at) / 60))
    text = policy.render_parts(
        "unanswered_alert",
        mention=mention,
        case=case.number,
        minutes=waited,
        link=thread_link(case),
    )
    return Decision(deliveries=(ChannelPost(text=text),))


def on_unanswered_close_timer(case: Case | None, policy: Policy, *, now: float) -> Decision:
    """Nobody answered a case for the policy's hours: it is closed, and its thread says so. The
    child is not written to (their next message opens a new case)."""
    if case is None or not case.is_open or case.counsellor is not None or case.hold:
        return NOTHING
    closed = replace(case, status=CaseStatus.CLOSED, closed_at=now, closed_reason=CloseReason.UNANSWERED)
    note = policy.render_parts("unanswered_closed_note", hours=policy.unanswered_close_hours)
    return Decision(
        deliveries=(ThreadPost(case=case.number, text=note, role=PostRole.NOTE), root_update(closed, policy)),
        effects=(
            CloseCase(case.number, CloseReason.UNANSWERED),
            Audit(case.number, AUTO, "close", f"nobody answered for {policy.unanswered_close_hours} hours"),
        ),
    )


def on_guideline_timer(kind: TimerKind, case: Case | None, policy: Policy, *, now: float) -> Decision:
    """The one-hour guideline: reminders in the thread, then the supervisors' channel.

    The child is never told. A case that is closed, or was opened while closed and has not
    started yet, is left alone.
    """
    if case is None or not case.is_open:
        return NOTHING
    seconds = {
        TimerKind.SOFT_WARNING: policy.soft_limit_warning_seconds,
        TimerKind.SOFT_LIMIT: policy.soft_limit_seconds,
        TimerKind.OVERTIME: policy.overtime_alert_seconds,
    }[kind]
    minutes = max(1, round(seconds / 60))
    if kind == TimerKind.OVERTIME:
        text = policy.render_parts("overtime_alert", case=case.number, minutes=minutes, link=thread_link(case))
        return Decision(deliveries=(ChannelPost(text=text, target=ChannelTarget.SUPERVISORS),))
    name = "soft_limit_warning_note" if kind == TimerKind.SOFT_WARNING else "soft_limit_note"
    return Decision(
        deliveries=(ThreadPost(case=case.number, text=policy.render_parts(name, minutes=minutes), role=PostRole.NOTE),)
    )
