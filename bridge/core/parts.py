"""What a text for the counsellors is made of: words, and parts only the chat platform can write.

A mention of a person or a group, those on duty, a link to a case's thread, the child's own
words: the core leaves these whole in a Text, and the Slack adapter renders them
(bridge/adapters/slack/render.py). Texts towards the child (LINE) are plain str and hold no parts.

A Text is a tuple of parts, in order; its str parts are the policy's own words, shown as written.
compose() fills a policy template: a placeholder given a part (or a Text) keeps it as a part.
"""

from __future__ import annotations

import dataclasses
import string
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from bridge.core.ids import CaseNumber, SlackUserId, ThreadTs


@dataclasses.dataclass(frozen=True)
class UserMention:
    """A person, by their user ID in the chat: they are notified."""

    kind: ClassVar[str] = "user"
    user: SlackUserId


@dataclasses.dataclass(frozen=True)
class GroupMention:
    """A user group, by its ID in the chat: its members are notified."""

    kind: ClassVar[str] = "group"
    group: str


@dataclasses.dataclass(frozen=True)
class OnDuty:
    """Whoever is at work in the case channel now (for when the policy names no on-duty group)."""

    kind: ClassVar[str] = "on_duty"


@dataclasses.dataclass(frozen=True)
class ThreadLink:
    """A link to a case's thread, as the core saw the case when deciding. Without a thread yet
    (its root message not posted) the link is left out."""

    kind: ClassVar[str] = "thread_link"
    case: CaseNumber
    thread_ts: ThreadTs | None
    channel: str | None = None  # the pool's channel the thread is in; None: SLACK_CHANNEL_ID


@dataclasses.dataclass(frozen=True)
class ChildWords:
    """What the child sent (their words, or what a sticker or file was called): shown exactly
    as written, so nothing in it can notify anyone or pass for the bridge's own words."""

    kind: ClassVar[str] = "child_words"
    words: str


@dataclasses.dataclass(frozen=True)
class Quoted:
    """Words the bridge did not write, other than the child's: a reason or memo a counsellor
    typed, an error an API answered. Shown exactly as written, so they can notify nobody."""

    kind: ClassVar[str] = "quoted"
    words: str


Special = UserMention | GroupMention | OnDuty | ThreadLink | ChildWords | Quoted  # every part but words
Part = str | Special
Text = tuple[Part, ...]

_SPECIALS: dict[str, type[Special]] = {cls.kind: cls for cls in typing.get_args(Special)}


def concat(*pieces: Part | Text) -> Text:
    """One Text of the pieces in order: adjacent words merged, empty words dropped (so two
    texts that read the same compare equal)."""
    parts: list[Part] = []
    for piece in pieces:
        for part in piece if isinstance(piece, tuple) else (piece,):
            if isinstance(part, str):
                if not part:
                    continue
                if parts and isinstance(parts[-1], str):
                    parts[-1] += part
                    continue
            parts.append(part)
    return tuple(parts)


def join(separator: str, texts: Iterable[Text]) -> Text:
    """Like str.join, for texts."""
    pieces: list[Part | Text] = []
    for index, text in enumerate(texts):
        if index:
            pieces.append(separator)
        pieces.append(text)
    return concat(*pieces)


def _kept_whole(value: object) -> bool:
    """True for a part that is not plain words, or a Text: what a placeholder keeps whole."""
    return isinstance(value, (*_SPECIALS.values(), tuple))


def compose(template: str, values: Mapping[str, object]) -> Text:
    """The template filled with values, as str.format_map would; a value that is a part or a
    Text stays whole, and takes no conversion or format spec (ValueError, like a bad spec)."""
    formatter = string.Formatter()
    pieces: list[Part | Text] = []
    for literal, field, spec, conversion in formatter.parse(template):
        pieces.append(literal)
        if field is None:
            continue
        if field == "" or field[0].isdigit():
            raise ValueError("Format string contains positional fields")
        value, _ = formatter.get_field(field, (), values)
        if _kept_whole(value):
            if spec or conversion:
                raise ValueError(f"{{{field}}} is a mention, a link or a text: it takes no format")
            pieces.append(value)
            continue
        value = formatter.convert_field(value, conversion)
        pieces.append(formatter.format_field(value, formatter.vformat(spec, (), values) if spec else ""))
    return concat(*pieces)


def plain(text: Text) -> str:
    """The words of a text that holds only words. TypeError if it holds any other part."""
    for part in text:
        if not isinstance(part, str):
            raise TypeError(f"a plain text cannot hold {type(part).__name__}")
    return "".join(part for part in text if isinstance(part, str))


def text_to_payload(text: Text) -> list[Any]:
    """A JSON-ready list that text_from_payload turns back into the same text."""
    return [part if isinstance(part, str) else {"part": part.kind, **_fields(part)} for part in text]


def text_from_payload(payload: object) -> Text:
    """Inverse of text_to_payload. A str (a delivery queued before texts had parts) is one
    part of words. Raises ValueError for an unknown part."""
    if isinstance(payload, str):
        return concat(payload)
    if not isinstance(payload, list):
        raise ValueError(f"a text is a list of parts, not {type(payload).__name__}")
    parts: list[Part] = []
    for item in payload:
        if isinstance(item, str):
            parts.append(item)
            continue
        fields = dict(item)
        cls = _SPECIALS.get(str(fields.pop("part", None)))
        if cls is None:
            raise ValueError(f"unknown text part {item.get('part')!r}")
        parts.append(cls(**fields))
    return tuple(parts)


def _fields(part: Special) -> dict[str, Any]:
    fields = dataclasses.asdict(part)
    if isinstance(part, ThreadLink) and part.channel is None:
        del fields["channel"]  # as a link was kept before pools of case channels
    return fields
