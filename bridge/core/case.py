"""A case: one consultation and its Slack thread. Pure decisions, no I/O.

Each function takes what happened and the case as it stands, and returns a Decision:
the deliveries to make and the state change to apply. The router applies deliveries
first and the state change second, so replaying an event after a crash decides the same.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bridge.core.deliveries import Delivery, Ephemeral, LinePush, LineReply, Reaction, ThreadPost
from bridge.core.events import (
    ChildFollowed,
    ChildMessage,
    ThreadDelete,
    ThreadEdit,
    ThreadMessage,
)
from bridge.core.text import batches, escape_for_slack, slack_to_plain, split_for_line
from bridge.policy import Policy

DELIVERED_REACTION = "white_check_mark"
FAILED_REACTION = "warning"

# Subtypes of Slack messages that are a person writing in the thread. Everything else
# (bot messages, joins, channel changes, our own posts) is never relayed.
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

# A namespace for retry keys, so the same delivery id always yields the same key.
_RETRY_KEY_NAMESPACE = uuid.UUID("0b7ad7b1-5a1e-4f7e-9a51-6a3c2b0d5e11")


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(StrEnum):
    UNFOLLOWED = "unfollowed"


@dataclass(frozen=True)
class Case:
    """A consultation. The number is the only handle Slack ever sees."""

    number: int
    status: CaseStatus
    child_id: str
    opened_at: float
    thread_ts: str | None = None
    closed_at: float | None = None
    closed_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status is CaseStatus.OPEN


@dataclass(frozen=True)
class Decision:
    """Deliveries to make, then (optionally) the case to close and why."""

    deliveries: tuple[Delivery, ...] = ()
    close: tuple[int, CloseReason] | None = None


NOTHING = Decision()


def retry_key(delivery_id: str) -> str:
    """A LINE X-Line-Retry-Key derived from the delivery id: stable across retries and replays."""
    return str(uuid.uuid5(_RETRY_KEY_NAMESPACE, delivery_id))


def root_text(case: Case, policy: Policy) -> str:
    """The text of the case's root message in Slack."""
    opened = datetime.fromtimestamp(case.opened_at, policy.timezone)
    weekday = "月火水木金土日"[opened.weekday()]
    return policy.render("case_root", case=case.number, opened_at=opened.strftime(f"%m/%d({weekday}) %H:%M"))


# --- LINE -> Slack -------------------------------------------------------------------


def on_child_message(message: ChildMessage, case: Case) -> Decision:
    """The child's message goes to the case's thread, escaped so it can ping nobody."""
    shown = escape_for_slack(message.text) if message.text is not None else message.description or "[メッセージ]"
    return Decision(deliveries=(ThreadPost(case=case.number, text=shown, role="child"),))


def on_child_followed(event: ChildFollowed, policy: Policy) -> Decision:
    """A new friend gets the welcome text, by reply while the token is fresh."""
    delivery_id = f"welcome:{event.event_id}"
    return Decision(
        deliveries=(
            LineReply(
                to=event.child_id,
                reply_token=event.reply_token,
                event_ms=event.timestamp_ms,
                texts=(policy.render("welcome"),),
                retry_key=retry_key(delivery_id),
            ),
        )
    )


def on_child_unfollowed(case: Case | None, policy: Policy) -> Decision:
    """A child who blocks the account ends their open case; the thread is told."""
    if case is None or not case.is_open:
        return NOTHING
    note = ThreadPost(case=case.number, text=policy.render("unfollow_note", case=case.number), role="note")
    return Decision(deliveries=(note,), close=(case.number, CloseReason.UNFOLLOWED))


# --- Slack -> LINE -------------------------------------------------------------------


def is_counsellor_reply(message: ThreadMessage, *, channel: str) -> bool:
    """True for a person's reply inside a thread of the consultation channel."""
    return (
        message.channel == channel
        and message.subtype in _HUMAN_SUBTYPES
        and message.bot_id is None
        and message.user is not None
        and message.thread_ts is not None
        and message.thread_ts != message.ts
    )


def is_internal_note(message: ThreadMessage, policy: Policy) -> bool:
    return message.text.lstrip().startswith(policy.note_prefix)


def on_counsellor_message(
    message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str, delivery_id: str
) -> Decision:
    """A counsellor's thread reply becomes pushes to the child (at most five texts each)."""
    if case is None or not is_counsellor_reply(message, channel=channel) or is_internal_note(message, policy):
        return NOTHING
    assert message.user is not None  # is_counsellor_reply checked it
    if not case.is_open:
        text = policy.render("closed_case_ephemeral", case=case.number)
        return Decision(deliveries=(Ephemeral(case=case.number, user=message.user, text=text),))
    plain = slack_to_plain(message.text).strip()
    if not plain:
        return NOTHING
    groups = batches(split_for_line(plain), 5)
    pushes = tuple(
        LinePush(
            to=case.child_id,
            texts=tuple(group),
            retry_key=retry_key(f"{delivery_id}:{index}"),
            case=case.number,
            slack_ts=message.ts,
            final_part=index == len(groups) - 1,
        )
        for index, group in enumerate(groups)
    )
    return Decision(deliveries=pushes)


def _was_relayed(message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str) -> bool:
    return (
        case is not None
        and is_counsellor_reply(message, channel=channel)
        and not is_internal_note(message, policy)
        and (case.closed_at is None or float(message.ts) < case.closed_at)
    )


def on_counsellor_edit(edit: ThreadEdit, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """Editing a sent message changes nothing on LINE; the thread says so."""
    if case is None or edit.previous.text == edit.current.text:
        return NOTHING  # Slack also reports link unfurls as edits
    # A note turned into a reply by an edit is not sent either: say so, or the child waits.
    note_made_reply = (
        case.is_open
        and is_counsellor_reply(edit.previous, channel=channel)
        and is_internal_note(edit.previous, policy)
        and not is_internal_note(edit.current, policy)
    )
    if not (note_made_reply or _was_relayed(edit.previous, case, policy, channel=channel)):
        return NOTHING
    return Decision(deliveries=(ThreadPost(case=case.number, text=policy.render("edit_note"), role="note"),))


def on_counsellor_delete(delete: ThreadDelete, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """Deleting a sent message does not unsend it on LINE; the thread says so."""
    if case is None or not _was_relayed(delete.previous, case, policy, channel=channel):
        return NOTHING
    return Decision(deliveries=(ThreadPost(case=case.number, text=policy.render("delete_note"), role="note"),))


# --- delivery outcomes ---------------------------------------------------------------


def after_line_delivered(push: LinePush | LineReply) -> tuple[Delivery, ...]:
    """What follows a push LINE accepted: the delivered mark once the last part is in."""
    if isinstance(push, LinePush) and push.final_part and push.slack_ts and push.case is not None:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=DELIVERED_REACTION),)
    return ()


def after_line_failed(push: LinePush | LineReply, reason: str, policy: Policy) -> tuple[Delivery, ...]:
    """What follows a push that finally failed: a warning mark and a note saying why."""
    if push.case is None:
        return ()
    note = ThreadPost(case=push.case, text=policy.render("delivery_failed_note", reason=reason), role="note")
    if isinstance(push, LinePush) and push.slack_ts:
        return (Reaction(case=push.case, message_ts=push.slack_ts, name=FAILED_REACTION), note)
    return (note,)
