"""Floods: when a child's messages come too fast (prank messages, sticker floods), they are
deferred for a cool-down; at its end what was deferred reaches the thread."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bridge.core.case import (
    Case,
)
from bridge.core.deliveries import (
    Delivery,
    PostRole,
    ThreadPost,
)
from bridge.core.effects import (
    NOTHING,
    Decision,
    ReleaseFlood,
)
from bridge.core.parts import ChildWords
from bridge.core.policy import Policy
from bridge.core.root import root_update


@dataclass(frozen=True)
class Recent:
    """What one child sent within the flood window, the message being decided included."""

    messages: int
    stickers: int


@dataclass(frozen=True)
class Deferred:
    """What a flood's cool-down kept back: the texts in order, and how many stickers."""

    texts: tuple[str, ...] = ()
    stickers: int = 0
    dropped: int = 0  # texts beyond MAX_DEFERRED_TEXTS: counted, not kept


# A cool-down keeps at most this many texts; what comes beyond is counted, not kept (a flood of
# hundreds of messages is kept out of Redis, and the thread says how many there were).
MAX_DEFERRED_TEXTS = 100


def is_flood(recent: Recent | None, *, sticker: bool, max_messages: int, max_stickers: int) -> bool:
    """True if this message is over a limit: more than max_stickers stickers (when it is a
    sticker) or more than max_messages messages in the window. A limit of 0 is off."""
    if recent is None:
        return False
    if sticker and max_stickers and recent.stickers > max_stickers:
        return True
    return bool(max_messages) and recent.messages > max_messages


def on_flood_timer(until: int, case: Case | None, deferred: Deferred, policy: Policy) -> Decision:
    """The cool-down that was to end at `until` (s) is over: what was deferred reaches the thread,
    and the flood ends. The timer of an earlier cool-down changes nothing."""
    if case is None or case.flood_until is None or until != int(case.flood_until):
        return NOTHING
    texts, stickers = deferred.texts, deferred.stickers
    note = policy.render_parts("flood_released_note", messages=len(texts) + stickers, stickers=stickers)
    deliveries: list[Delivery] = [ThreadPost(case=case.number, text=note, role=PostRole.NOTE)]
    if deferred.dropped:
        dropped = policy.render_parts("flood_dropped_note", dropped=deferred.dropped, kept=MAX_DEFERRED_TEXTS)
        deliveries.append(ThreadPost(case=case.number, text=dropped, role=PostRole.NOTE))
    deliveries += [
        ThreadPost(case=case.number, text=(ChildWords(part),), role=PostRole.CHILD) for part in _grouped(texts)
    ]
    deliveries.append(root_update(replace(case, flood_until=None), policy))
    return Decision(tuple(deliveries), (ReleaseFlood(case.number),))


def _grouped(texts: tuple[str, ...], limit: int = 3000) -> list[str]:
    """Deferred messages as few thread posts as possible, one message per line, none cut."""
    parts: list[str] = []
    for text in texts:
        if parts and len(parts[-1]) + 1 + len(text) <= limit:
            parts[-1] += "\n" + text
        else:
            parts.append(text)
    return parts
