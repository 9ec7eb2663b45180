"""Pure text helpers shared by the LINE <-> Slack relay, one module per concept.

Two directions matter:

* LINE -> Slack: a non-text message is described in words (:mod:`.media`); the core passes what
  a child sends on as the child's words, which the Slack adapter escapes so it cannot ping anyone
  or fake Slack markup.
* Slack -> LINE: a counsellor's message arrives as plain text (the Slack adapter turned its
  markup into what a child can read, bridge/adapters/slack/markup.py) and is cut into pieces
  LINE accepts (:mod:`.line_split`, cutting only where :mod:`.graphemes` allows).

Everything is deterministic and free of I/O. This package re-exports the names the core's
decisions import from ``bridge.core.text``; new code imports from the module that defines a name.
"""

from __future__ import annotations

from bridge.core.text.line_split import batches, split_for_line
from bridge.core.text.media import describe_line_message

__all__ = [
    "batches",
    "describe_line_message",
    "split_for_line",
]
