"""What reaches the supervisors: their mention, the alert with its checklist, a link to the thread."""

from __future__ import annotations

from bridge.core.case import (
    Case,
)
from bridge.core.deliveries import (
    ChannelPost,
    ChannelTarget,
    Delivery,
    PostRole,
    ThreadPost,
)
from bridge.core.parts import GroupMention, Text, ThreadLink
from bridge.core.policy import Policy


def supervisor_mention(policy: Policy) -> Text:
    """The supervisors' group mention, followed by a space, or nothing when there is no group."""
    return (GroupMention(policy.supervisor_group), " ") if policy.supervisor_group else ()


def urgent_deliveries(case: Case, policy: Policy, *, alert: Text, note: Text) -> list[Delivery]:
    """What marking a case urgent sends: the alert to the supervisors' channel, the note and
    the emergency checklist in the thread. The child is told nothing."""
    return [
        ChannelPost(text=alert, target=ChannelTarget.SUPERVISORS),
        ThreadPost(case=case.number, text=note, role=PostRole.NOTE),
        ThreadPost(case=case.number, text=policy.render_parts("emergency_checklist"), role=PostRole.NOTE),
    ]


def thread_link(case: Case) -> ThreadLink:
    """A link to the case's thread, as far as the case knows it (no thread yet: no link)."""
    return ThreadLink(case.number, case.thread_ts, case.channel)
