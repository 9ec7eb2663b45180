"""The Redis scripts, on fakeredis (with Lua): recording, timers, the delivery lanes, leases.

How a decision's state changes are written is tested in test_commit.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakeredis import aioredis

import bridge.adapters.redis.lanes as lanes_module
from bridge.adapters.redis.codec import encode_item, now_ms
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.lanes import FollowUp
from bridge.adapters.redis.store import Store, handed_token
from bridge.core.ids import LineUserId

LONG_LEASE_MS = 600_000  # far longer than any test: a lane taken here was not let go by its lease


async def enqueue(store: Store, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Append (lane, item id, payload) deliveries as a commit does."""
    ops = Ops()
    for lane, item_id, payload in items:
        ops.enqueue(store.keys.lane(lane), store.keys.due, lane, encode_item(item_id, payload, now_ms()))
    assert await store.commit(ops) is Committed.DONE


async def arm(store: Store, kind: str, arg: str, at: float) -> None:
    """Arm a timer as a commit does."""
    ops = Ops()
    member = f"{kind}|{arg}"
    ops.arm(store.keys.timers, store.keys.fired_prefix + member, int(at * 1000), member)
    assert await store.commit(ops) is Committed.DONE


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    redis = aioredis.FakeRedis()
    yield Store(redis, child_key_secret=b"k")
    await redis.aclose()


async def test_record_skips_ids_seen_before(store: Store) -> None:
    assert await store.record_events("line", [("a", "{}"), ("b", "{}")]) == 2
    assert await store.record_events("line", [("b", "{}"), ("c", "{}")]) == 1
    assert await store.redis.xlen(store.keys.inbound) == 3
    # The same id from another source is another event.
    assert await store.record_events("slack", [("a", "{}")]) == 1


async def test_a_lane_delivers_in_order_one_at_a_time(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {"n": 1}), ("slack:1", "b", {"n": 2})])
    (first,) = await store.claim(token="w1", lease_ms=5000, max_lanes=5)
    assert (first.item_id, first.payload, first.attempts) == ("a", {"n": 1}, 1)
    assert await store.claim(token="w2", lease_ms=5000, max_lanes=5) == []  # leased: nobody else
    assert await store.complete(first, token="w1")
    (second,) = await store.claim(token="w2", lease_ms=5000, max_lanes=5)
    assert second.item_id == "b"
    assert await store.complete(second, token="w2")
    assert await store.claim(token="w1", lease_ms=5000, max_lanes=5) == []
    assert await store.redis.zcard(store.keys.due) == 0


async def test_lanes_are_independent(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {}), ("slack:2", "b", {}), ("line:x", "c", {})])
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert sorted(c.lane for c in claims) == ["line:x", "slack:1", "slack:2"]


async def test_retry_later_keeps_the_item_first_and_counts_attempts(store: Store) -> None:
    await enqueue(store, [("line:x", "a", {"v": 1}), ("line:x", "b", {})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert await store.retry_later(claim, token="w", delay_s=0, replacement={"v": 2})
    (again,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (again.item_id, again.payload, again.attempts) == ("a", {"v": 2}, 2)
    assert again.enqueued_ms == claim.enqueued_ms


async def test_failures_count_the_attempts_that_failed_only(store: Store) -> None:
    """The backoff grows with failures (retry.next_step): a retry after a 429 (failed=False) and
    a take-over of a dead worker's lease are attempts, not failures; completing forgets both."""
    await enqueue(store, [("line:x", "a", {}), ("line:x", "b", {})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (claim.attempts, claim.failures) == (1, 0)
    assert await store.retry_later(claim, token="w", delay_s=0, failed=True)  # a 5xx
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (claim.attempts, claim.failures) == (2, 1)
    assert await store.retry_later(claim, token="w", delay_s=0)  # a 429
    (claim,) = await store.claim(token="dead", lease_ms=50, max_lanes=1)
    await asyncio.sleep(0.1)  # the lease runs out before the attempt settles
    assert not await store.retry_later(claim, token="dead", delay_s=0, failed=True)  # too late: not counted
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (claim.item_id, claim.attempts, claim.failures) == ("a", 4, 1)
    assert await store.complete(claim, token="w")
    assert await store.redis.hgetall(store.keys.attempts) == {}
    (after,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (after.item_id, after.attempts, after.failures) == ("b", 1, 0)


async def test_a_claim_releases_what_an_unanswered_claim_of_its_token_leased(store: Store) -> None:
    """A claim whose answer was lost (Redis went away as it answered) left lanes leased by a
    deliverer's own token. Its next claim, releasing since then, frees them at once, not when the
    lease runs out: the lanes are due now and it takes one. Another token's leases, and the token's
    leases on lanes due before since, are left alone."""
    await enqueue(store, [("slack:1", "a", {}), ("slack:2", "b", {}), ("slack:3", "c", {})])
    (other,) = await store.claim(token="host:1:aa:1", lease_ms=LONG_LEASE_MS, max_lanes=1)
    since = now_ms()
    lost = await store.claim(token="host:1:aa:0", lease_ms=LONG_LEASE_MS, max_lanes=2)  # (never heard)
    assert len(lost) == 2
    assert await store.claim(token="host:1:aa:0", lease_ms=LONG_LEASE_MS, max_lanes=2) == []  # without: left leased
    claims, outlook = await store.claim_with_outlook(
        token="host:1:aa:0", lease_ms=LONG_LEASE_MS, max_lanes=1, release_since=since
    )
    assert [(c.item_id, c.attempts) for c in claims] == [(lost[0].item_id, 2)]  # an earlier post is looked for
    assert outlook.due_now == 1  # the other released lane, for any deliverer
    (freed,) = await store.claim(token="host:9:zz:0", lease_ms=LONG_LEASE_MS, max_lanes=2)
    assert freed.item_id == lost[1].item_id
    assert await store.renew_lane_lease(other.lane, token="host:1:aa:1", lease_ms=LONG_LEASE_MS)  # kept


async def test_a_completion_releases_what_an_unanswered_completion_of_its_token_leased(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {}), ("slack:1", "a2", {}), ("slack:2", "b", {})])
    (first,) = await store.claim(token="w:0", lease_ms=LONG_LEASE_MS, max_lanes=1)
    since = now_ms()
    # Its completion claimed the next lane, but the answer was lost: asked again, it pops nothing
    # more and, releasing since then, takes one of the two lanes again and frees the other.
    _, (unheard,), _ = await store.complete_and_claim(first, token="w:0", lease_ms=LONG_LEASE_MS)
    _, claims, outlook = await store.complete_and_claim(first, token="w:0", lease_ms=LONG_LEASE_MS, release_since=since)
    assert unheard.item_id == "b" and [c.item_id for c in claims] == ["a2"]  # "a" popped once
    assert outlook.due_now == 1
    (freed,) = await store.claim(token="w:1", lease_ms=LONG_LEASE_MS, max_lanes=2)
    assert freed.item_id == "b"


async def test_retry_later_waits(store: Store) -> None:
    await enqueue(store, [("line:x", "a", {})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    await store.retry_later(claim, token="w", delay_s=30)
    claims, outlook = await store.claim_with_outlook(token="w", lease_ms=5000, max_lanes=1)
    assert claims == [] and outlook.due_now == 0  # the claim also says when to look again
    assert outlook.next_due_in is not None and 25 < outlook.next_due_in <= 30


async def test_an_expired_lease_hands_the_lane_to_another_worker(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {})])
    (lost,) = await store.claim(token="dead", lease_ms=50, max_lanes=1)
    await asyncio.sleep(0.1)
    (taken,) = await store.claim(token="alive", lease_ms=5000, max_lanes=1)
    assert taken.item_id == "a" and taken.attempts == 2
    # The dead worker's late completion still pops the same item only once.
    assert await store.complete(lost, token="dead")
    assert not await store.complete(taken, token="alive")
    assert await store.redis.llen(store.keys.lane("slack:1")) == 0


async def test_complete_appends_follow_ups_atomically(store: Store) -> None:
    await enqueue(store, [("line:x", "a", {})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    await store.complete(claim, token="w", followups=[FollowUp("slack:3", "a.f0", {"kind": "reaction"})])
    (follow,) = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert (follow.lane, follow.item_id) == ("slack:3", "a.f0")


async def test_a_hold_pauses_one_platform_only(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {}), ("line:x", "b", {})])
    await store.pause_platform("slack", 30)
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert [c.lane for c in claims] == ["line:x"]


def test_item_ids_may_not_contain_the_separator() -> None:
    from bridge.adapters.redis.codec import encode_item

    with pytest.raises(ValueError):
        encode_item("a|b", {}, 0)
    with pytest.raises(ValueError):  # ids are separated by spaces when one post carried several
        encode_item("a b", {}, 0)


def test_keys_share_slots_by_concern() -> None:
    keys = Keys()
    assert "{in}" in keys.inbound and "{in}" in keys.seen("line", "x") and "{in}" in keys.router_lease
    assert "{cases}" in keys.case(3) and "{cases}" in keys.open_by_child and "{cases}" in keys.by_thread
    assert "{dq}" in keys.lane("slack:1") and "{dq}" in keys.due and "{dq}" in keys.platform_pause("slack")


async def test_renewing_a_lease_keeps_the_lane_and_a_lost_lease_says_so(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {})])
    assert await store.claim(token="w1", lease_ms=100, max_lanes=1)
    for _ in range(3):
        await asyncio.sleep(0.06)
        assert await store.renew_lane_lease("slack:1", token="w1", lease_ms=100)
    assert await store.claim(token="w2", lease_ms=100, max_lanes=1) == []  # still ours
    assert not await store.renew_lane_lease("slack:1", token="w2", lease_ms=100)


async def test_set_aside_keeps_the_item_and_moves_the_lane_on(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {"text": "こども"}), ("slack:1", "b", {})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert await store.set_aside_delivery(claim, token="w", why="Slack refused: msg_too_long")
    aside: Any = await store.redis.xrange(store.keys.deliveries_set_aside)
    assert len(aside) == 1 and aside[0][1][b"lane"] == b"slack:1"
    assert aside[0][1][b"why"] == b"Slack refused: msg_too_long"
    (following,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert following.item_id == "b"


async def test_router_lease_is_exclusive_and_reentrant(store: Store) -> None:
    assert await store.acquire_router_lease("a", 5000)
    assert await store.acquire_router_lease("a", 5000)  # its holder may take it again
    assert not await store.acquire_router_lease("b", 5000)
    await store.release_router_lease("a")
    await asyncio.sleep(0.01)
    assert await store.acquire_router_lease("b", 5000)


async def test_pseudonyms_are_keyed_by_the_given_key_and_shared() -> None:
    redis = aioredis.FakeRedis()
    without = Store(redis)  # as the web process has it: no pseudonyms derived there
    with pytest.raises(RuntimeError):
        without.child_key(LineUserId("U1"))
    with pytest.raises(RuntimeError):
        await without.prepare()
    first, second = Store(redis, child_key_secret=b"k" * 32), Store(redis, child_key_secret=b"k" * 32)
    await first.prepare()
    await second.prepare()
    assert first.child_key(LineUserId("U1")) == second.child_key(LineUserId("U1")) != first.child_key(LineUserId("U2"))
    await redis.aclose()


async def test_items_survive_a_lone_surrogate(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {"text": "\ud83d"})])
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert claim.payload == {"text": "\ud83d"}


async def test_a_fired_timer_cannot_be_armed_again(store: Store) -> None:
    await arm(store, "closing", "100", 1.0)  # long due
    await arm(store, "closing", "100", 999_999_999.0)  # an armed timer keeps its time
    fired, _, _ = await store.fire_due_timers()
    assert fired == 1
    await arm(store, "closing", "100", 1.0)  # a late event re-arming it
    assert await store.fire_due_timers() == (0, None, ())
    entries: Any = await store.redis.xrange(store.keys.inbound)
    assert [e[1][b"body"] for e in entries] == [b"closing|100"]


async def test_timers_fire_in_due_order_and_report_the_next(store: Store) -> None:
    import time as clock

    now = clock.time()
    await arm(store, "busy", "2:0", now - 1)
    await arm(store, "busy", "1:0", now - 2)
    await arm(store, "busy", "3:0", now + 30)
    fired, next_in, lateness = await store.fire_due_timers()
    assert fired == 2 and next_in is not None and 25 < next_in <= 30
    assert lateness == pytest.approx((2.0, 1.0), abs=0.5)  # how late each moved, in due order
    entries: Any = await store.redis.xrange(store.keys.inbound)
    bodies = [e[1][b"body"] for e in entries]
    assert bodies == [b"busy|1:0", b"busy|2:0"]


async def test_a_leased_lane_is_not_claimed_again_even_by_a_clock_that_runs_ahead(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease, not the due time, decides: a worker whose clock is a minute ahead sees the lane
    as due, and must still leave it to the worker holding its lease."""
    await enqueue(store, [("slack:1", "1-0.0", {"kind": "x"})])
    first = await store.claim(token="A", lease_ms=30_000, max_lanes=1)
    assert [c.item_id for c in first] == ["1-0.0"]
    ahead = lanes_module.now_ms() + 60_000
    monkeypatch.setattr(lanes_module, "now_ms", lambda: ahead)
    assert await store.claim(token="B", lease_ms=30_000, max_lanes=1) == []
    assert await store.redis.get(store.keys.lanes_prefix + "lease:slack:1") == b"A"


async def handing_off(
    store: Store, items: list[tuple[str, str, dict[str, Any]]], *, max_lanes: int, token: str = "w:handed"
) -> tuple[Committed, list[Any], list[Any]]:
    """Enqueue as a commit does, leasing the lanes it makes due for token; returns the result,
    the claims and the wake-ups published meanwhile."""
    async with store.redis.pubsub() as pubsub:
        await pubsub.subscribe(store.keys.wake_channel)
        await pubsub.get_message(timeout=1)  # the subscription's confirmation
        ops = Ops()
        for lane, item_id, payload in items:
            ops.enqueue(store.keys.lane(lane), store.keys.due, lane, encode_item(item_id, payload, now_ms()))
        result, claims = await store.commit_handing_off(ops, token=token, lease_ms=5000, max_lanes=max_lanes)
        wakes = []
        while (message := await pubsub.get_message(timeout=0.05)) is not None:
            wakes.append(message)
    return result, claims, wakes


async def test_a_commit_leases_the_lanes_it_makes_due_for_the_committing_worker(store: Store) -> None:
    result, claims, wakes = await handing_off(
        store, [("slack:1", "a", {"n": 1}), ("slack:1", "b", {"n": 2}), ("line:c", "c", {"n": 3})], max_lanes=5
    )
    assert result is Committed.DONE
    assert [(c.lane, c.item_id, c.payload, c.attempts) for c in claims] == [
        ("slack:1", "a", {"n": 1}, 1),
        ("line:c", "c", {"n": 3}, 1),
    ]
    assert wakes == []  # every new lane has a deliverer: nobody else is woken
    assert await store.claim(token="other", lease_ms=5000, max_lanes=5) == []  # leased already
    # The handed lease works like any other: completing pops the head and moves the lane on.
    leases = [await store.redis.get(store.keys.lanes_prefix + f"lease:{c.lane}") for c in claims]
    assert leases == [handed_token("w:handed", 0).encode(), handed_token("w:handed", 1).encode()]  # each its own
    assert await store.complete(claims[0], token=handed_token("w:handed", 0))
    (second,) = await store.claim(token="other", lease_ms=5000, max_lanes=5)
    assert second.item_id == "b"


async def test_lanes_beyond_the_hand_off_wake_the_other_deliverers(store: Store) -> None:
    result, claims, wakes = await handing_off(store, [("slack:1", "a", {}), ("slack:2", "b", {})], max_lanes=1)
    assert result is Committed.DONE
    assert [c.lane for c in claims] == ["slack:1"]
    assert len(wakes) == 1
    (left,) = await store.claim(token="other", lease_ms=5000, max_lanes=5)
    assert left.lane == "slack:2"


async def test_a_lane_already_due_or_leased_is_not_handed_off(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {})])
    (busy,) = await store.claim(token="w1", lease_ms=5000, max_lanes=1)
    result, claims, wakes = await handing_off(store, [("slack:1", "b", {})], max_lanes=5)
    assert (result, claims, wakes) == (Committed.DONE, [], [])  # its deliverer goes on with it
    assert await store.complete(busy, token="w1")
    (after,) = await store.claim(token="w2", lease_ms=5000, max_lanes=1)
    assert after.item_id == "b"


async def test_a_paused_platform_is_not_handed_off(store: Store) -> None:
    await store.pause_platform("slack", 30)
    result, claims, wakes = await handing_off(store, [("slack:1", "a", {}), ("line:x", "b", {})], max_lanes=5)
    assert result is Committed.DONE
    assert [c.lane for c in claims] == ["line:x"]
    assert len(wakes) == 1  # the paused lane was left for later
    assert await store.claim(token="other", lease_ms=5000, max_lanes=5) == []  # due when the pause ends


async def test_a_refused_commit_hands_off_nothing(store: Store) -> None:
    ops = Ops()
    ops.value_is(store.keys.case_seq, "41")  # unset: the check fails
    ops.enqueue(store.keys.lane("slack:1"), store.keys.due, "slack:1", encode_item("a", {}, now_ms()))
    result, claims = await store.commit_handing_off(ops, token="w:handed", lease_ms=5000, max_lanes=5)
    assert (result, claims) == (Committed.CONFLICT, [])
    assert await store.redis.zcard(store.keys.due) == 0


async def test_a_thread_is_not_recorded_for_a_case_whose_record_is_gone(store: Store) -> None:
    """A root posted while its case was erased on request: nothing comes back (a case hash with
    only a thread in it would be a record no load can read)."""
    await store.record_thread(7, "slack:7", "111.1")
    assert await store.redis.keys("*") == []
    await store.redis.hset(store.keys.case(8), mapping={"v": "1", "number": "8"})
    await store.record_thread(8, "slack:8", "222.2")
    assert await store.redis.hget(store.keys.case(8), "thread_ts") == b"222.2"
    assert await store.redis.hget(store.keys.by_thread, "222.2") == b"8"


async def test_a_post_that_carried_the_items_behind_the_head_completes_them_with_it(store: Store) -> None:
    await enqueue(store, [("slack:1", "a", {}), ("slack:1", "b", {}), ("slack:1", "c", {}), ("slack:1", "d", {})])
    (head,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert [item.split("|")[0] for item in await store.waiting_behind("slack:1", 9)] == ["b", "c", "d"]
    # Popped while they are still the head, in order: an id that is not stops it.
    popped, _, _ = await store.complete_and_claim(head, token="w", carried=["b", "x", "c"])
    assert popped
    (next_one,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert next_one.item_id == "c"
