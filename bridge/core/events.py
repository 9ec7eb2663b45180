"""What happened, as the core sees it: inbound events translated from LINE and Slack."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bridge.core.ids import LineUserId, MessageTs, SlackUserId, ThreadTs


@dataclass(frozen=True)
class Media:
    """What a non-text LINE message is, without its content."""

    type: str  # sticker, image, video, audio, file, location, or a type LINE adds later
    keywords: tuple[str, ...] = ()
    file_name: str | None = None
    duration_ms: int | None = None
    title: str | None = None


@dataclass(frozen=True)
class ChildMessage:
    """A message a child sent to the LINE account: its text, or what kind of media it is."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int
    reply_token: str | None
    text: str | None
    media: Media | None = None  # for stickers, images and other non-text messages


@dataclass(frozen=True)
class ChildFollowed:
    """The child added the account as a friend (or unblocked it)."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int
    reply_token: str | None


@dataclass(frozen=True)
class ChildUnfollowed:
    """The child blocked the account."""

    child_id: LineUserId
    event_id: str
    timestamp_ms: int


@dataclass(frozen=True)
class ThreadMessage:
    """A message posted in the consultation channel (a thread reply or not)."""

    channel: str
    ts: MessageTs
    thread_ts: ThreadTs | None
    user: SlackUserId | None
    text: str
    subtype: str | None = None
    bot_id: str | None = None


@dataclass(frozen=True)
class ThreadEdit:
    """A channel message was edited; previous and current are the two versions."""

    channel: str
    previous: ThreadMessage
    current: ThreadMessage


@dataclass(frozen=True)
class ThreadDelete:
    """A channel message was deleted."""

    channel: str
    previous: ThreadMessage


@dataclass(frozen=True)
class ControlRequested:
    """Someone in Slack asked for a case action: by slash command, root button or shortcut.

    Nothing is checked yet (membership, role, the number, the reason): the core does that.
    """

    action: str  # hold, close, block, unblock, escalate, cases
    text: str  # a command's text as typed ("12 reason"), or the case number a button carried
    user: SlackUserId
    via: str  # "command", "button" or "shortcut"
    reason: str = ""  # typed into a window (buttons and the shortcut); commands carry it in text
    thread_ts: ThreadTs | None = None  # the shortcut names the thread, not the number


@dataclass(frozen=True)
class MemberChanged:
    """Someone joined or left a Slack channel: the roster of who may use the controls."""

    channel: str
    user: SlackUserId
    joined: bool


class TimerKind(StrEnum):
    """What a deadline is for. The values are stored in Redis: do not change them."""

    BUSY = "busy"  # the busy notice to a child no counsellor has answered
    OPENING = "opening"  # the opening digest of cases that arrived while closed
    CLOSING = "closing"  # the reminder in every open thread before closing time
    UNANSWERED = "unanswered"  # the alert about a case nobody has answered
    SOFT_WARNING = "soft-warning"  # the one-hour guideline: the first reminder
    SOFT_LIMIT = "soft-limit"  # the one-hour guideline: the hour is up
    OVERTIME = "overtime"  # the one-hour guideline: the supervisors are told
    IDLE_WARNING = "idle-warning"  # silence after a counsellor's message: the check-in
    IDLE_CLOSE = "idle-close"  # silence after a counsellor's message: the close
    FLOOD_RELEASE = "flood-release"  # the end of a flood's cool-down


@dataclass(frozen=True)
class TimerFired:
    """A deadline kept in Redis came due. kind says what it is for; arg, for what."""

    kind: TimerKind
    arg: str


@dataclass(frozen=True)
class Ignored:
    """An event the bridge does not act on; reason is safe to log (no content, no ids)."""

    reason: str


InboundEvent = (
    ChildMessage
    | ChildFollowed
    | ChildUnfollowed
    | ThreadMessage
    | ThreadEdit
    | ThreadDelete
    | ControlRequested
    | MemberChanged
    | TimerFired
    | Ignored
)
