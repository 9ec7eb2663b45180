"""Retention on a real Redis: the records of long-closed cases go with everything that points at
them (the lookup by thread, the lane's thread, the child's history), recent ones stay, the case a
block was made from stays while the block does; and what is gone reads as never known.

The router is driven in this process (its standing pass with a chosen time); the rules are unit
tested in test_retention_rules.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from bridge import core
from bridge.adapters.redis.codec import as_text
from bridge.core.events import ThreadMessage
from bridge.core.ids import CaseNumber, LineUserId, MessageTs, SlackUserId, ThreadTs
from bridge.core.parts import text_from_payload
from bridge.engine.commit import Loaded
from bridge.engine.router import Router
from tests.conftest import RedisServer, line_user_id
from tests.slack_text import slack
from tests.test_commit import apply, child_text, lane, route, router_on

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent
ONE, TWO = line_user_id(0x71), line_user_id(0x72)
DAY = 86400.0


@pytest.fixture
async def router(redis_db: redis_sync.Redis, redis_server: RedisServer) -> AsyncIterator[Router]:
    redis = Redis.from_url(redis_server.url)
    yield await router_on(redis)
    await redis.aclose()


async def closed(router: Router, number: int, *, at: float) -> None:
    """Close a case as a decision made at `at` does."""
    await apply(router, core.CloseCase(CaseNumber(number), core.CloseReason.IDLE), cases=(number,), now=at)


def reply_in(thread_ts: str) -> ThreadMessage:
    return ThreadMessage(
        channel="CCASES",
        ts=MessageTs(f"{time.time():.6f}"),
        thread_ts=ThreadTs(thread_ts),
        user=SlackUserId("UC1"),
        text="げんきにしてる？",
    )


async def test_a_long_closed_case_record_goes_and_a_recent_one_stays(router: Router) -> None:
    store, keys, now = router.store, router.store.keys, time.time()
    await route(router, child_text("いち", child=ONE))  # case 1
    await route(router, child_text("に", child=TWO))  # case 2
    await store.record_thread(1, "slack:1", "111.1")
    await store.record_thread(2, "slack:2", "222.2")
    await closed(router, 1, at=now - 400 * DAY)
    await closed(router, 2, at=now - 10 * DAY)
    await route(router, child_text("さん", child=ONE))  # case 3, naming case 1
    assert (await store.get_case(CaseNumber(3))).earlier == (1,)  # type: ignore[union-attr]

    await router.standing_pass(now - 40 * DAY)  # case 1 closed 360 days before: not yet due
    assert await store.get_case(CaseNumber(1)) is not None
    await router.standing_pass(now)

    assert not await store.redis.exists(keys.case(1))
    assert await store.case_by_thread(ThreadTs("111.1")) is None
    assert await store.redis.hget(keys.lane_threads, "slack:1") is None
    assert await store.closed_cases_before(now, limit=10) == [2]
    assert await store.redis.zscore(keys.closed_index, "1") is None
    child_key = store.child_key(LineUserId(ONE))
    assert await store.redis.lrange(keys.history(child_key), 0, -1) == [b"3"]
    # Case 2 closed ten days ago keeps everything; so does the open case 3.
    kept = await store.get_case(CaseNumber(2))
    assert kept is not None and kept.thread_ts == "222.2" and await store.case_by_thread(ThreadTs("222.2")) == 2
    assert (await store.get_case(CaseNumber(3))) is not None
    # Nothing in Redis still names case 1 (the case sequence counts on; numbers are not reused).
    assert await store.redis.get(keys.case_seq) == b"3"
    for key in [k async for k in store.redis.scan_iter(match="br:*")]:
        kind = as_text(await store.redis.type(key))
        if kind == "zset":
            assert await store.redis.zscore(key, "1") is None, key
        elif kind == "hash" and key.decode() in (keys.by_thread, keys.lane_threads):
            assert b"1" not in await store.redis.hvals(key) and b"slack:1" not in await store.redis.hkeys(key)


async def test_a_reply_in_the_thread_of_a_deleted_case_is_as_in_a_thread_that_is_no_case(router: Router) -> None:
    store, now = router.store, time.time()
    await route(router, child_text("いち", child=ONE))
    await store.record_thread(1, "slack:1", "111.1")
    await closed(router, 1, at=now - 400 * DAY)
    before = await router.decide("1-0", reply_in("111.1"), now, Loaded())
    assert before.deliveries  # while the record is kept, the counsellor is told the case is closed
    await router.standing_pass(now)
    gone = await router.decide("1-0", reply_in("111.1"), now, Loaded())
    never = await router.decide("1-0", reply_in("999.9"), now, Loaded())
    assert gone == never == core.NOTHING


async def test_the_childs_next_case_names_only_earlier_cases_that_still_exist(router: Router) -> None:
    store, now = router.store, time.time()
    await route(router, child_text("いち", child=ONE))  # case 1
    await closed(router, 1, at=now - 400 * DAY)
    await route(router, child_text("に", child=ONE))  # case 2
    await closed(router, 2, at=now - 20 * DAY)
    await router.standing_pass(now)
    await route(router, child_text("さん", child=ONE))  # case 3
    later = await store.get_case(CaseNumber(3))
    assert later is not None and later.earlier == (2,)
    (root,) = [d for d in await lane(router, "slack:3") if d["kind"] == "root_post"]
    text = slack(text_from_payload(root["text"]))
    assert "#2" in text and "#1" not in text


async def test_the_case_a_block_was_made_from_stays_while_the_block_does(router: Router) -> None:
    store, keys, now = router.store, router.store.keys, time.time()
    await route(router, child_text("いち", child=ONE))  # case 1: blocked from
    await apply(router, core.BlockChild(CaseNumber(1), SlackUserId("USUPER1"), "迷惑", now - 500 * DAY), cases=(1,))
    await closed(router, 1, at=now - 500 * DAY)
    await route(router, child_text("に", child=TWO))  # case 2, another child's, as old
    await closed(router, 2, at=now - 500 * DAY)
    await router.standing_pass(now)
    assert await store.get_case(CaseNumber(1)) is not None and await store.get_case(CaseNumber(2)) is None
    assert await store.block_of_case(CaseNumber(1)) is not None  # a supervisor can still /unblock 1
    assert await store.closed_cases_before(now, limit=10) == [1]
    await apply(router, core.UnblockChild(CaseNumber(1)), cases=(1,))
    await router.standing_pass(now)
    assert not await store.redis.exists(keys.case(1))


async def test_closed_cases_from_before_the_index_are_indexed_at_start(router: Router) -> None:
    """An upgrade: records closed by an earlier version were never indexed for deletion."""
    store, keys, now = router.store, router.store.keys, time.time()
    await route(router, child_text("いち", child=ONE))
    await closed(router, 1, at=now - 400 * DAY)
    await route(router, child_text("に", child=TWO))  # open: not indexed
    await store.redis.delete(keys.closed_cases)
    await store.prepare()
    assert await store.closed_cases_before(now, limit=10) == [1]
    assert await store.redis.zscore(keys.closed_cases, "1") == pytest.approx(now - 400 * DAY, abs=0.01)
    await router.standing_pass(now)
    assert await store.get_case(CaseNumber(1)) is None and await store.get_case(CaseNumber(2)) is not None


async def test_a_record_changed_while_the_pass_decided_is_left_for_the_next_pass(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliverer records the old case's thread meanwhile (as a root posted late): the commit
    finds the version changed and deletes nothing; the next pass does."""
    store, now = router.store, time.time()
    await route(router, child_text("いち", child=ONE))
    await closed(router, 1, at=now - 400 * DAY)
    real_commit = router.commit

    async def thread_recorded_first(*args: Any, **kwargs: Any) -> Any:
        await store.record_thread(1, "slack:1", "111.1")
        return await real_commit(*args, **kwargs)

    monkeypatch.setattr(router, "commit", thread_recorded_first)
    await router.standing_pass(now)
    assert (await store.get_case(CaseNumber(1))).thread_ts == "111.1"  # type: ignore[union-attr]
    monkeypatch.setattr(router, "commit", real_commit)
    await router.standing_pass(now)
    assert await store.get_case(CaseNumber(1)) is None and await store.case_by_thread(ThreadTs("111.1")) is None
