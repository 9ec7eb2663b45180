"""Pacing posts per channel (bridge/adapters/redis/buckets.py), on fakeredis with Lua: a lane whose
post does not fit its channel's bucket waits for a slot of its own, in the order lanes asked, and
the deliverers' outlook says when the next slot comes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fakeredis import aioredis

import bridge.adapters.redis.lanes as lanes_module
import bridge.adapters.redis.store as store_module
from bridge.adapters.redis.codec import encode_item, item_pace
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.store import Store
from bridge.core.deliveries import ChannelPost, ChannelTarget, PostRole, Reaction, RootPost, RootUpdate, ThreadPost
from bridge.core.ids import CaseNumber, MessageTs
from bridge.engine.pacing import Pacing

# One post a second into C1, two back to back.
PACE = "1000:1000:C1"
T0 = 1_800_000_000_000


class Clock:
    """The lanes' and the commits' clock, set by the test."""

    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> int:
        return self.ms

    def time(self) -> float:
        return self.ms / 1000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    clock = Clock()
    monkeypatch.setattr(lanes_module, "now_ms", clock)
    monkeypatch.setattr(store_module, "time", clock)
    yield clock


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    redis = aioredis.FakeRedis()
    yield Store(redis, child_key_secret=b"k")
    await redis.aclose()


async def enqueue(store: Store, *items: tuple[str, str, str | None]) -> None:
    """(lane, item id, pace tag) items, appended as a commit does (at the clock's time)."""
    ops = Ops()
    for lane, item_id, pace in items:
        ops.enqueue(store.keys.lane(lane), store.keys.due, lane, encode_item(item_id, {"kind": "x"}, T0, pace))
    assert await store.commit(ops) is Committed.DONE


async def due_at(store: Store, lane: str) -> float | None:
    return await store.redis.zscore(store.keys.due, lane)


async def test_posts_beyond_the_burst_wait_each_for_a_slot_of_its_own(store: Store, clock: Clock) -> None:
    await enqueue(store, *((f"slack:{n}", f"{n}-0.0", PACE) for n in range(1, 5)))
    claims, outlook = await store.claim_with_outlook(token="w", lease_ms=5000, max_lanes=4)
    assert sorted(c.lane for c in claims) == ["slack:1", "slack:2"]  # the burst
    # The others wait for the next free instants of the channel, one each, in the order they asked.
    assert [await due_at(store, f"slack:{n}") for n in (3, 4)] == [T0 + 1000, T0 + 2000]
    # Nothing is due now: the deliverers wait until the first slot instead of polling.
    assert (outlook.next_due_in, outlook.due_now) == (1.0, 0)


async def test_a_slot_is_kept_and_later_lanes_queue_behind_it(store: Store, clock: Clock) -> None:
    await enqueue(store, *((f"slack:{n}", f"{n}-0.0", PACE) for n in range(1, 4)))
    await store.claim(token="w", lease_ms=5000, max_lanes=4)  # 1 and 2 go; 3 waits for T0 + 1000
    clock.ms = T0 + 400
    assert await store.claim(token="w", lease_ms=5000, max_lanes=4) == []
    await enqueue(store, ("slack:4", "4-0.0", PACE))
    assert await store.claim(token="w", lease_ms=5000, max_lanes=4) == []
    assert await due_at(store, "slack:3") == T0 + 1000  # looking early does not move a slot
    assert await due_at(store, "slack:4") == T0 + 2000  # behind the lane that asked before
    clock.ms = T0 + 1000
    (third,) = await store.claim(token="w", lease_ms=5000, max_lanes=4)
    assert third.lane == "slack:3"  # its slot is its own: taken without asking the bucket again
    clock.ms = T0 + 2000
    (fourth,) = await store.claim(token="w", lease_ms=5000, max_lanes=4)
    assert fourth.lane == "slack:4"


async def test_a_lane_that_posted_queues_behind_the_lanes_waiting(store: Store, clock: Clock) -> None:
    """No case posts again and again while another waits: after its post, a lane's next one asks
    at the end of the line."""
    await enqueue(store, ("slack:1", "1-0.0", PACE), ("slack:1", "1-0.1", PACE), ("slack:2", "2-0.0", PACE))
    await enqueue(store, ("slack:3", "3-0.0", PACE), ("slack:4", "4-0.0", PACE))
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=4)
    assert sorted(c.lane for c in claims) == ["slack:1", "slack:2"]
    first = next(c for c in claims if c.lane == "slack:1")
    _, more, _ = await store.complete_and_claim(first, token="w", lease_ms=5000)
    assert more == []  # its next post waits too...
    # ... behind the two lanes that asked before it.
    assert [await due_at(store, f"slack:{n}") for n in (3, 4, 1)] == [T0 + 1000, T0 + 2000, T0 + 3000]


async def test_other_channels_and_unpaced_items_do_not_wait(store: Store, clock: Clock) -> None:
    await enqueue(store, *((f"slack:{n}", f"{n}-0.0", PACE) for n in range(1, 4)))
    await store.claim(token="w", lease_ms=5000, max_lanes=4)
    await enqueue(store, ("slack:7", "7-0.0", "1000:1000:C2"), ("slack:8", "8-0.0", None), ("line:x", "9-0.0", None))
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=4)
    assert sorted(c.lane for c in claims) == ["line:x", "slack:7", "slack:8"]


async def test_a_leased_lane_takes_no_token(store: Store, clock: Clock) -> None:
    await enqueue(store, ("slack:1", "1-0.0", PACE))
    (held,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    bucket = store.keys.channel_bucket("C1")
    before = await store.redis.get(bucket)
    clock.ms = T0 + 3500  # looked at again while w still delivers it
    assert await store.claim(token="v", lease_ms=5000, max_lanes=1) == []
    assert await store.redis.get(bucket) == before
    assert held.pace == PACE


async def test_the_lanes_a_commit_hands_off_wait_for_the_bucket_too(store: Store, clock: Clock) -> None:
    ops = Ops()
    for n in range(1, 4):
        ops.enqueue(store.keys.lane(f"slack:{n}"), store.keys.due, f"slack:{n}", encode_item(f"{n}", {}, T0, PACE))
    result, claims = await store.commit_handing_off(ops, token="w:handed", lease_ms=5000, max_lanes=5)
    assert result is Committed.DONE
    assert [c.lane for c in claims] == ["slack:1", "slack:2"]
    assert await due_at(store, "slack:3") == T0 + 1000


async def test_a_reserved_slot_goes_with_its_lane(store: Store, clock: Clock) -> None:
    """A slot is kept on its lane with an expiry: an erased lane leaves nothing behind for good."""
    await enqueue(store, *((f"slack:{n}", f"{n}-0.0", PACE) for n in range(1, 4)))
    await store.claim(token="w", lease_ms=5000, max_lanes=4)
    slot = store.keys.lane_slot("slack:3")
    assert int(await store.redis.get(slot) or 0) == T0 + 1000
    assert 0 < await store.redis.pttl(slot) <= 1000 + 60_000


def test_the_pace_tag_is_read_from_where_the_lua_reads_it() -> None:
    item = encode_item("1-0.0", {"kind": "thread_post", "text": '"pace":"1:1:CX"'}, T0, PACE)
    assert item_pace(item) == PACE
    assert item_pace(encode_item("1-0.0", {"kind": "thread_post"}, T0)) is None
    with pytest.raises(ValueError):
        encode_item("1-0.0", {}, T0, "fast")


def test_posts_into_a_channel_are_paced_and_other_calls_are_not() -> None:
    pacing = Pacing(per_second=1, burst=2, case_channel="CCASES", supervisor_channel="CSUPER")
    case = CaseNumber(3)
    assert pacing.tag(ThreadPost(case=case, text=("x",), role=PostRole.CHILD)) == "1000:1000:CCASES"
    assert pacing.tag(RootPost(case=case, text=("x",), buttons=(), opened_at=0)) == "1000:1000:CCASES"
    assert pacing.tag(ChannelPost(text=("x",), target=ChannelTarget.SUPERVISORS)) == "1000:1000:CSUPER"
    assert pacing.tag(RootUpdate(case=case, text=("x",))) is None
    assert pacing.tag(Reaction(case=case, message_ts=MessageTs("1.2"), name="ok")) is None
    assert (
        Pacing(per_second=0, burst=2, case_channel="C", supervisor_channel="S").tag(
            ThreadPost(case=case, text=("x",), role=PostRole.NOTE)
        )
        is None
    )
    assert (
        Pacing(per_second=4, burst=3, case_channel="C", supervisor_channel="S").tag(
            ThreadPost(case=case, text=("x",), role=PostRole.NOTE)
        )
        == "250:500:C"
    )
