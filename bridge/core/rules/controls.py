"""Case controls from Slack: close, block, unblock, escalate, hold, and the list of cases.

Pure decisions. Every request is checked the same way, in this order: the roster of the case
channel is known, the person is in it, the case exists, the role allows the action, the
reason is given. A refusal is an ephemeral answer to that person and changes nothing (a
refusal for membership or role is recorded in the audit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import assert_never

from bridge.core.alerts import supervisor_mention, thread_link, urgent_deliveries
from bridge.core.case import (
    Block,
    Case,
    CaseAction,
    CaseStatus,
    CloseReason,
    parse_case_number,
)
from bridge.core.deliveries import Delivery, Ephemeral, LinePush, PostRole, ThreadPost, retry_key
from bridge.core.effects import (
    NOTHING,
    Audit,
    BlockChild,
    ChangeMember,
    CloseCase,
    Decision,
    Effect,
    HoldCase,
    MarkUrgent,
    ReleaseFlood,
    UnblockChild,
)
from bridge.core.events import ControlRequested, ControlVia, MemberChanged
from bridge.core.ids import CaseNumber, SlackUserId
from bridge.core.parts import Quoted, Text, UserMention, join
from bridge.core.policy import Policy
from bridge.core.root import root_update, state_text

ACTIONS = frozenset(CaseAction)
SUPERVISOR_ACTIONS = frozenset({CaseAction.BLOCK, CaseAction.UNBLOCK})
REASON_REQUIRED = frozenset({CaseAction.BLOCK, CaseAction.ESCALATE})
USAGE = {
    CaseAction.HOLD: "hold_usage",
    CaseAction.CLOSE: "usage_close",
    CaseAction.BLOCK: "usage_block",
    CaseAction.UNBLOCK: "usage_unblock",
    CaseAction.ESCALATE: "usage_escalate",
}


def requested_action(request: ControlRequested) -> CaseAction | None:
    """The action asked for, if it is one the bridge knows (the request carries it as sent)."""
    return CaseAction(request.action) if request.action in ACTIONS else None


_MAX_REASON = 500  # characters kept of a reason or memo


@dataclass(frozen=True)
class Roster:
    """Who may use the controls: the case channels' members (of every channel of a pool), and
    the members of the supervisors' user group (supervisors listed by ID in the policy come on
    top)."""

    members: frozenset[SlackUserId]
    group_supervisors: frozenset[SlackUserId] = frozenset()

    def is_supervisor(self, user: SlackUserId, policy: Policy) -> bool:
        return user in policy.supervisors or user in self.group_supervisors


def split_command(text: str) -> tuple[str, str]:
    """'12 some reason' -> ('12', 'some reason'); full-width spaces separate too."""
    parts = text.replace("\u3000", " ").strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def requested_number(request: ControlRequested) -> CaseNumber | None:
    """The case number a command or button names (None for the shortcut, which names a thread)."""
    if request.thread_ts is not None:
        return None
    case_text = split_command(request.text)[0] if request.via is ControlVia.COMMAND else request.text
    return parse_case_number(case_text)


def on_control(
    request: ControlRequested,
    case: Case | None,
    policy: Policy,
    *,
    roster: Roster | None,
    block: Block | None,
    open_cases: list[Case],
    now: float,
    current: Case | None = None,
    blocked_from: Case | None = None,
) -> Decision:
    """Decide a control request. case is the case it names (by number or thread), if any;
    block is that case's child's block, if any; open_cases is for /cases; current is the
    child's open case when it is not the named one (a block closes it too); blocked_from is
    the case a block was made from, when an unblock names another case of the child."""
    user = request.user
    action = requested_action(request)
    # Buttons and the shortcut act inside a thread: their answers appear there; other answers in
    # the channel the request was made in.
    where = case.number if case is not None and request.via is not ControlVia.COMMAND else None

    def answer(text_name: str, **values: object) -> Ephemeral:
        return _answer(request, where, policy.render_parts(text_name, **values))

    def refuse(text_name: str, why: str) -> Decision:
        number = case.number if case is not None else None
        audit = Audit(number, user, f"refused:{action or request.action}", why, request.via)
        return Decision(deliveries=(answer(text_name),), effects=(audit,))

    if roster is None:
        return Decision(deliveries=(answer("control_roster_unknown"),))
    if user not in roster.members:
        return refuse("control_not_member", "not a member of the case channel")
    if action is CaseAction.CASES:
        return Decision(deliveries=(answer_cases(open_cases, policy, user=user, now=now, channel=request.channel),))
    if action is None:
        return NOTHING
    if request.via is ControlVia.COMMAND:
        case_text, reason = split_command(request.text)
    else:
        case_text, reason = request.text, request.reason.strip()
    reason = reason[:_MAX_REASON]
    if case is None:
        if request.thread_ts is not None:
            return Decision(deliveries=(answer("control_no_case"),))
        number = parse_case_number(case_text)
        if number is None:
            return Decision(deliveries=(answer(USAGE[action]),))
        return Decision(deliveries=(answer("control_unknown_case", case=number),))
    if action in SUPERVISOR_ACTIONS and not roster.is_supervisor(user, policy):
        return refuse("control_supervisors_only", "not a supervisor")
    if action in REASON_REQUIRED and not reason:
        return Decision(deliveries=(answer(USAGE[action]),))
    context = _Context(request, case, policy, reason, now, where, current, blocked_from)
    match action:
        case CaseAction.HOLD:
            return context.hold()
        case CaseAction.CLOSE:
            return context.close()
        case CaseAction.ESCALATE:
            return context.escalate()
        case CaseAction.BLOCK:
            return context.block(block)
        case CaseAction.UNBLOCK:
            return context.unblock(block)
        case _:
            assert_never(action)


@dataclass(frozen=True)
class _Context:
    request: ControlRequested
    case: Case
    policy: Policy
    reason: str
    now: float
    where: CaseNumber | None  # the thread the person's answers appear in (None: the channel)
    current: Case | None  # the child's open case, when the named case is an earlier one
    blocked_from: Case | None  # the case the block was made from, when another is named

    def _say(self, text_name: str, **values: object) -> Ephemeral:
        return _answer(self.request, self.where, self.policy.render_parts(text_name, **values))

    def _audit(self, action: CaseAction) -> Audit:
        return Audit(self.case.number, self.request.user, action, self.reason, self.request.via)

    def _note(self, text_name: str, **values: object) -> ThreadPost:
        return ThreadPost(case=self.case.number, text=self.policy.render_parts(text_name, **values), role=PostRole.NOTE)

    def _confirm(self, deliveries: list[Delivery], text_name: str) -> None:
        # A command's result is otherwise seen only in the thread: the person gets a line too.
        if self.request.via is ControlVia.COMMAND:
            deliveries.append(self._say(text_name, case=self.case.number))

    def hold(self) -> Decision:
        case, user = self.case, self.request.user
        if not case.is_open:
            return Decision(deliveries=(self._say("hold_not_open", case=case.number),))
        if case.hold:
            return Decision(deliveries=(self._say("hold_done", case=case.number),))
        deliveries: list[Delivery] = [
            self._note("hold_note", user=UserMention(user)),
            root_update(replace(case, hold=True), self.policy),
        ]
        self._confirm(deliveries, "hold_done")
        return Decision(tuple(deliveries), (HoldCase(case.number), self._audit(CaseAction.HOLD)))

    def close(self) -> Decision:
        case, user, policy = self.case, self.request.user, self.policy
        if not case.is_open:
            return Decision(deliveries=(self._say("control_case_closed", case=case.number),))
        closed = replace(
            case, status=CaseStatus.CLOSED, closed_at=self.now, closed_reason=CloseReason.COUNSELLOR, closed_by=user
        )
        memo = policy.render_parts("close_memo", memo=Quoted(self.reason)) if self.reason else ""
        deliveries: list[Delivery] = [
            LinePush(
                to=case.child_id,
                texts=(policy.render("closed_by_counsellor_child"),),
                retry_key=retry_key(f"close:{case.number}"),
                case=case.number,
            ),
            self._note("close_note", user=UserMention(user), memo=memo),
            root_update(closed, policy),
        ]
        self._confirm(deliveries, "close_done")
        return Decision(
            tuple(deliveries), (CloseCase(case.number, CloseReason.COUNSELLOR, by=user), self._audit(CaseAction.CLOSE))
        )

    def escalate(self) -> Decision:
        case, user, policy = self.case, self.request.user, self.policy
        alert = policy.render_parts(
            "escalation_alert",
            mention=supervisor_mention(policy),
            case=case.number,
            reason=Quoted(self.reason),
            user=UserMention(user),
            link=thread_link(case),
        )
        note = policy.render_parts("escalation_note", user=UserMention(user), reason=Quoted(self.reason))
        deliveries = urgent_deliveries(case, policy, alert=alert, note=note)
        effects: list[Effect] = [self._audit(CaseAction.ESCALATE)]
        if not case.urgent:
            deliveries.append(root_update(replace(case, urgent=True), policy))
            effects.insert(0, MarkUrgent(case.number))
        self._confirm(deliveries, "escalate_done")
        return Decision(tuple(deliveries), tuple(effects))

    def block(self, block: Block | None) -> Decision:
        case, user, policy = self.case, self.request.user, self.policy
        if block is not None:
            return Decision(deliveries=(self._say("block_already", case=case.number),))
        at = datetime.fromtimestamp(self.now, policy.timezone).strftime("%m/%d %H:%M")
        blocked = replace(case, blocked=True, blocked_count=0)
        effects: list[Effect] = [BlockChild(case.number, user, self.reason, self.now)]
        if case.is_open:
            blocked = replace(
                blocked, status=CaseStatus.CLOSED, closed_at=self.now, closed_reason=CloseReason.BLOCKED, closed_by=user
            )
            effects.append(CloseCase(case.number, CloseReason.BLOCKED, by=user))
        if case.flood_until is not None:  # what the cool-down deferred is dropped, not posted
            blocked = replace(blocked, flood_until=None, deferred_texts=0)
            effects.append(ReleaseFlood(case.number))
        effects.append(self._audit(CaseAction.BLOCK))
        note = policy.render_parts("block_note", user=UserMention(user), at=at, reason=Quoted(self.reason))
        deliveries: list[Delivery] = [
            ThreadPost(case=case.number, text=note, role=PostRole.NOTE),
            root_update(blocked, policy),
        ]
        current = self.current
        if current is not None and current.number != case.number and current.is_open:
            # Blocked from an earlier case: the consultation open now ends as well.
            closed = replace(
                current, status=CaseStatus.CLOSED, closed_at=self.now, closed_reason=CloseReason.BLOCKED, closed_by=user
            )
            effects.insert(1, CloseCase(current.number, CloseReason.BLOCKED, by=user))
            deliveries += [ThreadPost(case=current.number, text=note, role=PostRole.NOTE), root_update(closed, policy)]
        self._confirm(deliveries, "block_done")
        return Decision(tuple(deliveries), tuple(effects))

    def unblock(self, block: Block | None) -> Decision:
        case, user, policy = self.case, self.request.user, self.policy
        if block is None:
            return Decision(deliveries=(self._say("unblock_not_blocked", case=case.number),))
        deliveries: list[Delivery] = [
            self._note("unblock_note", user=UserMention(user)),
            root_update(replace(case, blocked=False), policy),
        ]
        if self.blocked_from is not None and self.blocked_from.number != case.number:
            deliveries.append(root_update(replace(self.blocked_from, blocked=False), policy))
        self._confirm(deliveries, "unblock_done")
        # The roots that showed the block: the case named, and the one it was made from.
        shown_on = tuple(dict.fromkeys((case.number, block.case)))
        return Decision(tuple(deliveries), (UnblockChild(case.number, shown_on), self._audit(CaseAction.UNBLOCK)))


def _answer(request: ControlRequested, where: CaseNumber | None, text: Text) -> Ephemeral:
    """An answer only the person who asked sees: in the case's thread, or where they asked."""
    channel = request.channel if where is None else None
    return Ephemeral(case=where, user=request.user, text=text, channel=channel)


def on_member_changed(event: MemberChanged, *, channel: str, pool: tuple[str, ...] = ()) -> Decision:
    """A join or leave of a case channel (channel: SLACK_CHANNEL_ID, or another of the pool)
    changes that channel's members at once (between full reads). Who may use the controls is
    everyone in any of them, so one who leaves one channel of the pool and stays in another
    keeps them. Other channels change nothing."""
    if event.channel == channel:
        return Decision(effects=(ChangeMember(event.user, event.joined),))
    if event.channel in pool:
        return Decision(effects=(ChangeMember(event.user, event.joined, channel=event.channel),))
    return NOTHING


def answer_cases(
    open_cases: list[Case], policy: Policy, *, user: SlackUserId, now: float, channel: str | None = None
) -> Ephemeral:
    """The open cases, oldest first: state, minutes waited for a first answer, counsellor; shown
    in the channel asked in (None: SLACK_CHANNEL_ID)."""
    if not open_cases:
        return Ephemeral(case=None, user=user, text=policy.render_parts("cases_none"), channel=channel)
    lines = [policy.render_parts("cases_header", count=len(open_cases))]
    for case in sorted(open_cases, key=lambda c: c.number):
        answered_at = case.counsellor_since if case.counsellor_since is not None else now
        lines.append(
            policy.render_parts(
                "cases_line",
                case=case.number,
                state=state_text(case, policy),
                waited=max(0, round((answered_at - case.opened_at) / 60)),
                counsellor=UserMention(case.counsellor) if case.counsellor else policy.render("cases_nobody"),
            )
        )
    return Ephemeral(case=None, user=user, text=join("\n", lines), channel=channel)
