"""The router's handling of recorded events, on fakeredis: replays, poison events, lost Redis."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakeredis import aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bridge.adapters.redis.store import Store
from bridge.config.policy_file import load_policy
from bridge.config.settings import load_settings
from bridge.engine.worker import Worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    redis = aioredis.FakeRedis()
    settings = load_settings(
        LINE_CHANNEL_SECRET="s3cret-line",
        LINE_CHANNEL_ACCESS_TOKEN="line-token",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_SIGNING_SECRET="s3cret-slack",
        SLACK_CHANNEL_ID="CCASES",
        SLACK_SUPERVISOR_CHANNEL_ID="CSUP",
    )
    store = Store(redis, child_key_secret=b"k")
    # The router never calls the platforms; only deliverers do.
    made = Worker(
        settings=settings,
        policy=load_policy(ROOT / "config" / "bridge.toml"),
        redis=redis,
        store=store,
        line=None,  # type: ignore[arg-type]
        slack=None,  # type: ignore[arg-type]
    )
    await store.ensure_router_group()
    yield made
    await redis.aclose()


async def record_and_read(worker: Worker, body: str) -> tuple[str, dict[Any, Any]]:
    await worker.store.record_events("line", [("ev-" + str(hash(body)), body)])
    response: Any = await worker.redis.xreadgroup("router", "me", {worker.store.keys.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    return entry_id.decode(), fields


def child_text(text: str) -> str:
    return json.dumps(
        {
            "type": "message",
            "webhookEventId": "E1",
            "timestamp": 1,
            "source": {"type": "user", "userId": "Uchild"},
            "message": {"type": "text", "id": "1", "text": text},
        }
    )


async def test_a_replayed_entry_is_applied_once(worker: Worker) -> None:
    entry_id, fields = await record_and_read(worker, child_text("一回"))
    await worker.route_entry(entry_id, fields)
    await worker.route_entry(entry_id, fields)  # as after a crash before the acknowledgement
    assert await worker.store.lane_length("slack:1") == 1
    assert await worker.redis.xlen(worker.store.keys.inbound) == 0  # the words left the stream


async def test_a_poison_entry_is_set_aside_not_lost(worker: Worker, caplog: pytest.LogCaptureFixture) -> None:
    entry_id, fields = await record_and_read(worker, "{not json 秘密")
    await worker.route_entry(entry_id, fields)
    assert await worker.redis.xlen(worker.store.keys.inbound) == 0
    aside: Any = await worker.redis.xrange(worker.store.keys.set_aside)
    assert len(aside) == 1 and aside[0][1][b"entry"] == entry_id.encode()
    assert "秘密" not in caplog.text and "set aside" in caplog.text


async def test_when_redis_fails_the_entry_stays_pending(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    entry_id, fields = await record_and_read(worker, child_text("待って"))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("gone")

    monkeypatch.setattr(worker.store, "open_case_unless_blocked", broken)
    with pytest.raises(RedisConnectionError):
        await worker.route_entry(entry_id, fields)
    pending: Any = await worker.redis.xpending(worker.store.keys.inbound, "router")
    assert pending["pending"] == 1
    monkeypatch.undo()
    await worker.route_entry(entry_id, fields)
    assert await worker.store.lane_length("slack:1") == 1


async def test_a_batch_cut_short_for_lease_renewal_resumes_in_order(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import bridge.engine.worker as worker_module

    monkeypatch.setattr(worker_module, "ROUTER_LEASE_MS", 1500)  # the batch outlasts the lease margin
    routed: list[str] = []

    async def slow_apply(entry_id: str, event: object) -> None:
        await asyncio.sleep(0.15)
        routed.append(entry_id)

    monkeypatch.setattr(worker, "_apply", slow_apply)
    for i in range(12):
        await worker.store.record_events("line", [(f"e{i}", child_text(str(i)))])
    stream: Any = await worker.redis.xrange(worker.store.keys.inbound)
    recorded = [entry_id.decode() for entry_id, _ in stream]
    assert await worker.store.acquire_router_lease(worker.name, 1500)
    leading = asyncio.create_task(worker._lead())
    for _ in range(100):
        if len(routed) >= 12:
            break
        await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(leading, 5)
    assert routed == recorded


async def test_a_replayed_first_message_still_decides_as_the_opener(worker: Worker) -> None:
    """A crash after the case opened but before its deliveries: the replay must not lose them."""
    import dataclasses

    from bridge.core.schedule.model import Schedule

    always = {
        day: ["00:00-24:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    }
    worker.policy = dataclasses.replace(worker.policy, schedule=Schedule.from_config(always, worker.policy.timezone))
    entry_id, fields = await record_and_read(worker, child_text("聞いて"))
    # The case opens (as if the router died right after that step) ...
    await worker.store.open_or_get_case("Uchild", 1.0, entry_id=entry_id)
    # ... and the replay of the same entry still decides what a new case gets: its busy timer.
    await worker.route_entry(entry_id, fields)
    assert await worker.store.lane_length("slack:1") == 1
    members: Any = await worker.redis.zrange(worker.store.keys.timers, 0, -1)
    timers = [m.decode() for m in members]
    assert any(t.startswith("busy|1:") for t in timers) and "unanswered|1" in timers


async def test_a_replay_after_a_crash_mid_effects_applies_the_first_decision(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between two effects of a decision: the replay must not decide again against the
    half-changed state (a block already applied would make it answer "already blocked" and
    never close the case)."""
    entry_id, fields = await record_and_read(worker, child_text("あそぼ"))
    await worker.route_entry(entry_id, fields)
    await worker.store.save_roster(["US"], [], at=0.0)
    worker.policy = dataclasses.replace(worker.policy, supervisors=frozenset({"US"}))
    block = {"type": "bridge_control", "action": "block", "text": "1 迷惑", "user": "US", "via": "command"}
    await worker.store.record_events("slack", [("control:t1", json.dumps(block))])
    response: Any = await worker.redis.xreadgroup("router", "t", {worker.store.keys.inbound: ">"}, count=10)
    entry_id, fields = response[0][1][0]
    entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    applied: list[str] = []
    original = worker._apply_effect

    async def crash_after_first(effect: Any, now: float, *, record_id: str = "") -> None:
        if applied:
            raise RedisConnectionError("gone")  # the worker dies after the first effect
        applied.append(type(effect).__name__)
        await original(effect, now, record_id=record_id)

    monkeypatch.setattr(worker, "_apply_effect", crash_after_first)
    with pytest.raises(RedisConnectionError):
        await worker.route_entry(entry_id, fields)
    assert applied == ["BlockChild"]
    monkeypatch.undo()
    await worker.route_entry(entry_id, fields)  # the replay
    case = await worker.store.get_case(1)
    assert case is not None and not case.is_open and case.blocked  # closed as well, not "already blocked"
    records = await worker.store.audit_records(case=1)
    assert [r["action"] for r in records] == ["block"]  # recorded once
