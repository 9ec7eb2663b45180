"""Escaping a child's text for Slack (LINE -> Slack).

Whatever a child types is untrusted. A caller can rely on :func:`escape_for_slack` returning
text with no raw ``<`` or ``>``, so nothing a child sends can ping anyone or fake Slack markup,
and on :func:`bridge.core.text.slack_markup.slack_to_plain` turning the result back into exactly
what was typed. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["escape_for_slack"]


def escape_for_slack(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` the way Slack requires.

    The result contains no raw ``<`` or ``>``, so user text such as
    ``<!channel>`` or ``<@U123>`` is displayed literally and notifies nobody.
    ``&`` is escaped first so existing entities survive a round trip through
    Slack (``&lt;`` typed by a user is shown as ``&lt;``).  No other character
    is changed; mrkdwn formatting marks (``*``, ``_``, ``~``, backticks) are
    left alone.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
