"""What reaches the supervisors: their mention, the alert with its checklist, a link to the thread."""

from __future__ import annotations

from bridge.core.case import (
    Case,
)
from bridge.core.deliveries import (
    ChannelPost,
    Delivery,
    ThreadPost,
)
from bridge.core.policy import Policy


def supervisor_mention(policy: Policy) -> str:
    """The supervisors' group mention, followed by a space, or nothing when there is no group."""
    return f"<!subteam^{policy.supervisor_group}> " if policy.supervisor_group else ""


def urgent_deliveries(case: Case, policy: Policy, *, alert: str, note: str) -> list[Delivery]:
    """What marking a case urgent sends: the alert to the supervisors' channel, the note and
    the emergency checklist in the thread. The child is told nothing."""
    return [
        ChannelPost(text=alert, target="supervisors"),
        ThreadPost(case=case.number, text=note, role="note"),
        ThreadPost(case=case.number, text=policy.render("emergency_checklist"), role="note"),
    ]


def thread_link(channel: str, thread_ts: str | None) -> str:
    """A link to a case thread (Slack resolves it in any workspace the reader is in)."""
    return f"https://slack.com/archives/{channel}/p{thread_ts.replace('.', '')}" if thread_ts else ""
