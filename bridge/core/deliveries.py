"""What the bridge must send, as plain values. Workers turn these into API calls.

Texts towards Slack are Texts (bridge/core/parts.py), rendered by the Slack adapter at send time;
texts towards LINE are plain str.
"""

from __future__ import annotations

import typing
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar

from bridge.core.case import CaseAction
from bridge.core.ids import CaseNumber, LineUserId, MessageTs, SlackUserId, ThreadTs
from bridge.core.parts import Text, text_from_payload, text_to_payload


class PostRole(StrEnum):
    """Whose words a thread post carries. The values are kept in queued deliveries."""

    CHILD = "child"  # the child's: never given up, set aside if Slack refuses them
    NOTE = "note"  # the bridge's note for the counsellors


class ChannelTarget(StrEnum):
    """Which channel a top-level post goes to. The values are kept in queued deliveries and
    name the lane (slack:cases, slack:supervisors)."""

    CASES = "cases"  # the case channel (SLACK_CHANNEL_ID)
    SUPERVISORS = "supervisors"  # the supervisors' channel (SLACK_SUPERVISOR_CHANNEL_ID)


@dataclass(frozen=True)
class ThreadPost:
    """A message in a case's Slack thread: the child's words, or a note for counsellors."""

    kind: ClassVar[str] = "thread_post"
    case: CaseNumber
    text: Text
    role: PostRole
    # The thread, for a note into a thread whose case's record is gone (its lane no longer knows
    # it), and the channel it is in (None: SLACK_CHANNEL_ID); otherwise None, and the post goes
    # into the thread the case's lane knows.
    thread_ts: ThreadTs | None = None
    channel: str | None = None


@dataclass(frozen=True)
class RootPost:
    """The root message of a new case: the thread its messages go under. Comes first in the
    case's lane, so everything after it finds the thread."""

    kind: ClassVar[str] = "root_post"
    case: CaseNumber
    text: Text
    buttons: tuple[CaseAction, ...]
    opened_at: float  # an earlier attempt's post is looked for from shortly before
    # The pool's channel the case opened in (bridge/core/channels.py); None: SLACK_CHANNEL_ID.
    channel: str | None = None


@dataclass(frozen=True)
class RootUpdate:
    """Replace the text of the case's root message (its state line changed)."""

    kind: ClassVar[str] = "root_update"
    case: CaseNumber
    text: Text
    buttons: tuple[CaseAction, ...] = ()  # the case actions offered under it


@dataclass(frozen=True)
class ChannelPost:
    """A top-level message in the consultation channel, about no single case."""

    kind: ClassVar[str] = "channel_post"
    text: Text
    target: ChannelTarget = ChannelTarget.CASES


@dataclass(frozen=True)
class Reaction:
    """A reaction on a message in the case's thread (delivered, or failed)."""

    kind: ClassVar[str] = "reaction"
    case: CaseNumber
    message_ts: MessageTs
    name: str


@dataclass(frozen=True)
class Ephemeral:
    """A message only one Slack user sees: in the case's thread, or (case None) the channel."""

    kind: ClassVar[str] = "ephemeral"
    case: CaseNumber | None
    user: SlackUserId
    text: Text
    # Someone outside the case channel cannot see an ephemeral message there (refused, or
    # removed since): they are told in a direct message instead.
    direct_if_outside: bool = True
    # Without a case: the channel it is shown in, the one the request was made in (a pool's);
    # None: SLACK_CHANNEL_ID. With a case, it is shown in the case's thread, in its channel.
    channel: str | None = None


@dataclass(frozen=True)
class LinePush:
    """Up to five texts pushed to a child. retry_key stays the same across retries."""

    kind: ClassVar[str] = "line_push"
    to: LineUserId
    texts: tuple[str, ...]
    retry_key: str
    case: CaseNumber | None = None
    slack_ts: MessageTs | None = None  # the counsellor's message this carries, for the reaction
    final_part: bool = True


@dataclass(frozen=True)
class LineReply:
    """Texts answering a child's event: by reply token while it is fresh, else by push."""

    kind: ClassVar[str] = "line_reply"
    to: LineUserId
    reply_token: str | None
    event_ms: int
    texts: tuple[str, ...]
    retry_key: str
    case: CaseNumber | None = None


Delivery = ThreadPost | RootPost | RootUpdate | ChannelPost | Reaction | Ephemeral | LinePush | LineReply
_KINDS: dict[str, type[Delivery]] = {cls.kind: cls for cls in typing.get_args(Delivery)}


# Fields added after deliveries were first queued: left out of a payload while unset, so that
# without a pool of case channels a payload is exactly what an older release writes and reads.
_LATER_FIELDS = ("channel",)


def to_payload(delivery: Delivery) -> dict[str, Any]:
    """A JSON-ready dict that from_payload turns back into the same delivery."""
    payload = {"kind": delivery.kind, **asdict(delivery)}
    for name in _LATER_FIELDS:
        if name in payload and payload[name] is None:
            del payload[name]
    if isinstance(delivery, ThreadPost | RootPost | RootUpdate | ChannelPost | Ephemeral):
        payload["text"] = text_to_payload(delivery.text)
    return payload


def from_payload(payload: dict[str, Any]) -> Delivery:
    """Inverse of to_payload. Raises ValueError for an unknown kind."""
    fields = dict(payload)
    kind = fields.pop("kind", None)
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown delivery kind {kind!r}")
    if "texts" in fields:
        fields["texts"] = tuple(fields["texts"])
    if "buttons" in fields:
        fields["buttons"] = tuple(CaseAction(name) for name in fields["buttons"])
    if "text" in fields:
        fields["text"] = text_from_payload(fields["text"])
    for name, values in _ENUM_FIELDS.items():
        if name in fields:
            fields[name] = values(fields[name])
    return cls(**fields)


# Fields kept as their enum's value in a payload (each name means one thing in every delivery).
_ENUM_FIELDS: dict[str, type[StrEnum]] = {"role": PostRole, "target": ChannelTarget}


# A namespace for retry keys, so the same delivery id always yields the same key.
_RETRY_KEY_NAMESPACE = uuid.UUID("0b7ad7b1-5a1e-4f7e-9a51-6a3c2b0d5e11")


def retry_key(delivery_id: str) -> str:
    """A LINE X-Line-Retry-Key derived from the delivery id: stable across retries and replays."""
    return str(uuid.uuid5(_RETRY_KEY_NAMESPACE, delivery_id))
