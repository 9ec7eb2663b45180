"""What the router decides every minute whatever arrives (a part of the router, router.py): the
next closing reminder, the retention of personal data (the LINE user IDs of long-closed cases, the
records of older ones, old audit records) and the review of blocks that have stood long. Reads
only; the router commits.
"""

from __future__ import annotations

from bridge import core
from bridge.adapters.redis.store import Store
from bridge.core.policy import Policy
from bridge.engine.commit import Loaded

# At most this many case records are deleted by one pass (the first pass after an upgrade may
# find a year's worth; the rest go a minute later).
RECORDS_PER_PASS = 200


async def decide_standing(store: Store, policy: Policy, now: float, loaded: Loaded) -> core.Decision:
    """Load what the standing decisions need (noting the cases read in loaded) and decide them."""
    closed_long_ago = await store.closed_before(core.ids_closed_before(policy, now=now))
    blocks = await store.blocks()
    # A case a block was made from stays in the index while the block does: ask for as many more.
    due = await store.closed_cases_before(
        core.records_closed_before(policy, now=now), limit=RECORDS_PER_PASS + len(blocks)
    )
    found = {record.case.number: record for record in await store.case_records(due)}
    records_due = {number: loaded.case(found.get(number)) for number in due}
    retention = core.on_retention(
        tuple(closed_long_ago),
        policy,
        now=now,
        records_due=records_due,
        blocked_from=frozenset(block.case for block in blocks),
    )
    shown = {record.case.number: record for record in await store.case_records([block.case for block in blocks])}
    review = core.on_block_review([(block, loaded.case(shown.get(block.case))) for block in blocks], policy, now=now)
    return core.Decision(
        deliveries=review.deliveries,
        effects=(*core.standing_timers(policy, now=now), *retention.effects, *review.effects),
    )
