"""A Text from the core as Slack shows it: mrkdwn with Slack's mentions, links and escaping."""

from __future__ import annotations

from typing import assert_never

from bridge.core.parts import ChildWords, GroupMention, OnDuty, Part, Quoted, Text, ThreadLink, UserMention


def render(text: Text, *, channel: str) -> str:
    """The text as mrkdwn. channel is the case channel (SLACK_CHANNEL_ID), where a case's thread is
    unless its link names another channel (a pool's)."""
    return "".join(_render_part(part, channel) for part in text)


def _render_part(part: Part, channel: str) -> str:
    match part:
        case str():
            return part  # the policy's own words, mrkdwn as the operator wrote them
        case UserMention():
            return f"<@{part.user}>"
        case GroupMention():
            return f"<!subteam^{part.group}>"
        case OnDuty():
            return "<!here>"
        case ThreadLink():
            # Slack resolves an archives link in any workspace the reader is in.
            return thread_link(part.channel or channel, part.thread_ts) if part.thread_ts else ""
        case ChildWords() | Quoted():
            return escape(part.words)
        case _:
            assert_never(part)


def words_of(text: Text) -> str:
    """The text as plain words, for a block that shows it literally (a child's message): the
    words as written, a mention or link as nothing."""
    return "".join(
        part if isinstance(part, str) else part.words for part in text if isinstance(part, str | ChildWords | Quoted)
    )


def thread_link(channel: str, thread_ts: str) -> str:
    """The address of a thread in Slack."""
    return f"https://slack.com/archives/{channel}/p{thread_ts.replace('.', '')}"


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` the way Slack requires.

    The result contains no raw ``<`` or ``>``, so user text such as
    ``<!channel>`` or ``<@U123>`` is displayed literally and notifies nobody.
    ``&`` is escaped first so existing entities survive a round trip through
    Slack (``&lt;`` typed by a user is shown as ``&lt;``).  No other character
    is changed; mrkdwn formatting marks (``*``, ``_``, ``~``, backticks) are
    left alone.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
