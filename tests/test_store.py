"""The Redis scripts, on fakeredis (with Lua): recording, cases, and the delivery lanes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakeredis import aioredis

import bridge.adapters.redis.store as store_module
from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.store import Store
from bridge.core.case import Queue
from bridge.core.safety import Recent


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


async def test_one_open_case_per_child_even_when_asked_at_once(store: Store) -> None:
    results = await asyncio.gather(*(store.open_or_get_case("Uone", 1.0) for _ in range(20)))
    assert {number for number, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    assert (await store.open_or_get_case("Utwo", 2.0)) == (2, True)


async def test_closing_frees_the_child_for_a_new_case(store: Store) -> None:
    number, _ = await store.open_or_get_case("Uone", 1.0)
    assert await store.close_case(number, "unfollowed", 2.0)
    assert not await store.close_case(number, "unfollowed", 3.0)  # closing twice changes nothing
    case = await store.get_case(number)
    assert case is not None and not case.is_open and case.closed_reason == "unfollowed"
    assert await store.open_case_of("Uone") is None
    assert (await store.open_or_get_case("Uone", 4.0)) == (2, True)


async def test_thread_is_recorded_once(store: Store) -> None:
    number, _ = await store.open_or_get_case("Uone", 1.0)
    assert await store.set_thread(number, "111.1")
    assert not await store.set_thread(number, "222.2")
    assert (await store.get_case(number)).thread_ts == "111.1"  # type: ignore[union-attr]
    assert await store.case_by_thread("111.1") == number
    assert await store.case_by_thread("222.2") is None


async def test_key_names_never_carry_the_line_user_id(store: Store) -> None:
    await store.open_or_get_case("Usecret", 1.0)
    await store.enqueue([("line:" + store.child_key("Usecret"), "i1", {"kind": "x"})], marker="m")
    keys = [key.decode() async for key in store.redis.scan_iter()]
    assert keys and not any("Usecret" in key for key in keys)
    assert all("{" in key for key in keys)  # every key carries a hash tag


async def test_enqueue_applies_once_per_marker(store: Store) -> None:
    assert await store.enqueue([("slack:1", "a", {"n": 1})], marker="entry-1")
    assert not await store.enqueue([("slack:1", "a", {"n": 1})], marker="entry-1")
    assert await store.lane_length("slack:1") == 1


async def test_a_lane_delivers_in_order_one_at_a_time(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {"n": 1}), ("slack:1", "b", {"n": 2})], marker=None)
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
    await store.enqueue([("slack:1", "a", {}), ("slack:2", "b", {}), ("line:x", "c", {})], marker=None)
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert sorted(c.lane for c in claims) == ["line:x", "slack:1", "slack:2"]


async def test_retry_later_keeps_the_item_first_and_counts_attempts(store: Store) -> None:
    await store.enqueue([("line:x", "a", {"v": 1}), ("line:x", "b", {})], marker=None)
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert await store.retry_later(claim, token="w", delay_s=0, replacement={"v": 2})
    (again,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert (again.item_id, again.payload, again.attempts) == ("a", {"v": 2}, 2)
    assert again.enqueued_ms == claim.enqueued_ms


async def test_retry_later_waits(store: Store) -> None:
    await store.enqueue([("line:x", "a", {})], marker=None)
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    await store.retry_later(claim, token="w", delay_s=30)
    assert await store.claim(token="w", lease_ms=5000, max_lanes=1) == []
    wait = await store.next_due_in()
    assert wait is not None and 25 < wait <= 30


async def test_an_expired_lease_hands_the_lane_to_another_worker(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {})], marker=None)
    (lost,) = await store.claim(token="dead", lease_ms=50, max_lanes=1)
    await asyncio.sleep(0.1)
    (taken,) = await store.claim(token="alive", lease_ms=5000, max_lanes=1)
    assert taken.item_id == "a" and taken.attempts == 2
    # The dead worker's late completion still pops the same item only once.
    assert await store.complete(lost, token="dead")
    assert not await store.complete(taken, token="alive")
    assert await store.lane_length("slack:1") == 0


async def test_complete_appends_follow_ups_atomically(store: Store) -> None:
    await store.enqueue([("line:x", "a", {})], marker=None)
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    await store.complete(claim, token="w", followups=[("slack:3", "a.f0", {"kind": "reaction"})])
    (follow,) = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert (follow.lane, follow.item_id) == ("slack:3", "a.f0")


async def test_a_hold_pauses_one_platform_only(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {}), ("line:x", "b", {})], marker=None)
    await store.pause_platform("slack", 30)
    claims = await store.claim(token="w", lease_ms=5000, max_lanes=5)
    assert [c.lane for c in claims] == ["line:x"]


def test_item_ids_may_not_contain_the_separator() -> None:
    from bridge.adapters.redis.store import encode_item

    with pytest.raises(ValueError):
        encode_item("a|b", {}, 0)


def test_keys_share_slots_by_concern() -> None:
    keys = Keys()
    assert "{in}" in keys.inbound and "{in}" in keys.seen("line", "x") and "{in}" in keys.router_lease
    assert "{cases}" in keys.case(3) and "{cases}" in keys.open_by_child and "{cases}" in keys.by_thread
    assert "{dq}" in keys.lane("slack:1") and "{dq}" in keys.due and "{dq}" in keys.platform_pause("slack")


async def test_a_heartbeat_keeps_the_lane_and_a_lost_lease_says_so(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {})], marker=None)
    assert await store.claim(token="w1", lease_ms=100, max_lanes=1)
    for _ in range(3):
        await asyncio.sleep(0.06)
        assert await store.renew_lane_lease("slack:1", token="w1", lease_ms=100)
    assert await store.claim(token="w2", lease_ms=100, max_lanes=1) == []  # still ours
    assert not await store.renew_lane_lease("slack:1", token="w2", lease_ms=100)


async def test_set_aside_keeps_the_item_and_moves_the_lane_on(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {"text": "こども"}), ("slack:1", "b", {})], marker=None)
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert await store.set_aside_delivery(claim, token="w")
    aside: Any = await store.redis.xrange(store.keys.deliveries_set_aside)
    assert len(aside) == 1 and aside[0][1][b"lane"] == b"slack:1"
    (following,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert following.item_id == "b"


async def test_router_lease_is_exclusive_and_reentrant(store: Store) -> None:
    assert await store.acquire_router_lease("a", 5000)
    assert await store.acquire_router_lease("a", 5000)  # its holder may take it again
    assert not await store.acquire_router_lease("b", 5000)
    await store.release_router_lease("a")
    await asyncio.sleep(0.01)
    assert await store.acquire_router_lease("b", 5000)


async def test_the_pseudonym_key_is_made_once_and_shared() -> None:
    redis = aioredis.FakeRedis()
    first, second = Store(redis), Store(redis)
    with pytest.raises(RuntimeError):
        first.child_key("U1")
    await first.prepare()
    await second.prepare()
    assert first.child_key("U1") == second.child_key("U1") != first.child_key("U2")
    await redis.aclose()


async def test_items_survive_a_lone_surrogate(store: Store) -> None:
    await store.enqueue([("slack:1", "a", {"text": "\ud83d"})], marker=None)
    (claim,) = await store.claim(token="w", lease_ms=5000, max_lanes=1)
    assert claim.payload == {"text": "\ud83d"}


async def test_a_fired_timer_cannot_be_armed_again(store: Store) -> None:
    await store.schedule_timer("closing", "100", 1.0)  # long due
    await store.schedule_timer("closing", "100", 999_999_999.0)  # an armed timer keeps its time
    fired, _ = await store.fire_due_timers()
    assert fired == 1
    await store.schedule_timer("closing", "100", 1.0)  # a late event re-arming it
    assert await store.fire_due_timers() == (0, None)
    entries: Any = await store.redis.xrange(store.keys.inbound)
    assert [e[1][b"body"] for e in entries] == [b"closing|100"]


async def test_timers_fire_in_due_order_and_report_the_next(store: Store) -> None:
    import time as clock

    now = clock.time()
    await store.schedule_timer("busy", "2:0", now - 1)
    await store.schedule_timer("busy", "1:0", now - 2)
    await store.schedule_timer("busy", "3:0", now + 30)
    fired, next_in = await store.fire_due_timers()
    assert fired == 2 and next_in is not None and 25 < next_in <= 30
    entries: Any = await store.redis.xrange(store.keys.inbound)
    bodies = [e[1][b"body"] for e in entries]
    assert bodies == [b"busy|1:0", b"busy|2:0"]


async def test_waiting_order_counts_unanswered_cases_opened_earlier(store: Store) -> None:
    for child in ("Ua", "Ub", "Uc"):
        await store.open_or_get_case(child, 1.0)
    assert await store.queue_of(3) == Queue(open_cases=3, place=3)
    await store.assign_counsellor(1, "UC1", 2.0)
    assert await store.queue_of(3) == Queue(open_cases=3, place=2)
    await store.close_case(2, "unfollowed", 3.0)
    assert await store.queue_of(3) == Queue(open_cases=2, place=1)
    assert [c.number for c in await store.open_cases()] == [1, 3]


async def test_the_entry_that_opened_a_case_is_kept(store: Store) -> None:
    number, created = await store.open_or_get_case("Ua", 1.0, entry_id="5-0")
    again, created_again = await store.open_or_get_case("Ua", 1.0, entry_id="5-0")
    assert (number, created, again, created_again) == (1, True, 1, False)
    assert (await store.get_case(1)).opened_by == "5-0"  # type: ignore[union-attr]


async def test_a_childs_later_case_knows_the_earlier_numbers(store: Store) -> None:
    await store.open_or_get_case("Ua", 1.0)
    await store.open_or_get_case("Ub", 1.0)
    await store.close_case(1, "unfollowed", 2.0)
    number, _ = await store.open_or_get_case("Ua", 3.0)
    await store.close_case(number, "unfollowed", 4.0)
    latest, _ = await store.open_or_get_case("Ua", 5.0)
    assert (await store.get_case(latest)).earlier == (1, 3)  # type: ignore[union-attr]
    assert (await store.get_case(2)).earlier == ()  # type: ignore[union-attr]


# --- issue 5: blocks, floods, the audit and the roster ------------------------------------


async def test_a_block_is_kept_by_pseudonym_and_lifted(store: Store) -> None:
    number, _ = await store.open_or_get_case("Uone", 1.0)
    await store.block_child(number, by="US", reason="迷惑", at=2.0)
    block = await store.block_of("Uone")
    assert block is not None and (block.case, block.by, block.reason) == (number, "US", "迷惑")
    assert "Uone" not in str(await store.redis.hkeys(store.keys.blocked))  # keyed by pseudonym
    await store.count_blocked_message(number, marker="e1:0")
    await store.count_blocked_message(number, marker="e1:0")  # a replay of the same decision
    case = await store.get_case(number)
    assert case is not None and case.blocked and case.blocked_count == 1
    await store.unblock_child(number)
    case = await store.get_case(number)
    assert await store.block_of("Uone") is None and case is not None and not case.blocked


async def test_the_flood_window_counts_each_message_once_and_forgets_old_ones(store: Store) -> None:
    assert await store.note_recent(1, "e1", sticker=True, at=100.0, window_s=60) == Recent(1, 1)
    assert await store.note_recent(1, "e2", sticker=False, at=110.0, window_s=60) == Recent(2, 1)
    assert await store.note_recent(1, "e2", sticker=False, at=110.0, window_s=60) == Recent(2, 1)  # a replay
    assert await store.note_recent(1, "e3", sticker=True, at=165.0, window_s=60) == Recent(2, 1)  # e1 has left


async def test_held_messages_are_kept_once_in_order_and_released(store: Store) -> None:
    number, _ = await store.open_or_get_case("Uone", 1.0)
    await store.start_flood(number, 500.0)
    for marker, text in (("m1", "あのね"), ("m2", None), ("m1", "あのね"), ("m3", "きいて")):
        await store.hold_back(number, text, marker=marker)  # m1 twice: a replay keeps it once
    assert await store.held_of(number) == (["あのね", "きいて"], 1)
    case = await store.get_case(number)
    assert case is not None and case.flood_until == 500.0
    await store.release_flood(number)
    case = await store.get_case(number)
    assert await store.held_of(number) == ([], 0) and case is not None and case.flood_until is None


async def test_audit_records_are_kept_once_and_dropped_after_retention(store: Store) -> None:
    import time

    now = time.time()
    # Entries get their ids from the server clock: pretend one was written 40 days ago.
    await store.redis.xadd(store.keys.audit, {"case": "1", "action": "old"}, id=f"{int((now - 40 * 86400) * 1000)}-0")
    assert await store.trim_audit(retention_days=30) == 1
    record = {"case": "3", "actor": "UC", "action": "close", "reason": "memo", "via": "command"}
    assert await store.add_audit("1-0:0", record, at=now, retention_days=30)
    assert not await store.add_audit("1-0:0", record, at=now, retention_days=30)  # a replay
    await store.add_audit("2-0:1", {**record, "case": "4"}, at=now, retention_days=30)
    assert [r["case"] for r in await store.audit_records()] == ["3", "4"]
    assert [r["action"] for r in await store.audit_records(case=4)] == ["close"]
    assert await store.audit_records(since=now + 60) == []
    assert await store.trim_audit(retention_days=30) == 0  # nothing within retention is dropped


async def test_the_roster_is_replaced_whole_and_a_failed_group_read_keeps_the_last(store: Store) -> None:
    assert await store.roster() is None  # never read: controls are refused, not guessed
    await store.save_roster(["U1", "U2"], ["U2"], at=1.0)
    roster = await store.roster()
    assert roster is not None and roster.members == {"U1", "U2"} and roster.group_supervisors == {"U2"}
    await store.save_roster(["U1"], None, at=2.0)
    roster = await store.roster()
    assert roster is not None and roster.members == {"U1"} and roster.group_supervisors == {"U2"}
    await store.change_member("U3", joined=True)
    await store.change_member("U1", joined=False)
    roster = await store.roster()
    assert roster is not None and roster.members == {"U3"}


async def test_a_closed_case_forgets_the_line_user_id_but_keeps_history_and_blocks(store: Store) -> None:
    first, _ = await store.open_or_get_case("Uone", 1.0)
    open_one, _ = await store.open_or_get_case("Utwo", 1.5)
    await store.close_case(first, "idle", 2.0)
    assert await store.erase_closed_children_ids(closed_before=1.9) == 0  # not yet due
    assert await store.erase_closed_children_ids(closed_before=3.0) == 1
    assert await store.erase_closed_children_ids(closed_before=3.0) == 0  # once
    case = await store.get_case(first)
    assert (
        case is not None
        and case.child_id == ""
        and "Uone" not in str(await store.redis.hgetall(store.keys.case(first)))
    )
    still_open = await store.get_case(open_one)
    assert still_open is not None and still_open.child_id == "Utwo"  # open cases are never touched
    # The pseudonym remains: the child's next case lists the earlier one, and a block still works.
    second, _ = await store.open_or_get_case("Uone", 4.0)
    later = await store.get_case(second)
    assert later is not None and later.earlier == (first,)
    assert await store.open_case_of_case(first) == second
    await store.block_child(first, by="US", reason="迷惑", at=5.0)
    assert await store.block_of("Uone") is not None and await store.block_of_case(second) is not None


async def test_a_replayed_entry_gets_what_its_first_run_kept(store: Store) -> None:
    first = [{"effect": "MarkUrgent", "number": 3}]
    assert await store.record_decision("1-0", [("slack:3", "1-0.0", {"n": 1})], first) is None  # first run
    # A replay (the worker died before settling): the first run's effects, nothing enqueued again.
    assert await store.record_decision("1-0", [("slack:3", "1-0.0", {"n": 2})], []) == first
    assert await store.lane_length("slack:3") == 1
    await store.drop_routed_entry("1-0")
    assert await store.redis.get(store.keys.applied("1-0")) == b"1"  # no content left behind
    assert await store.record_decision("1-0", [], [{"effect": "MarkUrgent", "number": 9}]) == []  # all applied


async def test_a_blocked_child_opens_no_case(store: Store) -> None:
    number, _ = await store.open_or_get_case("Uone", 1.0)
    await store.close_case(number, "blocked", 2.0)
    await store.block_child(number, by="US", reason="迷惑", at=2.0)
    opened, created, block = await store.open_case_unless_blocked("Uone", 3.0)
    assert (opened, created) == (0, False) and block is not None and block.case == number
    assert await store.open_case_of("Uone") is None
    assert await store.open_case_unless_blocked("Utwo", 3.0) == (2, True, None)


async def test_a_leased_lane_is_not_claimed_again_even_by_a_clock_that_runs_ahead(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease, not the due time, decides: a worker whose clock is a minute ahead sees the lane
    as due, and must still leave it to the worker holding its lease."""
    await store.record_decision("1-0", [("slack:1", "1-0.0", {"kind": "x"})], [])
    first = await store.claim(token="A", lease_ms=30_000, max_lanes=1)
    assert [c.item_id for c in first] == ["1-0.0"]
    ahead = store_module.now_ms() + 60_000
    monkeypatch.setattr(store_module, "now_ms", lambda: ahead)
    assert await store.claim(token="B", lease_ms=30_000, max_lanes=1) == []
    assert await store.redis.get(store.keys.lanes_prefix + "lease:slack:1") == b"A"
