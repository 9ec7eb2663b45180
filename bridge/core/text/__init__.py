"""Pure text helpers shared by the LINE <-> Slack relay, one module per concept.

Two directions matter:

* LINE -> Slack: a non-text message is described in words (:mod:`.media`); the core passes what
  a child sends on as the child's words, which the Slack adapter escapes so it cannot ping anyone
  or fake Slack markup.
* Slack -> LINE: a counsellor's Slack message is converted to plain text a child can read
  (:mod:`.slack_markup`, with emoji shortcodes from :mod:`.shortcodes`) and cut into pieces LINE
  accepts (:mod:`.line_split`, cutting only where :mod:`.graphemes` allows).

Everything is deterministic and free of I/O. This package re-exports the names the core's
decisions import from ``bridge.core.text``; new code imports from the module that defines a name.
"""

from __future__ import annotations

from bridge.core.text.line_split import batches, split_for_line
from bridge.core.text.media import describe_line_message
from bridge.core.text.slack_markup import slack_to_plain

__all__ = [
    "batches",
    "describe_line_message",
    "slack_to_plain",
    "split_for_line",
]
