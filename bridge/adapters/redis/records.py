"""Reads for what the bridge keeps only for a while, and for erasing a child on request: the
closed cases by when they closed, every block, and every case of one child (a part of Store)."""

from __future__ import annotations

from typing import Any

from bridge.adapters.redis.codec import as_text, block_from
from bridge.adapters.redis.connect import RedisClient
from bridge.adapters.redis.keys import Keys
from bridge.core.case import Block, CaseStatus
from bridge.core.ids import CaseNumber

_SCAN_BATCH = 500


class RecordsStore:
    """Reads only, except that the index of closed cases is completed at start."""

    redis: RedisClient
    keys: Keys

    async def closed_cases_before(self, cutoff: float, *, limit: int) -> list[CaseNumber]:
        """Closed cases whose record is kept and that closed before cutoff, oldest first."""
        rows: Any = await self.redis.zrangebyscore(self.keys.closed_cases, "-inf", cutoff, start=0, num=limit)
        return [CaseNumber(int(as_text(n))) for n in rows]

    async def blocks(self) -> list[Block]:
        """Every block that stands, by the case it was made from."""
        raw: Any = await self.redis.hvals(self.keys.blocked)
        return sorted((block_from(as_text(value)) for value in raw), key=lambda block: block.case)

    async def case_numbers_of_child(self, child_key: str) -> list[CaseNumber]:
        """Every case whose record names this child (by pseudonym), by number. Scans every case
        record (a few round trips per thousand cases): for erasing a child, not for routing."""
        numbers: list[CaseNumber] = []
        async for keys in self._case_keys():
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, ["child_key", "number"])
            for owner, number in await pipe.execute():
                if owner is not None and number is not None and as_text(owner) == child_key:
                    numbers.append(CaseNumber(int(as_text(number))))
        return sorted(numbers)

    async def stream_entries(self, stream: str) -> tuple[list[tuple[str, dict[Any, Any]]], str | None]:
        """Every entry of a stream, oldest first (in batches of a thousand), and the last one's id
        (None: empty). For the audit and the set-aside streams, which are bounded."""
        entries: list[tuple[str, dict[Any, Any]]] = []
        start = "-"
        while True:
            batch: Any = await self.redis.xrange(stream, min=start, max="+", count=1000)
            entries += [(as_text(entry_id), fields) for entry_id, fields in batch]
            if len(batch) < 1000:
                return entries, entries[-1][0] if entries else None
            start = "(" + as_text(batch[-1][0])

    async def _case_keys(self) -> Any:
        """The case records' keys, in batches."""
        batch: list[Any] = []
        async for key in self.redis.scan_iter(match=self.keys.case_pattern, count=1000):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _know_closed_cases(self) -> None:
        """Closed cases missing from the index of them (closed before it existed, or by a worker
        of the version before while this one started) are indexed, by when they closed, so
        their records go in time too. Run at every start: indexing one again changes nothing."""
        async for keys in self._case_keys():
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, ["number", "status", "closed_at"])
            closed = {
                as_text(number): float(as_text(closed_at))
                for number, status, closed_at in await pipe.execute()
                if number is not None and closed_at is not None and as_text(status or b"") == CaseStatus.CLOSED.value
            }
            if closed:
                await self.redis.zadd(self.keys.closed_cases, closed, nx=True)
