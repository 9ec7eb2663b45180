"""A worker process's own jobs, on fakeredis with the fake LINE and Slack servers (real HTTP):

- the router's commit leases the lanes it makes due for the worker's idle deliverers, which start
  on them at once, with no claim of their own and no wake-up through Redis;
- at start the worker refuses a case channel that is public or shared with another workspace."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bridge.adapters.redis.codec import encode_item, now_ms
from bridge.adapters.redis.commit import Committed, Ops
from bridge.adapters.redis.store import handed_token
from bridge.config.policy_file import load_policy
from bridge.core.deliveries import Reaction, to_payload
from bridge.core.ids import CaseNumber, MessageTs
from bridge.core.schedule.model import Schedule
from bridge.engine.worker import Worker
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack
from tests.in_process import in_process_worker

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = {
    day: ["00:00-24:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeLine, FakeSlack]]:
    with FakeLine(access_token="line-token") as line, FakeSlack(bot_token="xoxb-1") as slack:
        yield line, slack


@pytest.fixture
async def worker(fakes: tuple[FakeLine, FakeSlack]) -> AsyncIterator[Worker]:
    """A worker whose deliverers run, but with no wake-up subscription: only a hand-off (or
    their ten-second look at the lanes) starts them."""
    policy = load_policy(ROOT / "config" / "bridge.toml")
    always_open = dataclasses.replace(policy, schedule=Schedule.from_config(ALWAYS, policy.timezone))
    made = await in_process_worker(*fakes, policy=always_open, BRIDGE_WORKER_CONCURRENCY=2)
    tasks = [asyncio.create_task(made.deliverers.deliver_forever(i)) for i in range(2)]
    deadline = time.monotonic() + 5
    while made.deliverers.room() < 2:  # both have looked at the (empty) lanes and wait
        assert time.monotonic() < deadline, "the deliverers did not start"
        await asyncio.sleep(0.01)
    yield made
    await stop_in_process(made, tasks)


async def stop_in_process(made: Worker, tasks: list[asyncio.Task[None]]) -> None:
    """Stop an in-process worker's deliverers and close its clients."""
    made.deliverers.stop()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)
    await made.close()
    await made.redis.aclose()


def child_text(text: str) -> str:
    return json.dumps(
        {
            "type": "message",
            "webhookEventId": uuid.uuid4().hex,
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": "U" + "1" * 32},
            "message": {"type": "text", "id": "1", "text": text},
        }
    )


async def test_a_new_case_is_posted_at_once_by_the_deliverers_it_was_handed_to(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack]
) -> None:
    _, slack = fakes
    await worker.store.record_events("line", [(uuid.uuid4().hex, child_text("こんにちは"))])
    response: Any = await worker.redis.xreadgroup("router", "t", {worker.store.keys.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    started = time.monotonic()
    await worker.router.route_entry(entry_id.decode(), fields)
    await slack.wait_for_async(lambda: len(slack.messages("CCASES")) >= 2, timeout=5, message="root and message")
    # Far sooner than the deliverers' own look at the lanes (ten seconds): they were handed the lane.
    assert time.monotonic() - started < 5
    root, child = slack.messages("CCASES")[:2]
    assert child.get("thread_ts") == root["ts"] and "こんにちは" in child["text"]
    keys = worker.store.keys
    deadline = time.monotonic() + 5
    while await worker.redis.zcard(keys.due):  # every lane delivered and settled
        assert time.monotonic() < deadline, "lanes left due"
        await asyncio.sleep(0.01)


async def test_a_handed_lane_whose_lease_lapsed_while_it_waited_is_left_to_its_new_holder(worker: Worker) -> None:
    store, deliverers = worker.store, worker.deliverers
    ops = Ops()
    ops.enqueue(store.keys.lane("slack:9"), store.keys.due, "slack:9", encode_item("a", {}, now_ms()))
    token, room = deliverers.reserve()
    result, (claim,) = await store.commit_handing_off(ops, token=token, lease_ms=5000, max_lanes=max(1, room))
    assert result is Committed.DONE
    handed = handed_token(token, 0)
    # It waited longer than a third of its lease, and meanwhile another worker took the lane.
    await store.redis.set(store.keys.lanes_prefix + "lease:slack:9", "another", px=5000)
    deliverers._handed.append((claim, handed, time.monotonic() - 60))
    assert await deliverers._next_handed() is None
    assert await store.redis.llen(store.keys.lane("slack:9")) == 1  # not delivered, not dropped
    # Or a later hand-off of this same process took it: its lease token is another one.
    later, _ = deliverers.reserve()
    await store.redis.set(store.keys.lanes_prefix + "lease:slack:9", handed_token(later, 0), px=5000)
    deliverers._handed.append((claim, handed, time.monotonic() - 60))
    assert later != token and await deliverers._next_handed() is None
    # One that waited as long but still holds its lease has it renewed and is delivered.
    await store.redis.set(store.keys.lanes_prefix + "lease:slack:9", handed, px=10)
    deliverers._handed.append((claim, handed, time.monotonic() - 60))
    assert await deliverers._next_handed() == (claim, handed)
    assert await store.redis.pttl(store.keys.lanes_prefix + "lease:slack:9") > 1000


async def test_commits_under_way_at_once_share_the_idle_deliverers_room(worker: Worker) -> None:
    """Several partitions' commits run at once in one worker: each holds the room it was given,
    so together they never hand off more lanes than there are idle deliverers."""
    deliverers = worker.deliverers
    for _ in range(3):
        deliverers._idle.append(asyncio.Event())
    idle = deliverers.room()
    first, room_a = deliverers.reserve()
    second, room_b = deliverers.reserve()
    assert (room_a, room_b) == (idle, 0) and idle >= 3 and first != second
    deliverers.take(first, room_a, [])  # the first commit handed nothing: its room comes back
    assert deliverers.room() == idle


async def test_a_lane_whose_claim_went_unanswered_is_released_by_its_deliverer_at_once(
    fakes: tuple[FakeLine, FakeSlack],
) -> None:
    """Redis leased a lane to a deliverer, but the answer never reached it (Redis went away as it
    answered): the lane is leased by a living worker that does not know it, for a minute here.
    The deliverer's next claim releases it and delivers it in seconds."""
    _, slack = fakes
    made = await in_process_worker(*fakes, BRIDGE_WORKER_CONCURRENCY=2, BRIDGE_LEASE_SECONDS=60)
    claim_with_outlook = made.store.claim_with_outlook
    lost: list[str] = []

    async def answer_lost_once(**kwargs: Any) -> Any:
        claims, outlook = await claim_with_outlook(**kwargs)
        if claims and not lost:
            lost.append(kwargs["token"])
            raise RedisConnectionError("Connection reset by peer")
        return claims, outlook

    made.store.claim_with_outlook = answer_lost_once  # type: ignore[method-assign]
    tasks = [asyncio.create_task(made.deliverers.deliver_forever(i)) for i in range(2)]
    try:
        reaction = Reaction(case=CaseNumber(1), message_ts=MessageTs("1.1"), name="white_check_mark")
        ops = Ops()
        lane = "slack:1"
        item = encode_item("a", to_payload(reaction), now_ms())
        ops.enqueue(made.store.keys.lane(lane), made.store.keys.due, lane, item)
        assert await made.store.commit(ops) is Committed.DONE
        started = time.monotonic()
        made.deliverers.wake_all()
        await slack.wait_for_async(lambda: bool(slack.requests_to("/api/reactions.add")), timeout=10)
        assert lost, "no claim's answer was lost"
        assert time.monotonic() - started < 10  # the lease (a minute) did not run out
        deadline = time.monotonic() + 5
        while await made.redis.llen(made.store.keys.lane(lane)):  # settled
            assert time.monotonic() < deadline, "the lane was not settled"
            await asyncio.sleep(0.01)
    finally:
        await stop_in_process(made, tasks)


@pytest.mark.parametrize(
    ("info", "said"),
    [
        ({"is_private": False}, "not private"),
        ({"is_ext_shared": True}, "is_ext_shared"),
        ({"is_shared": True}, "is_shared"),
    ],
)
async def test_the_worker_refuses_a_case_channel_that_is_public_or_shared(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack], info: dict[str, bool], said: str
) -> None:
    _, slack = fakes
    slack.set_channel_info("CCASES", **info)
    with pytest.raises(SystemExit, match=f"the case channel CCASES must be a private channel.*{said}"):
        await worker.check_case_channel()


async def test_a_private_unshared_case_channel_passes_and_an_unanswered_check_is_asked_again(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack]
) -> None:
    _, slack = fakes
    await worker.check_case_channel()  # private, shared with nobody: returns
    assert [r.path for r in slack.requests_to("/api/conversations.info")] == ["/api/conversations.info"]
    slack.set_channel_info("CCASES", missing=True)  # e.g. the bot not invited yet
    checking = asyncio.create_task(worker.check_case_channel())
    await slack.wait_for_async(lambda: len(slack.requests_to("/api/conversations.info")) == 2, timeout=5)
    assert not checking.done()  # asks again later instead of giving up or running
    worker.stop()
    await asyncio.wait_for(checking, timeout=10)


async def test_a_case_channel_check_slack_failed_is_asked_again_soon_then_less_often(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack]
) -> None:
    """A worker restarted while Slack answered a passing 5xx routes again in about a second (it
    waited 5 s between tries before, and routed nothing meanwhile)."""
    _, slack = fakes
    slack.fail_next("/api/conversations.info", 500, times=3)
    started = time.monotonic()
    await asyncio.wait_for(worker.check_case_channel(), timeout=20)
    took = time.monotonic() - started
    asked = [r.at for r in slack.requests_to("/api/conversations.info")]
    assert len(asked) == 4  # three refused, the fourth answered
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked)]
    assert gaps[0] >= 0.24 and gaps[1] >= 0.49 and gaps[2] >= 0.99, gaps  # 0.25 s, then twice as long each time
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert took < 5, took  # 15 s when every try waited 5 s


async def test_a_case_channel_check_answered_429_waits_its_retry_after(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack]
) -> None:
    _, slack = fakes
    slack.fail_next("/api/conversations.info", 429, headers={"Retry-After": "2"})
    await asyncio.wait_for(worker.check_case_channel(), timeout=20)
    asked = [r.at for r in slack.requests_to("/api/conversations.info")]
    assert len(asked) == 2
    assert asked[1] - asked[0] >= 1.95  # not the 0.25 s of a first try after a 5xx


async def test_a_case_channel_check_waits_a_huge_retry_after_only_up_to_the_cap(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack's bytes decide how long it waits, within RETRY_AFTER_MAX_S (five minutes; made
    half a second here so the test can see it)."""
    _, slack = fakes
    monkeypatch.setattr("bridge.engine.worker.RETRY_AFTER_MAX_S", 0.5)
    slack.fail_next("/api/conversations.info", 429, headers={"Retry-After": "99999999"})
    await asyncio.wait_for(worker.check_case_channel(), timeout=10)
    asked = [r.at for r in slack.requests_to("/api/conversations.info")]
    assert len(asked) == 2
    assert 0.45 <= asked[1] - asked[0] < 5
