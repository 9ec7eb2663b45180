"""The root message of a case's thread: its text, its state line and the actions it offers."""

from __future__ import annotations

from bridge.core.case import (
    Case,
    CaseAction,
    CloseReason,
)
from bridge.core.clock import day_time, local
from bridge.core.deliveries import (
    RootUpdate,
)
from bridge.core.parts import Text, UserMention, concat
from bridge.core.policy import Policy


def state_text(case: Case, policy: Policy) -> Text:
    """The case's state as the root message shows it, with its markers (urgent, blocked, ...)."""
    # Texts lose their outer spaces when the policy is read: the markers are spaced here.
    shown: list[str] = []
    if case.hold and case.is_open:
        shown.append(policy.render("state_held"))
    if case.urgent:
        shown.append(policy.render("state_urgent"))
    if case.blocked:
        shown.append(policy.render("state_blocked", count=case.blocked_count))
    if case.flood_until is not None:
        shown.append(policy.render("state_flood", until=local(case.flood_until, policy).strftime("%H:%M")))
    markers = "".join(f"  {marker}" for marker in shown)
    if not case.is_open:
        how_text = {
            CloseReason.UNFOLLOWED: "closed_how_unfollowed",
            CloseReason.IDLE: "closed_how_idle",
            CloseReason.COUNSELLOR: "closed_how_counsellor",
            CloseReason.BLOCKED: "closed_how_blocked",
            CloseReason.UNANSWERED: "closed_how_unanswered",
        }
        how: Text = ()
        if case.closed_reason in how_text:
            closer = UserMention(case.closed_by) if case.closed_by else ""  # only a counsellor's close names one
            how = policy.render_parts(how_text[CloseReason(case.closed_reason)], user=closer)
        at = local(case.closed_at or case.opened_at, policy).strftime("%H:%M")
        closed = policy.render_parts("state_closed", how=how or concat(str(case.closed_reason or "")), at=at)
        return concat(closed, markers)
    if case.counsellor:
        since = local(case.counsellor_since or case.opened_at, policy).strftime("%H:%M")
        answered = policy.render_parts("state_with_counsellor", counsellor=UserMention(case.counsellor), since=since)
        return concat(answered, markers)
    if case.arrived_closed:
        return concat(policy.render_parts("state_waiting_closed", since=day_time(case.opened_at, policy)), markers)
    return concat(policy.render_parts("state_waiting", since=local(case.opened_at, policy).strftime("%H:%M")), markers)


def root_text(case: Case, policy: Policy) -> Text:
    """The text of the case's root message in Slack: its number, when it opened, its state,
    and the numbers of the child's earlier cases (the only history Slack shows)."""
    cases = ", ".join(f"#{n}" for n in case.earlier)
    earlier = "  " + policy.render("earlier_cases", cases=cases) if case.earlier else ""
    return policy.render_parts(
        "case_root",
        case=case.number,
        opened_at=day_time(case.opened_at, policy),
        state=state_text(case, policy),
        earlier=earlier,
    )


def root_buttons(case: Case) -> tuple[CaseAction, ...]:
    """The actions the root offers: hold while the automatic close can still end the case,
    close while open, escalate always, block or unblock (the role is checked when used)."""
    buttons: list[CaseAction] = []
    if case.is_open:
        if not case.hold:
            buttons.append(CaseAction.HOLD)
        buttons.append(CaseAction.CLOSE)
    buttons.append(CaseAction.ESCALATE)
    if case.blocked:
        buttons.append(CaseAction.UNBLOCK)
    elif case.is_open:
        buttons.append(CaseAction.BLOCK)
    return tuple(buttons)


def root_update(case: Case, policy: Policy) -> RootUpdate:
    """The root message as it should now read, with the buttons that can be used."""
    return RootUpdate(case=case.number, text=root_text(case, policy), buttons=root_buttons(case))
