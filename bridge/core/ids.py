"""The identifiers the core handles, each its own type: a case number is not any int, a LINE user
ID is not any str. At run time they are the plain int or str; mypy keeps them apart.

The adapters make them where a value comes in: the LINE webhook (LINE user IDs), the Slack event
parser (Slack user IDs, message and thread timestamps), the Redis codec and store (what was
stored), and the core itself where it gives a case its number.
"""

from __future__ import annotations

from typing import NewType

CaseNumber = NewType("CaseNumber", int)
"""A case's number: the one handle Slack ever sees (`#12`)."""

LineUserId = NewType("LineUserId", str)
"""A child's LINE user ID. Identifies a child: never shown in Slack, never logged."""

SlackUserId = NewType("SlackUserId", str)
"""A Slack user (a counsellor or supervisor), as Slack names them (`U…`)."""

MessageTs = NewType("MessageTs", str)
"""A Slack message, by its timestamp in the channel (`1700000000.000100`)."""

ThreadTs = NewType("ThreadTs", str)
"""A Slack thread (a case's), by the timestamp of the message it starts from, its root."""


def thread_started_by(root: MessageTs) -> ThreadTs:
    """The thread a message starts, or would start: it is named by that message's timestamp."""
    return ThreadTs(root)
