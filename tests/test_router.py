"""The router's passes over recorded events, on fakeredis: replays, crashes, poison events, lost Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fakeredis import aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

import bridge.engine.router as router_module
from bridge import core
from bridge.adapters.redis.store import Store
from bridge.config.policy_file import load_policy
from bridge.config.settings import load_settings
from bridge.core.ids import CaseNumber, LineUserId, SlackUserId
from bridge.core.schedule.model import Schedule
from bridge.engine.commit import Loaded
from bridge.engine.worker import Worker
from tests.conftest import line_user_id

ROOT = Path(__file__).resolve().parent.parent
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Children, by LINE user IDs of LINE's form (the parser ignores any other).
CHILD = line_user_id(1)
A, B, C = line_user_id(0xA), line_user_id(0xB), line_user_id(0xC)


def make_worker(redis: aioredis.FakeRedis) -> Worker:
    settings = load_settings(
        LINE_CHANNEL_SECRET="s3cret-line",
        LINE_CHANNEL_ACCESS_TOKEN="line-token",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s3cret-slack",
        BRIDGE_PSEUDONYM_KEY="ab" * 32,
        SLACK_CHANNEL_ID="CCASES",
        SLACK_SUPERVISOR_CHANNEL_ID="CSUP",
    )
    policy = load_policy(ROOT / "config" / "bridge.toml")
    always = {day: ["00:00-24:00"] for day in DAYS}
    policy = dataclasses.replace(
        policy, schedule=Schedule.from_config(always, policy.timezone), supervisors=frozenset({SlackUserId("US")})
    )
    # The router never calls the platforms; only deliverers do.
    return Worker(
        settings=settings,
        policy=policy,
        redis=redis,
        store=Store(redis, child_key_secret=b"k"),
        line=None,  # type: ignore[arg-type]
        slack=None,  # type: ignore[arg-type]
    )


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    redis = aioredis.FakeRedis()
    made = make_worker(redis)
    await made.store.ensure_router_group()
    yield made
    await redis.aclose()


async def record_and_read(worker: Worker, body: str, source: str = "line") -> tuple[str, dict[Any, Any]]:
    await worker.store.record_events(source, [("ev-" + str(hash(body)), body)])
    response: Any = await worker.redis.xreadgroup("router", "me", {worker.store.keys.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    return entry_id.decode(), fields


def child_text(text: str, event_id: str = "E1") -> str:
    return json.dumps(
        {
            "type": "message",
            "webhookEventId": event_id,
            "timestamp": 1,
            "source": {"type": "user", "userId": CHILD},
            "message": {"type": "text", "id": "1", "text": text},
        }
    )


def counsellor_reply(text: str, ts: str) -> str:
    event = {"type": "message", "channel": "CCASES", "user": "UC", "text": text, "ts": ts, "thread_ts": "111.1"}
    return json.dumps({"type": "event_callback", "event_id": "Ev" + ts, "event": event})


def block_request(text: str) -> str:
    return json.dumps({"type": "bridge_control", "action": "block", "text": text, "user": "US", "via": "command"})


async def lane_kinds(worker: Worker, lane: str) -> list[str]:
    items: Any = await worker.redis.lrange(worker.store.keys.lane(lane), 0, -1)
    return [json.loads(item.decode().partition("|")[2])["delivery"]["kind"] for item in items]


async def test_a_replayed_entry_is_applied_once(worker: Worker) -> None:
    entry_id, fields = await record_and_read(worker, child_text("一回"))
    await worker.router.route_entry(entry_id, fields)
    await worker.router.route_entry(entry_id, fields)  # as after a crash before the acknowledgement
    assert await lane_kinds(worker, "slack:1") == ["root_post", "thread_post"]
    assert await worker.redis.xlen(worker.store.keys.inbound) == 0  # the words left the stream


async def test_a_poison_entry_is_set_aside_not_lost(worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    entry_id, fields = await record_and_read(worker, "{not json 秘密")
    await worker.router.route_entry(entry_id, fields)
    assert await worker.redis.xlen(worker.store.keys.inbound) == 0
    aside: Any = await worker.redis.xrange(worker.store.keys.set_aside)
    assert len(aside) == 1 and aside[0][1][b"entry"] == entry_id.encode()
    assert aside[0][1][b"why"] == b"could not be decided: JSONDecodeError"  # what went wrong, no content
    assert "秘密" not in caplog.text and "set aside" in caplog.text


async def test_when_redis_fails_the_entry_stays_pending(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    entry_id, fields = await record_and_read(worker, child_text("待って"))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("gone")

    monkeypatch.setattr(worker.store, "load_child", broken)
    with pytest.raises(RedisConnectionError):
        await worker.router.route_entry(entry_id, fields)
    pending: Any = await worker.redis.xpending(worker.store.keys.inbound, "router")
    assert pending["pending"] == 1
    monkeypatch.undo()
    await worker.router.route_entry(entry_id, fields)
    assert await lane_kinds(worker, "slack:1") == ["root_post", "thread_post"]


async def test_a_batch_cut_short_for_lease_renewal_resumes_in_order(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_module, "ROUTER_LEASE_MS", 1500)  # the batch outlasts the lease margin
    routed: list[str] = []
    original = worker.router.pass_once

    async def slow_pass(entry_id: str, event: Any, **where: Any) -> Any:
        await asyncio.sleep(0.15)
        routed.append(entry_id)
        return await original(entry_id, event, **where)

    monkeypatch.setattr(worker.router, "pass_once", slow_pass)
    for i in range(12):
        await worker.store.record_events("line", [(f"e{i}", child_text(str(i)))])
    stream: Any = await worker.redis.xrange(worker.store.keys.inbound)
    recorded = [entry_id.decode() for entry_id, _ in stream]
    assert await worker.store.acquire_router_lease(worker.name, 1500)
    leading = asyncio.create_task(worker.router.lead())
    for _ in range(100):
        if len(routed) >= 12:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(leading, 5)
    assert routed == recorded


async def test_a_first_message_replayed_after_a_crash_before_its_commit_still_opens_the_case(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker dies after deciding, before committing: nothing was written, and the replay
    decides what a new case gets again (its root, the post, its busy and unanswered timers)."""
    entry_id, fields = await record_and_read(worker, child_text("聞いて"))

    async def dies(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("gone")

    monkeypatch.setattr(worker.store, "commit", dies)
    with pytest.raises(RedisConnectionError):
        await worker.router.route_entry(entry_id, fields)
    assert await worker.store.get_case(CaseNumber(1)) is None and await lane_kinds(worker, "slack:1") == []
    monkeypatch.undo()
    await worker.router.route_entry(entry_id, fields)
    assert await lane_kinds(worker, "slack:1") == ["root_post", "thread_post"]
    members: Any = await worker.redis.zrange(worker.store.keys.timers, 0, -1)
    timers = [m.decode() for m in members]
    assert any(t.startswith("busy|1:") for t in timers) and "unanswered|1" in timers


# --- a crash at any step of any pass --------------------------------------------------

SCENARIO: list[tuple[str, str]] = [
    ("line", child_text("はじめまして", "E1")),
    ("slack", counsellor_reply("こんにちは、聞かせてね", "200.1")),
    ("line", child_text("ありがとう", "E2")),
    ("slack", block_request("1 迷惑行為")),
    ("line", child_text("またきたよ", "E3")),
]
STEPS = ("after_load", "after_decide", "before_commit", "after_commit")


async def run_scenario(worker: Worker, crash: Callable[[int], None] | None = None) -> None:
    """Route the scenario; `crash(i)` arms a crash for entry i, which is then replayed."""
    await worker.store.save_roster(["UC", "US"], [], at=0.0)
    for index, (source, body) in enumerate(SCENARIO):
        entry_id, fields = await record_and_read(worker, body, source)
        if crash is not None:
            crash(index)
            with contextlib.suppress(RedisConnectionError):  # the worker died; the next leader reads it again
                await worker.router.route_entry(entry_id, fields)
            disarm()
        await worker.router.route_entry(entry_id, fields)
        if index == 0:  # the root was posted: its thread is known (as the deliverer records it)
            await worker.store.record_thread(1, "slack:1", "111.1")


_disarm: list[Callable[[], None]] = []


def disarm() -> None:
    while _disarm:
        _disarm.pop()()


async def state_of(worker: Worker) -> dict[str, Any]:
    """What the bridge keeps, without instants and entry ids (which differ from run to run)."""
    cases = []
    for case in await worker.store.get_cases([CaseNumber(1), CaseNumber(2), CaseNumber(3)]):
        cases.append((case.number, case.status, case.counsellor, case.blocked, case.blocked_count, case.closed_reason))
    lanes: dict[str, list[Any]] = {}
    async for key in worker.redis.scan_iter(match=worker.store.keys.lane("*")):
        items: Any = await worker.redis.lrange(key, 0, -1)
        deliveries = [json.loads(item.decode().partition("|")[2])["delivery"] for item in items]
        lanes[key.decode().split(":lane:", 1)[1]] = [(d["kind"], d.get("text") or d.get("texts")) for d in deliveries]
    timers: Any = await worker.redis.zrange(worker.store.keys.timers, 0, -1)
    return {
        "cases": cases,
        "lanes": sorted(lanes.items()),
        "audit": [r["action"] for r in await worker.store.audit_records()],
        "block": dataclasses.replace(block, at=0)
        if (block := await worker.store.block_of(LineUserId(CHILD)))
        else None,
        "open": await worker.store.open_case_of(LineUserId(CHILD)),
        "timers": sorted(t.decode().split("|")[0] for t in timers),
        "pending": await worker.redis.xlen(worker.store.keys.inbound),
    }


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("entry", range(len(SCENARIO)), ids=lambda i: f"entry{i}")
async def test_a_crash_at_any_step_of_a_pass_leaves_nothing_half_done(step: str, entry: int) -> None:
    """The worker dies after loading, after deciding, before the commit, or after it (before it
    saw the answer), at each entry of a consultation; the next leader replays the entry. The
    state at the end is the state of a run without a crash: nothing lost, doubled or half done."""
    clean_redis, crashed_redis = aioredis.FakeRedis(), aioredis.FakeRedis()
    clean, crashed = make_worker(clean_redis), make_worker(crashed_redis)
    for made in (clean, crashed):
        await made.store.ensure_router_group()
    await run_scenario(clean)

    def arm(index: int) -> None:
        if index != entry:
            return
        target: Any
        name: str
        if step == "after_load":
            target, name = crashed.store, ("load_child" if SCENARIO[index][0] == "line" else "case_record_of_thread")
            if SCENARIO[index][1] == block_request("1 迷惑行為"):
                name = "case_record"
        elif step == "after_decide":
            target, name = crashed.router, "decide"
        else:
            target, name = crashed.store, "commit"
        original = getattr(target, name)

        async def dies(*args: Any, **kwargs: Any) -> Any:
            if step == "before_commit":
                raise RedisConnectionError("the worker died")
            await original(*args, **kwargs)
            raise RedisConnectionError("the worker died")  # with the result unseen

        setattr(target, name, dies)
        _disarm.append(lambda: setattr(target, name, original))

    await run_scenario(crashed, crash=arm)
    expected, found = await state_of(clean), await state_of(crashed)
    assert found == expected
    assert expected["cases"][0][1] == "closed" and expected["cases"][0][3] and expected["audit"] == ["block"]
    await clean_redis.aclose()
    await crashed_redis.aclose()


def other_child_text(text: str, child: str, event_id: str) -> str:
    return json.dumps(
        {
            "type": "message",
            "webhookEventId": event_id,
            "timestamp": 1,
            "source": {"type": "user", "userId": child},
            "message": {"type": "text", "id": "1", "text": text},
        }
    )


async def test_entries_of_different_children_are_committed_together_and_one_child_waits(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of several children's messages on their open cases: loaded in one round trip
    and committed in one step, stopping before a second message of a child already in the batch
    (it must be decided from what the first one committed). A message that opens a case takes
    the next number, so two of them are never decided together."""
    for i, child in enumerate((A, B, C)):
        entry_id, fields = await record_and_read(worker, other_child_text("はじめ", child, f"E0{i}"))
        await worker.router.route_entry(entry_id, fields)
    bodies = [
        other_child_text("いち", A, "Ea1"),
        other_child_text("に", B, "Eb1"),
        other_child_text("さん", C, "Ec1"),
        other_child_text("よん", A, "Ea2"),
    ]
    for i, body in enumerate(bodies):
        await worker.store.record_events("line", [(f"e{i}", body)])
    response: Any = await worker.redis.xreadgroup("router", "me", {worker.store.keys.inbound: ">"}, count=10)
    batch = [(entry_id.decode(), fields) for entry_id, fields in response[0][1]]
    commits: list[int] = []
    original = worker.store.commit

    async def counted(ops: Any) -> Any:
        commits.append(ops.count)
        return await original(ops)

    monkeypatch.setattr(worker.store, "commit", counted)
    assert await worker.router.route_together(batch) == 3
    assert len(commits) == 1  # three decisions, one atomic step
    assert [c.number for c in await worker.store.open_cases()] == [1, 2, 3]
    assert await worker.redis.xlen(worker.store.keys.inbound) == 1  # the fourth waits
    assert await worker.router.route_together(batch[3:]) == 0  # alone: routed one at a time
    await worker.router.route_entry(*batch[3])
    kinds = await lane_kinds(worker, "slack:1")
    assert kinds == ["root_post", "thread_post", "thread_post", "thread_post"]  # all of A's in case 1


async def test_a_batch_whose_state_changed_is_routed_one_at_a_time(worker: Worker) -> None:
    """If the batch's commit finds what it was decided from changed (here a counsellor holds
    case 1 between the load and the commit), nothing of it is written."""
    for i, child in enumerate((A, B)):
        entry_id, fields = await record_and_read(worker, other_child_text("はじめ", child, f"E0{i}"))
        await worker.router.route_entry(entry_id, fields)
    for i, (text, child) in enumerate((("いち", A), ("に", B))):
        await worker.store.record_events("line", [(f"e{i}", other_child_text(text, child, f"E1{i}"))])
    response: Any = await worker.redis.xreadgroup("router", "me", {worker.store.keys.inbound: ">"}, count=10)
    batch = [(entry_id.decode(), fields) for entry_id, fields in response[0][1]]
    original = worker.store.load_many

    async def then_the_case_changes(requests: Any) -> Any:
        loads = await original(requests)
        await worker.router.commit(
            core.Decision(effects=(core.HoldCase(CaseNumber(1)),)), Loaded(), now=1.0, entry_id=None
        )
        return loads

    worker.store.load_many = then_the_case_changes  # type: ignore[method-assign]
    assert await worker.router.route_together(batch) == 0
    assert await worker.redis.xlen(worker.store.keys.inbound) == 2
    assert await lane_kinds(worker, "slack:1") == ["root_post", "thread_post"]  # nothing of the batch
    worker.store.load_many = original  # type: ignore[method-assign]
    assert await worker.router.route_together(batch) == 2  # decided again from fresh reads
    case = await worker.store.get_case(CaseNumber(1))
    assert case is not None and case.hold
