"""Reading what was set aside for an operator: the entries the router could not decide and the
deliveries the platforms would not take (a part of Store). Replaying and dropping them are
commits (engine/commit.py), so the audit record goes with them in the same step."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, assert_never

from bridge.adapters.redis.codec import as_text
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys
from bridge.core.effects import SetAsideStream

ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_PAGE = 500


@dataclass(frozen=True)
class SetAside:
    """One set-aside entry as stored: an inbound entry's source and body (and the id it had),
    or a delivery's lane and item; and why, when that was recorded."""

    stream: SetAsideStream
    entry_id: str
    fields: dict[str, str]

    @property
    def at(self) -> float:
        """When it was set aside (the time in its entry id)."""
        return int(self.entry_id.split("-")[0]) / 1000


def set_aside_key(keys: Keys, stream: SetAsideStream) -> str:
    """The stream that holds what was set aside of this kind."""
    match stream:
        case SetAsideStream.INBOUND:
            return keys.set_aside
        case SetAsideStream.DELIVERIES:
            return keys.deliveries_set_aside
        case _:
            assert_never(stream)


class SetAsideStore:
    """The set-aside streams' reads (a part of Store)."""

    redis: RedisClient
    keys: Keys

    async def set_aside_entries(self) -> list[SetAside]:
        """Everything set aside, in both streams, oldest first."""
        found: list[SetAside] = []
        for stream in SetAsideStream:
            start = "-"
            while True:
                batch: Any = await self.redis.xrange(set_aside_key(self.keys, stream), min=start, max="+", count=_PAGE)
                found += [_entry(stream, entry_id, fields) for entry_id, fields in batch]
                if len(batch) < _PAGE:
                    break
                start = "(" + as_text(batch[-1][0])
        return sorted(found, key=lambda entry: tuple(int(n) for n in entry.entry_id.split("-")))

    async def set_aside_entry(self, stream: SetAsideStream, entry_id: str) -> SetAside | None:
        """One set-aside entry, or None if there is none with this id (entry_id as ENTRY_ID)."""
        if not ENTRY_ID.fullmatch(entry_id):
            raise ValueError(f"{entry_id!r} is not a stream entry id")
        batch: Any = await self.redis.xrange(set_aside_key(self.keys, stream), min=entry_id, max=entry_id)
        return _entry(stream, *batch[0]) if batch else None


def _entry(stream: SetAsideStream, entry_id: Any, fields: Any) -> SetAside:
    return SetAside(stream, as_text(entry_id), {as_text(k): as_text(v) for k, v in (fields or {}).items()})
