"""How decisions reach Redis: one pass per entry (load, decide, commit), on fakeredis with Lua.

These are the rules that used to live in Lua scripts (one open case per child, the block
check, the history kept, the first counsellor, the place in line, what a flood's cool-down defers):
they are decided by the core now, and these tests check that what the commit writes is what
the next pass reads back, and that a commit is all or nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakeredis import aioredis

from bridge import core
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.store import Store
from bridge.config.policy_file import load_policy
from bridge.core.case import Queue
from bridge.core.deliveries import PostRole, ThreadPost, from_payload
from bridge.core.events import ControlVia, InboundEvent
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId, ThreadTs
from bridge.core.parts import ChildWords, text_from_payload
from bridge.core.rules.floods import Deferred, Recent
from bridge.core.schedule.model import Schedule
from bridge.engine.commit import Loaded
from bridge.engine.router import Router
from tests.conftest import line_user_id
from tests.slack_text import slack

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = {
    day: ["00:00-24:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}
# Children, by LINE user IDs of LINE's form (the parser ignores any other).
ONE, TWO, SECRET = line_user_id(1), line_user_id(2), line_user_id(0x5EC)
A, B, C = line_user_id(0xA), line_user_id(0xB), line_user_id(0xC)


async def router_on(redis: Any) -> Router:
    """A router on this Redis with the shipped policy, open around the clock, its group made."""
    store = Store(redis, child_key_secret=b"k")
    policy = load_policy(ROOT / "config" / "bridge.toml")
    policy = dataclasses.replace(policy, schedule=Schedule.from_config(ALWAYS, policy.timezone))
    made = Router(name="r1", policy=policy, channel="CCASES", redis=redis, store=store)
    await store.ensure_router_group()
    return made


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    redis = aioredis.FakeRedis()
    yield await router_on(redis)
    await redis.aclose()


def child_text(text: str, child: str = ONE) -> str:
    return json.dumps(
        {
            "type": "message",
            "webhookEventId": uuid.uuid4().hex,
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": child},
            "message": {"type": "text", "id": "1", "text": text},
        }
    )


async def recorded(router: Router, body: str, source: str = "line") -> tuple[str, dict[Any, Any]]:
    await router.store.record_events(source, [(uuid.uuid4().hex, body)])
    response: Any = await router.redis.xreadgroup("router", "t", {router.store.keys.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    return entry_id.decode(), fields


async def route(router: Router, body: str, source: str = "line") -> str:
    entry_id, fields = await recorded(router, body, source)
    await router.route_entry(entry_id, fields)
    return entry_id


async def apply(router: Router, *effects: core.Effect, cases: tuple[int, ...] = (), now: float = 2.0) -> Committed:
    """Commit effects as a decision made from these cases would."""
    loaded = Loaded()
    for number in cases:
        loaded.case(await router.store.case_record(CaseNumber(number)))
    return await router.commit(core.Decision(effects=effects), loaded, now=now, entry_id=None)


async def lane(router: Router, name: str) -> list[dict[str, Any]]:
    items: Any = await router.redis.lrange(router.store.keys.lane(name), 0, -1)
    return [json.loads(item.decode().partition("|")[2])["delivery"] for item in items]


async def queue_of(router: Router, number: int) -> Queue:
    opened, before = await router.store.queue_counts(CaseNumber(number))
    return Queue.of(open_cases=opened, unanswered_before=before)


def event_of(body: str) -> InboundEvent:
    from bridge.adapters.line.webhook import parse_event

    return parse_event(json.loads(body))


async def test_one_open_case_per_child_even_when_two_passes_race(router: Router) -> None:
    """Two passes decided from the same reads (as two routers after a lease lapse): the second
    commit finds the child's case opened meanwhile, writes nothing, and its re-run joins it."""
    first_body, second_body = child_text("ひとつめ"), child_text("ふたつめ")
    first, _ = await recorded(router, first_body)
    second, _ = await recorded(router, second_body)
    now = time.time()
    loaded_first, loaded_second = Loaded(), Loaded()
    decided_first = await router.decide(first, event_of(first_body), now, loaded_first)
    decided_second = await router.decide(second, event_of(second_body), now, loaded_second)
    assert await router.commit(decided_first, loaded_first, now=now, entry_id=first) is Committed.DONE
    before = {key: await router.redis.type(key) async for key in router.redis.scan_iter()}
    assert await router.commit(decided_second, loaded_second, now=now, entry_id=second) is Committed.CONFLICT
    after = {key: await router.redis.type(key) async for key in router.redis.scan_iter()}
    assert before == after and await router.redis.xlen(router.store.keys.inbound) == 1  # nothing written
    assert await router.pass_once(second, event_of(second_body)) is Committed.DONE
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and case.is_open and await router.store.get_case(CaseNumber(2)) is None
    posts = [d for d in await lane(router, "slack:1") if d["kind"] == "thread_post" and d["role"] == "child"]
    assert [slack(text_from_payload(p["text"])) for p in posts] == ["ひとつめ", "ふたつめ"]
    assert [d["kind"] for d in await lane(router, "slack:1")].count("root_post") == 1
    await route(router, child_text("べつのこ", child=TWO))
    assert await router.store.open_case_of(LineUserId(TWO)) == 2


async def test_a_committed_entry_is_not_committed_again(router: Router) -> None:
    """A replay of an entry whose commit landed (the worker died before noticing): nothing."""
    body = child_text("一回")
    entry_id, _ = await recorded(router, body)
    assert await router.pass_once(entry_id, event_of(body)) is Committed.DONE
    assert await router.pass_once(entry_id, event_of(body)) is Committed.GONE
    assert [d["kind"] for d in await lane(router, "slack:1")] == ["root_post", "thread_post"]
    assert await router.redis.xlen(router.store.keys.inbound) == 0  # the words left the stream


async def test_closing_frees_the_child_for_a_new_case(router: Router) -> None:
    await route(router, child_text("はじめ"))
    assert await apply(router, core.CloseCase(CaseNumber(1), core.CloseReason.UNFOLLOWED), cases=(1,)) is Committed.DONE
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and not case.is_open and case.closed_reason == "unfollowed"
    assert await router.store.open_case_of(LineUserId(ONE)) is None
    # Closing a closed case is decided as nothing by the core: the child's next message opens #2.
    assert core.on_child_unfollowed(case, router.policy, now=3.0) == core.NOTHING
    await route(router, child_text("また"))
    assert await router.store.open_case_of(LineUserId(ONE)) == 2


async def test_a_version_check_refuses_a_decision_made_from_an_older_case(router: Router) -> None:
    await route(router, child_text("はじめ"))
    stale = Loaded()
    stale.case(await router.store.case_record(CaseNumber(1)))
    assert await apply(router, core.HoldCase(CaseNumber(1)), cases=(1,)) is Committed.DONE  # the case changes meanwhile
    decision = core.Decision(effects=(core.MarkUrgent(CaseNumber(1)),))
    assert await router.commit(decision, stale, now=2.0, entry_id=None) is Committed.CONFLICT
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and case.hold and not case.urgent


async def test_the_thread_is_recorded_once_for_the_case_its_lookup_and_its_lane(router: Router) -> None:
    await route(router, child_text("はじめ"))
    await router.store.record_thread(1, "slack:1", "111.1")
    await router.store.record_thread(1, "slack:1", "222.2")  # an earlier post found again: no change
    assert (await router.store.get_case(CaseNumber(1))).thread_ts == "111.1"  # type: ignore[union-attr]
    assert await router.store.case_by_thread(ThreadTs("111.1")) == 1
    assert await router.store.case_by_thread(ThreadTs("222.2")) is None
    assert await router.redis.hget(router.store.keys.lane_threads, "slack:1") == b"111.1"


async def test_key_names_never_carry_the_line_user_id(router: Router) -> None:
    await route(router, child_text("ひみつ", child=SECRET))
    keys = [key.decode() async for key in router.redis.scan_iter()]
    assert keys and not any(SECRET in key for key in keys)
    assert all("{" in key for key in keys)  # every key carries a hash tag


async def test_waiting_order_counts_unanswered_cases_opened_earlier(router: Router) -> None:
    for child in (A, B, C):
        await route(router, child_text("こんにちは", child=child))
    assert await queue_of(router, 3) == Queue(open_cases=3, place=3)
    assert (
        await apply(router, core.AssignCounsellor(CaseNumber(1), SlackUserId("UC1"), 2.0), cases=(1,)) is Committed.DONE
    )
    assert await queue_of(router, 3) == Queue(open_cases=3, place=2)
    await apply(router, core.CloseCase(CaseNumber(2), core.CloseReason.UNFOLLOWED), cases=(2,))
    assert await queue_of(router, 3) == Queue(open_cases=2, place=1)
    assert [c.number for c in await router.store.open_cases()] == [1, 3]


async def test_a_new_case_is_told_its_place_in_line(router: Router) -> None:
    router.policy = dataclasses.replace(router.policy, capacity=1)
    await route(router, child_text("いちばん", child=A))
    await route(router, child_text("にばん", child=B))
    (busy,) = [
        d for d in await lane(router, "line:" + router.store.child_key(LineUserId(B))) if d["kind"] == "line_reply"
    ]
    assert busy["texts"] == [router.policy.render("busy_notice", place=2)]


async def test_a_childs_later_case_knows_the_earlier_numbers(router: Router) -> None:
    await route(router, child_text("いち", child=A))
    await route(router, child_text("に", child=B))
    await apply(router, core.CloseCase(CaseNumber(1), core.CloseReason.UNFOLLOWED), cases=(1,))
    await route(router, child_text("さん", child=A))
    await apply(router, core.CloseCase(CaseNumber(3), core.CloseReason.UNFOLLOWED), cases=(3,))
    await route(router, child_text("よん", child=A))
    assert (await router.store.get_case(CaseNumber(4))).earlier == (1, 3)  # type: ignore[union-attr]
    assert (await router.store.get_case(CaseNumber(2))).earlier == ()  # type: ignore[union-attr]
    (root,) = [d for d in await lane(router, "slack:4") if d["kind"] == "root_post"]
    assert "#1, #3" in slack(text_from_payload(root["text"]))


async def test_the_history_keeps_the_latest_ten_cases(router: Router) -> None:
    for number in range(1, 13):
        await route(router, child_text(f"{number}回目"))
        await apply(router, core.CloseCase(CaseNumber(number), core.CloseReason.IDLE), cases=(number,))
    await route(router, child_text("13回目"))
    assert (await router.store.get_case(CaseNumber(13))).earlier == tuple(range(3, 13))  # type: ignore[union-attr]


async def test_a_block_is_kept_by_pseudonym_counted_and_lifted(router: Router) -> None:
    await route(router, child_text("はじめ"))
    assert (
        await apply(router, core.BlockChild(CaseNumber(1), SlackUserId("US"), "迷惑", 2.0), cases=(1,))
        is Committed.DONE
    )
    block = await router.store.block_of(LineUserId(ONE))
    assert block is not None and (block.case, block.by, block.reason) == (1, "US", "迷惑")
    assert ONE not in str(await router.redis.hkeys(router.store.keys.blocked))  # keyed by pseudonym
    entry_id = await route(router, child_text("またきたよ"))  # counted on the case, not relayed
    replayed = await router.pass_once(entry_id, event_of(child_text("またきたよ")))
    assert replayed is Committed.GONE  # a replay of the same entry counts nothing again
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and case.blocked and case.blocked_count == 1
    assert [from_payload(d) for d in await lane(router, "slack:1") if d.get("role") == "child"] == [
        ThreadPost(case=CaseNumber(1), text=(ChildWords("はじめ"),), role=PostRole.CHILD)
    ]
    assert (
        await apply(router, core.UnblockChild(CaseNumber(1), shown_on=(CaseNumber(1),)), cases=(1,)) is Committed.DONE
    )
    case = await router.store.get_case(CaseNumber(1))
    assert await router.store.block_of(LineUserId(ONE)) is None and case is not None and not case.blocked


async def test_a_blocked_child_opens_no_case(router: Router) -> None:
    await route(router, child_text("はじめ"))
    await apply(
        router,
        core.CloseCase(CaseNumber(1), core.CloseReason.BLOCKED),
        core.BlockChild(CaseNumber(1), SlackUserId("US"), "迷惑", 2.0),
        cases=(1,),
    )
    await route(router, child_text("あけて"))
    assert (
        await router.store.open_case_of(LineUserId(ONE)) is None and await router.store.get_case(CaseNumber(2)) is None
    )
    await route(router, child_text("こんにちは", child=TWO))
    assert await router.store.open_case_of(LineUserId(TWO)) == 2


async def test_the_flood_window_counts_each_message_once_and_forgets_old_ones(router: Router) -> None:
    await route(router, child_text("はじめ"))
    window = 60
    for at, sticker, entry in ((100.0, True, "e1"), (110.0, False, "e2"), (110.0, False, "e2"), (165.0, True, "e3")):
        await _note(router, entry, at, sticker, window)  # e2 twice: the same message noted again
    loaded = await router.store.load_child(LineUserId(ONE), now=165.0, window_s=window)
    assert loaded.recent == Recent(2, 1)  # e1 has left the window; e2 counted once


async def _note(router: Router, entry: str, at: float, sticker: bool, window: int) -> None:
    from bridge.engine.commit import Plan

    plan = Plan(
        keys=router.store.keys, loaded=Loaded(), child_key=router.store.child_key, now=at, audit_retention_days=1
    )
    plan.effects([core.NoteRecent(CaseNumber(1), at, sticker, window)], entry_id=entry)
    assert await router.store.commit(plan.ops) is Committed.DONE


async def test_deferred_messages_are_kept_in_order_and_released(router: Router) -> None:
    await route(router, child_text("はじめ"))
    await apply(router, core.StartFlood(CaseNumber(1), 500.0), cases=(1,))
    for text in ("あのね", None, "きいて"):
        await apply(router, core.DeferMessage(CaseNumber(1), text), cases=(1,))
    assert await router.store.deferred_of(CaseNumber(1)) == Deferred(("あのね", "きいて"), 1)
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and case.flood_until == 500.0
    await apply(router, core.ReleaseFlood(CaseNumber(1)), cases=(1,))
    case = await router.store.get_case(CaseNumber(1))
    assert await router.store.deferred_of(CaseNumber(1)) == Deferred() and case is not None and case.flood_until is None


async def test_a_cool_down_counts_what_it_keeps_and_what_it_drops(router: Router) -> None:
    await route(router, child_text("はじめ"))
    await apply(router, core.StartFlood(CaseNumber(1), 500.0), cases=(1,))
    await apply(router, core.DeferMessage(CaseNumber(1), "あのね"), cases=(1,))
    await apply(router, core.DeferMessage(CaseNumber(1), None, dropped=True), cases=(1,))
    await apply(router, core.DeferMessage(CaseNumber(1), None, dropped=True), cases=(1,))
    assert await router.store.deferred_of(CaseNumber(1)) == Deferred(("あのね",), 0, 2)
    case = await router.store.get_case(CaseNumber(1))
    assert case is not None and case.deferred_texts == 1  # what the next decision caps against
    await apply(router, core.ReleaseFlood(CaseNumber(1)), cases=(1,))
    case = await router.store.get_case(CaseNumber(1))
    assert await router.store.deferred_of(CaseNumber(1)) == Deferred() and case is not None
    assert case.deferred_texts == 0


async def test_a_cool_down_in_progress_across_the_rename_keeps_what_it_deferred(router: Router) -> None:
    """Deferred messages stored under the names before the rename ("held") are read first, and
    the release deletes them too."""
    store = router.store
    await route(router, child_text("はじめ"))
    await apply(router, core.StartFlood(CaseNumber(1), 500.0), cases=(1,))
    await store.redis.rpush(store.keys.deferred_before_rename(1), "まえの")
    await store.redis.hset(store.keys.case(1), "held_stickers", "2")
    for text in ("あのね", None):
        await apply(router, core.DeferMessage(CaseNumber(1), text), cases=(1,))
    assert await store.deferred_of(CaseNumber(1)) == Deferred(("まえの", "あのね"), 3)
    await apply(router, core.ReleaseFlood(CaseNumber(1)), cases=(1,))
    assert await store.deferred_of(CaseNumber(1)) == Deferred()
    assert not await store.redis.exists(store.keys.deferred_before_rename(1), store.keys.deferred(1))
    assert not await store.redis.hexists(store.keys.case(1), "held_stickers")


async def test_audit_records_are_kept_and_dropped_after_retention(router: Router) -> None:
    store = router.store
    now = time.time()
    # Entries get their ids from the server clock: pretend one was written 40 days ago.
    await store.redis.xadd(store.keys.audit, {"case": "1", "action": "old"}, id=f"{int((now - 40 * 86400) * 1000)}-0")
    router.policy = dataclasses.replace(router.policy, audit_retention_days=30)
    await router.standing_pass(now)
    assert await store.audit_records() == []
    await apply(router, core.Audit(CaseNumber(3), "UC", "close", "memo", ControlVia.COMMAND), now=now)
    await apply(router, core.Audit(CaseNumber(4), "UC", "close", "memo", ControlVia.COMMAND), now=now)
    assert [r["case"] for r in await store.audit_records()] == ["3", "4"]
    assert [r["action"] for r in await store.audit_records(case=CaseNumber(4))] == ["close"]
    assert await store.audit_records(since=now + 60) == []
    await router.standing_pass(now)
    assert len(await store.audit_records()) == 2  # nothing within retention is dropped


async def test_roster_changes_between_full_reads(router: Router) -> None:
    store = router.store
    assert await store.roster() is None  # never read: controls are refused, not guessed
    await store.save_roster(["U1", "U2"], ["U2"], at=1.0)
    roster = await store.roster()
    assert roster is not None and roster.members == {"U1", "U2"} and roster.group_supervisors == {"U2"}
    await store.save_roster(["U1"], None, at=2.0)
    roster = await store.roster()
    assert roster is not None and roster.members == {"U1"} and roster.group_supervisors == {"U2"}
    await apply(
        router, core.ChangeMember(SlackUserId("U3"), joined=True), core.ChangeMember(SlackUserId("U1"), joined=False)
    )
    roster = await store.roster()
    assert roster is not None and roster.members == {"U3"}


async def test_a_closed_case_forgets_the_line_user_id_but_keeps_history_and_blocks(router: Router) -> None:
    store = router.store
    await route(router, child_text("いち", child=ONE))
    await route(router, child_text("に", child=TWO))
    closed_at = time.time() - 40 * 86400
    await apply(router, core.CloseCase(CaseNumber(1), core.CloseReason.IDLE), cases=(1,), now=closed_at)
    router.policy = dataclasses.replace(router.policy, closed_case_days=30)
    await router.standing_pass(closed_at + 29 * 86400)  # not yet due
    assert (await store.get_case(CaseNumber(1))).child_id == ONE  # type: ignore[union-attr]
    await router.standing_pass(time.time())
    case = await store.get_case(CaseNumber(1))
    assert case is not None and case.child_id == "" and ONE not in str(await store.redis.hgetall(store.keys.case(1)))
    assert await store.closed_before(time.time()) == []  # once
    still_open = await store.get_case(CaseNumber(2))
    assert still_open is not None and still_open.child_id == TWO  # open cases are never touched
    # The pseudonym remains: the child's next case lists the earlier one, and a block still works.
    await route(router, child_text("さん", child=ONE))
    later = await store.get_case(CaseNumber(3))
    assert later is not None and later.earlier == (1,)
    assert await store.open_case_of(LineUserId(ONE)) == 3
    await apply(router, core.BlockChild(CaseNumber(1), SlackUserId("US"), "迷惑", 5.0), cases=(1,))
    assert await store.block_of(LineUserId(ONE)) is not None and await store.block_of_case(CaseNumber(3)) is not None


async def test_a_bad_operation_writes_nothing(router: Router) -> None:
    ops = Ops()
    ops.hset("br:{cases}:probe", {"a": "1"})
    ops.args += ["nonsense", "1", "1"]
    with pytest.raises(Exception, match="unknown operation"):
        await router.store.commit(ops)
    assert await router.redis.exists("br:{cases}:probe") == 0


async def test_any_text_survives_a_commit(router: Router) -> None:
    """A child's words deferred during a flood come back exactly, even a lone surrogate (which is
    no valid UTF-8); other text with one is kept with U+FFFD in its place, never refused."""
    await route(router, child_text("はじめ"))
    for text in ("half \ud83d emoji", '"quoted"', "改行\nあり", "😀"):
        assert await apply(router, core.DeferMessage(CaseNumber(1), text), cases=(1,)) is Committed.DONE
    assert await router.store.deferred_of(CaseNumber(1)) == Deferred(
        ("half \ud83d emoji", '"quoted"', "改行\nあり", "😀"), 0
    )
    audit = core.Audit(CaseNumber(1), "UC", "close", "bad \udc00 reason", ControlVia.COMMAND)
    assert await apply(router, audit) is Committed.DONE
    assert [r["reason"] for r in await router.store.audit_records(case=CaseNumber(1))] == ["bad \ufffd reason"]
