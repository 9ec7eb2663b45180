"""Cases spread over a pool of case channels, in Redis (fakeredis with Lua): the channel a case
opens in is kept on its record, its thread is found by channel and ts (a ts is unique only within
a channel), its lane knows the channel, and its posts wait for that channel's bucket. Without a
pool everything is written as it always was."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakeredis import aioredis

from bridge import core
from bridge.adapters.redis.keys import thread_field, thread_fields, thread_of_field
from bridge.adapters.slack.names import CONTROL_EVENT
from bridge.core.events import ThreadMessage
from bridge.core.ids import CaseNumber, LineUserId, MessageTs, SlackUserId, ThreadTs
from bridge.engine.commit import Loaded
from bridge.engine.pacing import Pacing
from bridge.engine.router import Router
from tests.conftest import line_user_id
from tests.test_commit import child_text, lane, route, router_on

POOL = ("CCASES", "CPOOL2", "CPOOL3")
TS = "1800000000.000100"


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    """A router whose policy spreads cases over POOL (SLACK_CHANNEL_ID, CCASES, first)."""
    redis = aioredis.FakeRedis()
    made = await router_on(redis)
    made.policy = dataclasses.replace(made.policy, case_channels=POOL)
    yield made
    await redis.aclose()


def reply_in(channel: str, thread_ts: str, text: str = "返信") -> str:
    return json.dumps(
        {
            "type": "message",
            "channel": channel,
            "user": "UCOUNSEL1",
            "text": text,
            "ts": f"{time.time():.6f}",
            "thread_ts": thread_ts,
        }
    )


async def open_cases(router: Router, count: int) -> None:
    for n in range(1, count + 1):
        await route(router, child_text(f"こんにちは {n}", child=line_user_id(n)))


def test_thread_fields_name_the_channel_in_a_pool_only() -> None:
    assert thread_field(TS) == TS and thread_field(TS, "CPOOL2") == f"CPOOL2:{TS}"
    assert thread_of_field(f"CPOOL2:{TS}") == ("CPOOL2", TS) and thread_of_field(TS) == (None, TS)
    assert thread_fields(TS, "CCASES", ()) == (TS,)  # no pool: by ts, as always
    assert thread_fields(TS, "CCASES", ("CCASES",)) == (TS,)  # a pool of one is no pool
    assert thread_fields(TS, "CCASES", POOL) == (f"CCASES:{TS}", TS)  # and a case from before the pool
    assert thread_fields(TS, "CPOOL2", POOL) == (f"CPOOL2:{TS}",)
    assert thread_fields(TS, "COTHER", POOL) == ()  # outside the pool: no case
    assert thread_fields(TS, None, POOL) == (TS,)  # an event recorded before events named theirs


async def test_cases_open_in_the_pools_channels_in_turn_and_keep_it(router: Router) -> None:
    await open_cases(router, 4)
    cases = [await router.store.get_case(CaseNumber(n)) for n in range(1, 5)]
    assert [c.channel for c in cases if c is not None] == ["CCASES", "CPOOL2", "CPOOL3", "CCASES"]
    assert await router.store.case_channel(CaseNumber(2)) == "CPOOL2"
    # Each root names the channel its case opened in: the deliverer posts it there without asking Redis.
    for n, channel in enumerate(["CCASES", "CPOOL2", "CPOOL3", "CCASES"], start=1):
        head: Any = (await router.redis.lrange(router.store.keys.lane(f"slack:{n}"), 0, 0))[0]
        root = json.loads(head.decode().partition("|")[2])["delivery"]
        assert (root["kind"], root["channel"]) == ("root_post", channel)


async def test_without_a_pool_a_case_record_is_as_it_always_was(router: Router) -> None:
    router.policy = dataclasses.replace(router.policy, case_channels=())
    await open_cases(router, 2)
    for n in (1, 2):
        assert b"channel" not in await router.redis.hgetall(router.store.keys.case(n))
        head: Any = (await router.redis.lrange(router.store.keys.lane(f"slack:{n}"), 0, 0))[0]
        assert "channel" not in json.loads(head.decode().partition("|")[2])["delivery"]  # as an older release wrote it
    await router.store.record_thread(1, "slack:1", TS)
    assert await router.redis.hgetall(router.store.keys.by_thread) == {TS.encode(): b"1"}
    assert await router.redis.hget(router.store.keys.lane_threads, "slack:1") == TS.encode()
    # The one-channel pool is no pool either.
    router.policy = dataclasses.replace(router.policy, case_channels=("CCASES",))
    await route(router, child_text("3", child=line_user_id(3)))
    assert b"channel" not in await router.redis.hgetall(router.store.keys.case(3))


async def test_the_same_ts_in_two_channels_is_two_threads(router: Router) -> None:
    """Slack may give the roots in two channels the same ts: each thread finds its own case, a
    reply goes to its own case's child, and a channel outside the pool finds none."""
    await open_cases(router, 2)
    await router.store.record_thread(1, "slack:1", TS, "CCASES")
    await router.store.record_thread(2, "slack:2", TS, "CPOOL2")
    store = router.store
    assert await store.redis.hgetall(store.keys.by_thread) == {
        f"CCASES:{TS}".encode(): b"1",
        f"CPOOL2:{TS}".encode(): b"2",
    }
    for channel, number in (("CCASES", 1), ("CPOOL2", 2)):
        record = await store.case_record_of_thread(ThreadTs(TS), channel, POOL)
        assert record is not None and record.case.number == number
        assert await store.case_by_thread(ThreadTs(TS), channel, POOL) == number
    assert await store.case_record_of_thread(ThreadTs(TS), "CPOOL3", POOL) is None
    assert await store.case_record_of_thread(ThreadTs(TS), "COTHER", POOL) is None
    # The reply in the second channel reaches the second child, and only them.
    await route(router, reply_in("CPOOL2", TS, "二番目のかたへ"), source="slack")
    pushes = await lane(router, "line:" + store.child_key(LineUserId(line_user_id(2))))
    assert [p["texts"] for p in pushes if p["kind"] == "line_push"] == [["二番目のかたへ"]]
    assert await lane(router, "line:" + store.child_key(LineUserId(line_user_id(1)))) == []


async def test_a_case_from_before_the_pool_is_still_found_in_slack_channel_id(router: Router) -> None:
    """Its thread is kept under the bare ts: the first channel of the pool looks there too, the
    others do not."""
    await open_cases(router, 1)
    await router.redis.hdel(router.store.keys.case(1), "channel")  # as written before pools
    await router.store.record_thread(1, "slack:1", TS)
    record = await router.store.case_record_of_thread(ThreadTs(TS), "CCASES", POOL)
    assert record is not None and record.case.number == 1 and record.case.channel is None
    assert await router.store.case_record_of_thread(ThreadTs(TS), "CPOOL2", POOL) is None


async def test_a_reply_in_a_pool_channel_counts_only_in_its_cases_channel(router: Router) -> None:
    """The core's check: a case in CPOOL2 takes replies in CPOOL2, not in SLACK_CHANNEL_ID."""
    await open_cases(router, 2)
    case = await router.store.get_case(CaseNumber(2))
    assert case is not None and case.channel == "CPOOL2"

    def reply(channel: str) -> ThreadMessage:
        ts = MessageTs("1800000001.000100")
        return ThreadMessage(channel, ts, ThreadTs(TS), SlackUserId("UCOUNSEL1"), "はい")

    relayed = core.on_counsellor_message(
        reply("CPOOL2"), case, router.policy, channel="CCASES", delivery_id="1-0", now=1
    )
    assert relayed.deliveries
    assert (
        core.on_counsellor_message(reply("CCASES"), case, router.policy, channel="CCASES", delivery_id="1-0", now=1)
        == core.NOTHING
    )


async def test_the_lane_knows_its_cases_channel_and_its_posts_wait_for_that_channels_bucket(router: Router) -> None:
    router.pacing = Pacing(per_second=1, burst=2, case_channel="CCASES", supervisor_channel="CSUP")
    await open_cases(router, 2)
    items: Any = await router.redis.lrange(router.store.keys.lane("slack:2"), 0, -1)
    paces = [json.loads(item.decode().partition("|")[2]).get("pace") for item in items]
    assert paces == ["1000:1000:CPOOL2", "1000:1000:CPOOL2"]  # the root and the child's words
    await router.store.record_thread(2, "slack:2", TS, "CPOOL2")
    assert await router.redis.hget(router.store.keys.lane_threads, "slack:2") == f"CPOOL2:{TS}".encode()
    claims = await router.store.claim(token="w", lease_ms=5000, max_lanes=5)
    (claim,) = [c for c in claims if c.lane == "slack:2"]
    assert (claim.channel, claim.thread_ts) == ("CPOOL2", TS)
    # A later decision's post into the case's thread, made from the loaded case, is paced the same.
    await route(router, child_text("また", child=line_user_id(2)))
    items = await router.redis.lrange(router.store.keys.lane("slack:2"), 0, -1)
    assert json.loads(items[-1].decode().partition("|")[2])["pace"] == "1000:1000:CPOOL2"


async def test_a_deleted_record_takes_its_channels_thread_lookup_with_it(router: Router) -> None:
    await open_cases(router, 2)
    await router.store.record_thread(2, "slack:2", TS, "CPOOL2")
    loaded = Loaded()
    loaded.case(await router.store.case_record(CaseNumber(2)))
    decision = core.Decision(effects=(core.DeleteCaseRecords((CaseNumber(2),)),))
    await router.commit(decision, loaded, now=time.time(), entry_id=None)
    assert await router.redis.hget(router.store.keys.by_thread, f"CPOOL2:{TS}") is None
    assert await router.redis.hget(router.store.keys.lane_threads, "slack:2") is None


def test_a_link_to_a_pool_channels_thread_names_that_channel() -> None:
    from bridge.adapters.slack.render import render
    from bridge.core.parts import ThreadLink, text_from_payload, text_to_payload

    case = core.Case(CaseNumber(2), core.CaseStatus.OPEN, LineUserId(""), 1.0, ThreadTs(TS), channel="CPOOL2")
    link = core.thread_link(case)
    assert render(("見る: ", link), channel="CCASES") == "見る: https://slack.com/archives/CPOOL2/p1800000000000100"
    assert text_from_payload(json.loads(json.dumps(text_to_payload((link,))))) == (link,)
    # Without a channel the link is kept as it was before pools (a worker of that release reads it).
    assert text_to_payload((ThreadLink(CaseNumber(1), ThreadTs(TS)),)) == [
        {"part": "thread_link", "case": 1, "thread_ts": TS}
    ]


def control(action: str, *, via: str, channel: str, thread_ts: str | None = None, text: str = "") -> str:
    """A control request as the web process records it."""
    request = {"type": CONTROL_EVENT, "action": action, "text": text, "reason": "", "user": "UCOUNSEL1"}
    return json.dumps({**request, "via": via, "thread_ts": thread_ts, "channel": channel})


async def test_the_shortcut_acts_on_the_thread_in_its_own_channel(router: Router) -> None:
    """Two threads with the same ts in two channels: the shortcut in the second closes the second."""
    await open_cases(router, 2)
    await router.store.record_thread(1, "slack:1", TS, "CCASES")
    await router.store.record_thread(2, "slack:2", TS, "CPOOL2")
    # The counsellor is in the second channel only: a member of the pool all the same.
    await router.store.save_roster(["UOTHER"], [], at=1.0, others={"CPOOL2": ["UCOUNSEL1"]})
    await route(router, control("close", via="shortcut", channel="CPOOL2", thread_ts=TS), source="slack")
    first, second = [await router.store.get_case(CaseNumber(n)) for n in (1, 2)]
    assert first is not None and first.is_open
    assert second is not None and not second.is_open and second.closed_by == "UCOUNSEL1"


async def test_an_answer_about_no_case_is_shown_in_the_channel_asked_in(router: Router) -> None:
    await open_cases(router, 1)
    await router.store.save_roster(["UCOUNSEL1"], [], at=1.0)
    await route(router, control("cases", via="command", channel="CPOOL2"), source="slack")
    await route(router, control("close", via="command", channel="CPOOL3", text="99"), source="slack")
    await route(router, control("hold", via="command", channel="CPOOL3", text="1"), source="slack")
    answers = await lane(router, "slack:commands")
    assert [(a["kind"], a.get("case"), a.get("channel")) for a in answers] == [
        ("ephemeral", None, "CPOOL2"),  # the open cases
        ("ephemeral", None, "CPOOL3"),  # no case 99
        ("ephemeral", None, "CPOOL3"),  # the hold's confirmation
    ]


def member(channel: str, user: str, *, joined: bool) -> str:
    return json.dumps(
        {"type": "member_joined_channel" if joined else "member_left_channel", "channel": channel, "user": user}
    )


async def test_the_roster_is_everyone_in_any_channel_of_the_pool(router: Router) -> None:
    store = router.store
    await store.save_roster(["UONE"], [], at=1.0, others={"CPOOL2": ["UTWO", "UBOTH"], "CPOOL3": []})
    roster = await store.roster(others=("CPOOL2", "CPOOL3"))
    assert roster is not None and roster.members == {"UONE", "UTWO", "UBOTH"}
    # Joins and leaves of each channel change that channel's members; one who leaves one channel
    # and is in another may still use the controls; a channel outside the pool changes nothing.
    await route(router, member("CCASES", "UBOTH", joined=True), source="slack")
    await route(router, member("CPOOL2", "UBOTH", joined=False), source="slack")
    await route(router, member("CPOOL2", "UTWO", joined=False), source="slack")
    await route(router, member("CPOOL3", "UTHREE", joined=True), source="slack")
    await route(router, member("COTHER", "USTRANGER", joined=True), source="slack")
    roster = await store.roster(others=("CPOOL2", "CPOOL3"))
    assert roster is not None and roster.members == {"UONE", "UBOTH", "UTHREE"}


async def test_the_worker_reads_and_checks_every_channel_of_the_pool() -> None:
    from bridge.fakes.line import FakeLine
    from bridge.fakes.slack import FakeSlack
    from tests.in_process import in_process_worker

    with FakeLine(access_token="line-token") as line, FakeSlack(bot_token="xoxb-1") as slack:
        slack.set_members("CCASES", ["UONE"])
        slack.set_members("CPOOL2", ["UTWO"])
        worker = await in_process_worker(line, slack)
        try:
            worker.policy = dataclasses.replace(worker.policy, case_channels=("CCASES", "CPOOL2"))
            assert await worker.refresh_roster()
            roster = await worker.store.roster(others=("CPOOL2",))
            assert roster is not None and roster.members == {"UONE", "UTWO"}
            await worker.check_case_channel()  # both private and unshared
            asked = [
                {**r.query, **(r.json if isinstance(r.json, dict) else {})}
                for r in slack.requests_to("/api/conversations.info")
            ]
            assert [a.get("channel") for a in asked] == ["CCASES", "CPOOL2"]
            slack.set_channel_info("CPOOL2", is_ext_shared=True)
            with pytest.raises(SystemExit, match=r"the case channel CPOOL2 must be a private channel.*is_ext_shared"):
                await worker.check_case_channel()
        finally:
            await worker.close()
            await worker.redis.aclose()
