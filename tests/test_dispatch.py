"""Every event, effect and delivery type has a handler, and every delivery survives its codec.

The router, the commit and the deliverers dispatch each kind with a `match` ending in
`assert_never`, so mypy fails on a new type without a case; these tests make the same check at
run time, by sending one value of every type through them (on fakeredis, with the fake LINE and
Slack servers).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
import types
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import core
from bridge.adapters.redis.codec import Claim, as_text, now_ms
from bridge.adapters.redis.commit import Committed
from bridge.adapters.redis.set_aside import set_aside_key
from bridge.core import deliveries as core_deliveries
from bridge.core.deliveries import Delivery, RootPost, from_payload, to_payload
from bridge.core.events import Ignored, InboundEvent, TimerFired, TimerKind, timer_fired
from bridge.core.ids import CaseNumber
from bridge.core.parts import Part, Text
from bridge.core.retry import OutcomeStatus
from bridge.engine.commit import Loaded, Plan
from bridge.engine.worker import Worker
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack
from tests.in_process import in_process_worker

ROOT = Path(__file__).resolve().parent.parent


def sample_value(annotation: Any) -> Any:
    """A plain value of the annotated type (the first member of a union or an enum, the plain
    value of an identifier); a Text holds one part of every kind."""
    if annotation == Text:
        return tuple(sample_value(kind) for kind in typing.get_args(Part))
    if isinstance(annotation, typing.NewType):  # an identifier: a value of the type it stands for
        return sample_value(annotation.__supertype__)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(arg for arg in typing.get_args(annotation) if arg is not type(None)))
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample_value(args[0]),)
        return tuple(sample_value(arg) for arg in args)
    if origin in (dict, frozenset, list):
        return origin()
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return sample(annotation)
    samples: dict[Any, Any] = {int: 1, float: 1.0, str: "x", bool: False, bytes: b""}
    if annotation not in samples:
        raise TypeError(f"no sample for {annotation!r}")
    return samples[annotation]


def sample(cls: type[Any]) -> Any:
    """A value of the dataclass, every field a sample of its type (a root's buttons are case
    actions by their type, so they name real ones)."""
    hints = typing.get_type_hints(cls)
    return cls(**{field.name: sample_value(hints[field.name]) for field in dataclasses.fields(cls) if field.init})


def members(union: Any) -> list[type[Any]]:
    return list(typing.get_args(union))


@pytest.fixture
def fakes() -> Iterator[tuple[FakeLine, FakeSlack]]:
    with FakeLine(access_token="line-token") as line, FakeSlack(bot_token="xoxb-1") as slack:
        yield line, slack


@pytest.fixture
async def worker(fakes: tuple[FakeLine, FakeSlack]) -> AsyncIterator[Worker]:
    made = await in_process_worker(*fakes)
    yield made
    await made.close()
    await made.redis.aclose()


@pytest.mark.parametrize("effect_type", members(core.Effect), ids=lambda t: t.__name__)
async def test_every_effect_type_is_committed(worker: Worker, effect_type: type[Any]) -> None:
    effect = sample(effect_type)
    store = worker.store
    loaded = Loaded()
    if isinstance(effect, core.ReplaySetAside | core.DropSetAside):  # they act on an entry that is there
        fields = {"source": "line", "body": "{}"}
        kept: dict[Any, Any] = dict(fields)
        entry_id = as_text(await store.redis.xadd(set_aside_key(store.keys, effect.stream), kept))
        effect = dataclasses.replace(effect, entry_id=entry_id)
        loaded.set_aside[(effect.stream, entry_id)] = fields
    plan = Plan(keys=store.keys, loaded=loaded, child_key=store.child_key, now=1.0, audit_retention_days=1)
    plan.effect(effect, marker="1-0:0")  # assert_never would raise
    assert plan.ops.count > 0  # every effect writes something
    assert await store.commit(plan.ops) is Committed.DONE


# A well-formed timer of each kind, as the core arms them (a case, or a case and an instant, or
# an instant alone), and its name in Redis: the same names as when timer arguments were strings,
# so timers armed before keep working.
CASE = CaseNumber(1)
TIMERS = {
    TimerKind.BUSY: (TimerFired(TimerKind.BUSY, case=CASE, instant=0), "busy|1:0"),
    TimerKind.OPENING: (TimerFired(TimerKind.OPENING, instant=0), "opening|0"),
    TimerKind.CLOSING: (TimerFired(TimerKind.CLOSING, instant=0), "closing|0"),
    TimerKind.UNANSWERED: (TimerFired(TimerKind.UNANSWERED, case=CASE), "unanswered|1"),
    TimerKind.SOFT_WARNING: (TimerFired(TimerKind.SOFT_WARNING, case=CASE), "soft-warning|1"),
    TimerKind.SOFT_LIMIT: (TimerFired(TimerKind.SOFT_LIMIT, case=CASE), "soft-limit|1"),
    TimerKind.OVERTIME: (TimerFired(TimerKind.OVERTIME, case=CASE), "overtime|1"),
    TimerKind.IDLE_WARNING: (TimerFired(TimerKind.IDLE_WARNING, case=CASE, instant=0), "idle-warning|1:0"),
    TimerKind.IDLE_CLOSE: (TimerFired(TimerKind.IDLE_CLOSE, case=CASE, instant=0), "idle-close|1:0"),
    TimerKind.FLOOD_RELEASE: (TimerFired(TimerKind.FLOOD_RELEASE, case=CASE, instant=0), "flood-release|1:0"),
    TimerKind.UNANSWERED_CLOSE: (TimerFired(TimerKind.UNANSWERED_CLOSE, case=CASE), "unanswered-close|1"),
}


@pytest.mark.parametrize("event_type", members(InboundEvent), ids=lambda t: t.__name__)
async def test_every_event_type_is_decided(worker: Worker, event_type: type[Any]) -> None:
    event = sample(event_type)
    if isinstance(event, TimerFired):
        event = TIMERS[event.kind][0]
    decision = await worker.router.decide("1000-0", event, 1.0, Loaded())
    assert isinstance(decision, core.Decision)


@pytest.mark.parametrize("kind", list(TimerKind), ids=str)
async def test_every_timer_kind_is_decided(worker: Worker, kind: TimerKind) -> None:
    decision = await worker.router.decide("1000-0", TIMERS[kind][0], 1.0, Loaded())
    assert isinstance(decision, core.Decision)


@pytest.mark.parametrize("kind", list(TimerKind), ids=str)
def test_every_timer_kind_keeps_its_name_in_redis(kind: TimerKind) -> None:
    fired, member = TIMERS[kind]
    armed = core.ScheduleTimer(kind, 5.0, case=fired.case, instant=fired.instant)
    assert armed.member == member
    assert timer_fired(member) == fired


@pytest.mark.parametrize(
    "member",
    [
        "busy|12:1700000000",
        "busy|12",  # armed before busy timers carried their time
        "opening|1700000000",
        "closing|1700000000",
        "unanswered|12",
        "soft-warning|12",
        "soft-limit|12",
        "overtime|12",
        "idle-warning|12:1700000000123",
        "idle-close|12:1700000000123",
        "flood-release|12:1700000000",
    ],
)
def test_a_timer_read_back_is_named_again_exactly_as_armed(member: str) -> None:
    fired = timer_fired(member)
    assert isinstance(fired, TimerFired)
    assert core.ScheduleTimer(fired.kind, 5.0, case=fired.case, instant=fired.instant).member == member


@pytest.mark.parametrize(
    "member",
    [
        "retired-kind|1",
        "busy|",
        "busy|x:1",
        "busy|1:2:3",
        "opening|",
        "opening|1700000000.5",
        "opening|1:2",
        "unanswered|12:1700000000",
        "unanswered| 12",
        "unanswered|012",
        "idle-close|12",
        "idle-close|12:",
        "flood-release|twelve:1",
        "no separator",
        "",
    ],
)
def test_a_garbled_or_unknown_timer_is_ignored_not_raised(member: str) -> None:
    assert isinstance(timer_fired(member), Ignored)


def test_a_timer_must_be_named_as_its_kind_is() -> None:
    with pytest.raises(ValueError, match="named by case:instant"):
        core.ScheduleTimer(TimerKind.FLOOD_RELEASE, 5.0, case=CASE)
    with pytest.raises(ValueError, match="named by instant"):
        TimerFired(TimerKind.OPENING, case=CASE, instant=0)


async def test_a_timer_of_a_kind_no_longer_known_is_ignored_not_set_aside(worker: Worker) -> None:
    await worker.store.redis.xadd(worker.store.keys.inbound, {"source": "timer", "body": "retired-kind|1"})
    response: Any = await worker.redis.xreadgroup("router", "me", {worker.store.keys.inbound: ">"}, count=1)
    entry_id, fields = response[0][1][0]
    await worker.router.route_entry(entry_id.decode(), fields)
    assert await worker.redis.xlen(worker.store.keys.set_aside) == 0
    assert await worker.redis.xlen(worker.store.keys.inbound) == 0


@pytest.mark.parametrize("delivery_type", members(Delivery), ids=lambda t: t.__name__)
async def test_every_delivery_type_is_attempted(worker: Worker, delivery_type: type[Any]) -> None:
    delivery = sample(delivery_type)
    claim = Claim(lane="slack:1", item_id="1-0.0", payload=to_payload(delivery), attempts=1, enqueued_ms=1000)
    outcome, followups = await worker.deliverers._attempt(delivery, claim)
    assert outcome.status in set(OutcomeStatus)
    assert isinstance(followups, tuple)


@pytest.mark.parametrize("delivery_type", members(Delivery), ids=lambda t: t.__name__)
def test_every_delivery_type_survives_its_payload(delivery_type: type[Any]) -> None:
    delivery = sample(delivery_type)
    assert from_payload(to_payload(delivery)) == delivery
    assert from_payload(json.loads(json.dumps(to_payload(delivery)))) == delivery  # as Redis keeps it


def test_a_payload_queued_before_the_enums_reads_as_them() -> None:
    """Roles, channel targets and a root's buttons are kept by value, as they were while they were
    plain strings."""
    post = from_payload({"kind": "thread_post", "case": 3, "text": ["x"], "role": "child"})
    assert isinstance(post, core_deliveries.ThreadPost) and post.role is core_deliveries.PostRole.CHILD
    channel = from_payload({"kind": "channel_post", "text": ["x"], "target": "supervisors"})
    assert (
        isinstance(channel, core_deliveries.ChannelPost) and channel.target is core_deliveries.ChannelTarget.SUPERVISORS
    )
    assert json.loads(json.dumps(to_payload(post)))["role"] == "child"
    assert json.loads(json.dumps(to_payload(channel)))["target"] == "supervisors"
    root = from_payload({"kind": "root_update", "case": 3, "text": ["x"], "buttons": ["hold", "close"]})
    assert isinstance(root, core_deliveries.RootUpdate) and root.buttons == (
        core.CaseAction.HOLD,
        core.CaseAction.CLOSE,
    )
    assert all(type(button) is core.CaseAction for button in root.buttons)
    assert json.loads(json.dumps(to_payload(root)))["buttons"] == ["hold", "close"]


def test_the_samples_hold_every_kind_of_text_part() -> None:
    post = sample(core_deliveries.ThreadPost)
    assert {type(part) for part in post.text} == set(typing.get_args(Part))


async def test_a_root_posted_before_a_crash_is_found_not_posted_again(
    worker: Worker, fakes: tuple[FakeLine, FakeSlack]
) -> None:
    """The worker dies after Slack took a case's root but before its thread was recorded: the
    retry finds the root by its metadata, records that thread, and posts nothing again."""
    _, slack = fakes
    # In SLACK_CHANNEL_ID, as every root is without a pool (the sample names a pool's channel).
    root = dataclasses.replace(sample(RootPost), case=7, opened_at=time.time(), channel=None)
    keys = worker.store.keys
    await worker.redis.hset(keys.case(7), mapping={"v": "1", "number": "7"})  # the case exists
    claim = Claim(lane="slack:7", item_id="1-0.0", payload=to_payload(root), attempts=1, enqueued_ms=now_ms())
    outcome, _ = await worker.deliverers._attempt(root, claim)
    assert outcome.delivered
    (posted,) = slack.messages("CCASES")
    for key, field in ((keys.lane_threads, "slack:7"), (keys.by_thread, posted["ts"]), (keys.case(7), "thread_ts")):
        await worker.redis.hdel(key, field)  # as if the worker had died before recording it
    again, _ = await worker.deliverers._attempt(root, dataclasses.replace(claim, attempts=2))
    assert again.delivered and len(slack.messages("CCASES")) == 1  # found, not posted again
    assert await worker.redis.hget(keys.lane_threads, "slack:7") == posted["ts"].encode()
    assert await worker.store.case_by_thread(posted["ts"]) == 7
