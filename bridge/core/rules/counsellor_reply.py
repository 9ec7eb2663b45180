"""A counsellor's message in a case thread: pushed to the child, or kept as a note; edits and
deletes are explained in the thread, since LINE cannot change what was sent."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from bridge.core.case import (
    Case,
)
from bridge.core.channels import channel_of
from bridge.core.deliveries import (
    Ephemeral,
    LinePush,
    PostRole,
    ThreadPost,
    retry_key,
)
from bridge.core.effects import (
    NOTHING,
    AssignCounsellor,
    Decision,
    NoteCounsellorReply,
)
from bridge.core.events import ThreadDelete, ThreadEdit, ThreadMessage
from bridge.core.ids import thread_started_by
from bridge.core.policy import Policy
from bridge.core.root import root_update
from bridge.core.text import batches, split_for_line
from bridge.core.timers.silence import silence_timers

# Subtypes of Slack messages that are a person writing in the thread. Everything else
# (bot messages, joins, channel changes, our own posts) is never relayed.
_HUMAN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def is_counsellor_reply(message: ThreadMessage, *, channel: str) -> bool:
    """True for a person's reply inside a thread of the consultation channel (channel: the one
    the case's thread is in, channel_of)."""
    return (
        message.channel == channel
        and message.subtype in _HUMAN_SUBTYPES
        and message.bot_id is None
        and message.user is not None
        and message.thread_ts is not None
        and message.thread_ts != thread_started_by(message.ts)  # not the thread's root
    )


def _folded(text: str) -> str:
    """Text as compared for the note prefix: NFKC (full-width ／／ is //), without format
    characters (zero-width spaces and joiners, direction marks), leading spaces dropped."""
    normal = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in normal if unicodedata.category(ch) != "Cf").lstrip()


def is_internal_note(message: ThreadMessage, policy: Policy) -> bool:
    """A thread reply that starts with the note prefix (however it was typed) stays in Slack."""
    return _folded(message.text).startswith(_folded(policy.note_prefix))


def on_counsellor_message(
    message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str, delivery_id: str, now: float
) -> Decision:
    """A counsellor's thread reply becomes pushes to the child (at most five texts each).

    The first counsellor to answer becomes the case's counsellor, and the root says so. channel
    is SLACK_CHANNEL_ID: a reply counts in the channel of the case's thread (channels.py).
    """
    if case is None or not is_counsellor_reply(message, channel=channel_of(case, channel)):
        return NOTHING
    if is_internal_note(message, policy):
        return NOTHING
    assert message.user is not None  # is_counsellor_reply checked it
    if not case.is_open:
        text = policy.render_parts("closed_case_ephemeral", case=case.number)
        return Decision(deliveries=(Ephemeral(case=case.number, user=message.user, text=text),))
    plain = message.text.strip()
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
    clock = (NoteCounsellorReply(case.number, now), *silence_timers(case, policy, now))
    if case.counsellor is not None:
        return Decision(deliveries=pushes, effects=clock)
    answered = replace(case, counsellor=message.user, counsellor_since=now)
    return Decision(
        deliveries=(*pushes, root_update(answered, policy)),
        effects=(AssignCounsellor(case.number, message.user, now), *clock),
    )


def _was_relayed(message: ThreadMessage, case: Case | None, policy: Policy, *, channel: str) -> bool:
    return (
        case is not None
        and is_counsellor_reply(message, channel=channel_of(case, channel))
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
        and is_counsellor_reply(edit.previous, channel=channel_of(case, channel))
        and is_internal_note(edit.previous, policy)
        and not is_internal_note(edit.current, policy)
    )
    if not (note_made_reply or _was_relayed(edit.previous, case, policy, channel=channel)):
        return NOTHING
    return Decision(
        deliveries=(ThreadPost(case=case.number, text=policy.render_parts("edit_note"), role=PostRole.NOTE),)
    )


def on_counsellor_delete(delete: ThreadDelete, case: Case | None, policy: Policy, *, channel: str) -> Decision:
    """Deleting a sent message does not unsend it on LINE; the thread says so."""
    if case is None or not _was_relayed(delete.previous, case, policy, channel=channel):
        return NOTHING
    return Decision(
        deliveries=(ThreadPost(case=case.number, text=policy.render_parts("delete_note"), role=PostRole.NOTE),)
    )
