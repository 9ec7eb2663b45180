"""A child's message on a case: relayed to the thread as the child's words; risk words, floods and the
out-of-hours reply decided on the way."""

from __future__ import annotations

from dataclasses import replace

from bridge.core.alerts import supervisor_mention, thread_link, urgent_deliveries
from bridge.core.case import (
    Case,
    Queue,
    conversation_is_live,
)
from bridge.core.clock import local
from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    Delivery,
    LineReply,
    PostRole,
    RootUpdate,
    ThreadPost,
    retry_key,
)
from bridge.core.effects import (
    AUTO,
    Audit,
    Decision,
    DeferMessage,
    Effect,
    MarkArrivedClosed,
    MarkBusyNotified,
    MarkClosedNotice,
    MarkUrgent,
    NoteChildMessage,
    NoteClosedArrival,
    NoteRisks,
    ScheduleTimer,
    StartFlood,
)
from bridge.core.events import ChildMessage, Media, TimerKind
from bridge.core.parts import ChildWords
from bridge.core.policy import Policy
from bridge.core.root import root_update
from bridge.core.rules.floods import MAX_DEFERRED_TEXTS, Recent, is_flood
from bridge.core.rules.risk import RiskLevel, labels, risks_in, urgent_among
from bridge.core.text import describe_line_message
from bridge.core.timers.busy import busy_timer
from bridge.core.timers.guideline import consultation_timers
from bridge.core.timers.opening import opening_timer


def on_child_message(
    message: ChildMessage,
    case: Case,
    policy: Policy,
    *,
    now: float,
    created: bool,
    queue: Queue | None = None,
    closed_notice: str | None = None,
    recent: Recent | None = None,
) -> Decision:
    """The child's message goes to the case's thread, as the child's words (it can ping nobody).

    Risk words mark the case urgent and alert the supervisors (once per case). Beyond the
    flood limits (recent: what the child sent within the window, this message included),
    the child's messages are deferred until the cool-down ends, and the child, the thread
    and the supervisors are told once.

    Outside the hours, a child no counsellor is talking with gets one automatic reply per
    closed period (with the 24-hour crisis lines when the message has risk words), and the
    case joins the list the opening digest shows. In the hours, a new case is told at once
    when capacity is full, or gets a timer for the busy notice.
    """
    shown = message.text if message.text is not None else describe_media(message.media, policy)
    sticker = message.media is not None and message.media.type == "sticker"
    deliveries: list[Delivery] = []
    effects: list[Effect] = [NoteChildMessage(case.number, now)]  # resets the silence clock
    updated = case  # the root is updated once, at the end, if anything on it changed
    # Risk words come first: a flood must not hide them. Each category alerts once per case.
    found = risks_in(message.text, policy.safety)
    risky = bool(urgent_among(found))
    new = tuple(c for c in found if c.key not in case.risks)
    new_urgent = urgent_among(new)
    new_watch = tuple(c for c in new if c.level is RiskLevel.WATCH)
    first_risk = bool(new_urgent) and not case.urgent
    # A cool-down lasts until its timer ends it (not merely until its time), so what was
    # deferred reaches the thread before anything sent after it.
    flooding = case.flood_until is not None
    if not flooding and is_flood(
        recent, sticker=sticker, max_messages=policy.flood_max_messages, max_stickers=policy.flood_max_stickers
    ):
        flooding = True
        until = now + policy.flood_cooldown_seconds
        updated = replace(updated, flood_until=until)
        until_text = local(until, policy).strftime("%H:%M")
        link = thread_link(case)
        deliveries += [
            ThreadPost(case=case.number, text=policy.render_parts("flood_note", until=until_text), role=PostRole.NOTE),
            ChannelPost(
                text=policy.render_parts("flood_alert", case=case.number, until=until_text, link=link),
                target=ChannelTarget.SUPERVISORS,
            ),
            _answer(message, policy.render("flood_notice_child"), purpose="flood", case=case),
        ]
        effects += [
            StartFlood(case.number, until),
            ScheduleTimer(TimerKind.FLOOD_RELEASE, until, case=case.number, instant=int(until)),
            Audit(case.number, AUTO, "flood", f"{recent.messages if recent else 0} messages in the window"),
        ]
    deferred = flooding and not risky  # risk words are never deferred: the supervisors are sent to read them
    if deferred:
        # Posted when the cool-down ends; beyond what a cool-down keeps, counted only.
        dropped = not sticker and case.deferred_texts >= MAX_DEFERRED_TEXTS
        effects.append(DeferMessage(case.number, None if sticker or dropped else shown, dropped=dropped))
    else:
        deliveries.insert(0, ThreadPost(case=case.number, text=(ChildWords(shown),), role=PostRole.CHILD))
    if new:
        updated = replace(updated, risks=case.risks | {c.key for c in new})
        effects.append(NoteRisks(case.number, updated.risks))
    if new_urgent:
        category = labels(new_urgent)
        alert = policy.render_parts(
            "risk_alert",
            mention=supervisor_mention(policy),
            case=case.number,
            link=thread_link(case),
            category=category,
        )
        note = policy.render_parts("risk_note", category=category)
        if case.urgent:  # marked already (escalated, or another category): the alert and the note again
            deliveries += [
                ChannelPost(text=alert, target=ChannelTarget.SUPERVISORS),
                ThreadPost(case=case.number, text=note, role=PostRole.NOTE),
            ]
        else:
            updated = replace(updated, urgent=True)
            deliveries += urgent_deliveries(case, policy, alert=alert, note=note)
            effects.append(MarkUrgent(case.number))
        effects.append(Audit(case.number, AUTO, "risk", f"risk words in a message: {category}"))
    if new_watch:
        category = labels(new_watch)
        note = policy.render_parts("risk_watch_note", category=category)
        deliveries.append(ThreadPost(case=case.number, text=note, role=PostRole.NOTE))
        effects.append(Audit(case.number, AUTO, "risk_watch", f"words to watch in a message: {category}"))
    # After the child's post, which may be the one that posts the root; the root shows no categories.
    if replace(updated, risks=case.risks) != case:
        deliveries.append(root_update(updated, policy))
    schedule = policy.schedule
    at = local(now, policy)
    if not schedule.is_open(at):  # deferred or not, the child hears that the service is closed
        if conversation_is_live(case, now):
            # The counsellor answering after closing carries on: no automatic reply, except the
            # crisis lines with the case's first risk words (that counsellor may have gone).
            if first_risk:
                deliveries.append(_answer(message, policy.render("crisis_lines"), purpose="crisis", case=case))
            return Decision(tuple(deliveries), tuple(effects))
        opening = schedule.next_opening(at)
        effects.append(NoteClosedArrival(case.number, now))
        if opening is not None:
            effects.append(opening_timer(opening.timestamp()))
        if not case.arrived_closed:
            effects.append(MarkArrivedClosed(case.number))
            if not created:  # an older case waits again: its root says so
                deliveries = [d for d in deliveries if not isinstance(d, RootUpdate)]
                deliveries.append(root_update(replace(updated, arrived_closed=True), policy))
        period = opening.isoformat() if opening else "never"
        # The notice names the period, and whether the crisis lines went out in it too.
        with_crisis_lines = period + "+crisis"
        texts: list[str] = []
        if closed_notice not in (period, with_crisis_lines):
            texts.append(
                policy.render("closed_reply", next_opening=policy.format_opening(opening, at))
                if opening
                else policy.render("closed_reply_no_opening")
            )
        if risky and closed_notice != with_crisis_lines:
            # Nobody can answer now: the child hears where help is, day and night (once a period).
            texts.append(policy.render("crisis_lines"))
        if texts:
            deliveries.append(_answer(message, *texts, purpose=f"closed:{message.event_id}", case=case))
            until = opening.timestamp() if opening else now + 7 * 86400
            told = with_crisis_lines if risky or closed_notice == with_crisis_lines else period
            effects.append(MarkClosedNotice(message.child_id, told, until))
        return Decision(tuple(deliveries), tuple(effects))
    if created:
        if queue is not None and queue.open_cases > policy.capacity:
            deliveries.append(
                _answer(message, policy.render("busy_notice", place=queue.place), purpose="busy", case=case)
            )
            effects.append(MarkBusyNotified(case.number))
        elif policy.busy_notice_seconds:
            effects.append(busy_timer(case.number, case.opened_at + policy.busy_notice_seconds))
        effects.extend(consultation_timers(case, policy, case.opened_at))
    return Decision(tuple(deliveries), tuple(effects))


def _answer(message: ChildMessage, *texts: str, purpose: str, case: Case) -> LineReply:
    return LineReply(
        to=message.child_id,
        reply_token=message.reply_token,
        event_ms=message.timestamp_ms,
        texts=texts,
        retry_key=retry_key(f"{purpose}:{message.event_id}"),
        case=case.number,
    )


def describe_media(media: Media | None, policy: Policy) -> str:
    """What the thread shows for a sticker, image or other non-text message (labels from the policy)."""
    if media is None:
        return describe_line_message("unknown", labels=policy.media_labels())
    return describe_line_message(
        media.type,
        sticker_keywords=media.keywords,
        file_name=media.file_name,
        duration_ms=media.duration_ms,
        title=media.title,
        labels=policy.media_labels(),
    )
