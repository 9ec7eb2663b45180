"""The inbound stream in partitions (adapters/redis/partitions.py): two workers decide at once,
each child's messages and the counsellors' answers keep their order, a worker that joins is handed
partitions, one that dies has them taken over in seconds, and a process configured with another
partition count refuses to start.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.partitions import partition_of
from bridge.fakes.server import time_scale
from tests.conftest import CHANNEL, Bridge, line_text_event, line_user_id
from tests.test_relay_e2e import bot_thread, roots

pytestmark = pytest.mark.redis

KEYS = Keys()
PARTITIONS = 4
CHILDREN = [line_user_id(100 + i) for i in range(16)]


def leaders(bridge: Bridge) -> dict[int, str]:
    """Partition -> the worker (its pid) holding its router lease."""
    held: dict[int, str] = {}
    for p in range(PARTITIONS):
        token: Any = bridge.redis.get(bridge.keys.router_lease_of(p))
        if token is not None:
            held[p] = token.decode().split(":")[1]
    return held


def wait_leaders(bridge: Bridge, pids: set[int], *, each: int, timeout: float = 20) -> None:
    """Until every partition is led and each of these workers leads exactly `each`."""

    def spread() -> bool:
        held = leaders(bridge)
        counts = {pid: list(held.values()).count(str(pid)) for pid in pids}
        return len(held) == PARTITIONS and all(n == each for n in counts.values())

    bridge.fake_slack.wait_for(spread, timeout=timeout, message=f"partitions not spread: {leaders(bridge)}")


def threads_by_first_message(bridge: Bridge) -> dict[str, list[str]]:
    """Each case thread's bot posts, keyed by its first message (the child's first words)."""
    return {texts[0]: texts for root in roots(bridge) if (texts := bot_thread(bridge, root["ts"]))}


def send_rounds(bridge: Bridge, rounds: range) -> None:
    for r in rounds:
        for i, child in enumerate(CHILDREN):
            assert bridge.line_events(line_text_event(child, f"子{i} 第{r}通")).status_code == 200


def expected_threads(rounds: int) -> dict[str, list[str]]:
    return {f"子{i} 第0通": [f"子{i} 第{r}通" for r in range(rounds)] for i in range(len(CHILDREN))}


def worker_pids(bridge: Bridge) -> set[int]:
    return {p.popen.pid for p in bridge.processes if p.name == "worker" and p.popen.poll() is None}


def test_the_children_spread_over_the_partitions() -> None:
    """The test's children are in every partition, so the tests below use them all."""
    assert {partition_of(child, PARTITIONS) for child in CHILDREN} == set(range(PARTITIONS))


@pytest.mark.each_redis
def test_two_workers_share_the_partitions_and_each_childs_order_holds(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=2, BRIDGE_ROUTER_PARTITIONS=str(PARTITIONS))
    wait_leaders(bridge, worker_pids(bridge), each=PARTITIONS // 2)
    send_rounds(bridge, range(5))
    bridge.wait_settled(timeout=60)
    assert threads_by_first_message(bridge) == expected_threads(5)
    # Each child's entries went to its own partition's stream, which both workers read from.
    routed = [p.log().count("case opened") for p in bridge.processes if p.name == "worker"]
    assert sorted(routed) != [0, len(CHILDREN)] and sum(routed) == len(CHILDREN), routed
    # A counsellor's answers reach each child in order, through the case's partition.
    for root in roots(bridge):
        for n in range(3):
            bridge.counsellor_reply(root["ts"], f"返事 {n}")
    bridge.wait_settled(timeout=60)
    answers = {child: [t for t in bridge.fake_line.texts_to(child) if t.startswith("返事")] for child in CHILDREN}
    assert answers == {child: ["返事 0", "返事 1", "返事 2"] for child in CHILDREN}


def test_a_thread_message_is_recorded_in_its_cases_partition(bridge_factory: Any) -> None:
    """The web finds the case of the thread, and the case's child's partition, in Redis."""
    bridge: Bridge = bridge_factory(worker=1, BRIDGE_ROUTER_PARTITIONS=str(PARTITIONS))
    child = next(c for c in CHILDREN if partition_of(c, PARTITIONS) == 3)
    assert bridge.line_events(line_text_event(child, "はじめまして")).status_code == 200
    bridge.fake_slack.wait_for(lambda: len(roots(bridge)) == 1)
    root_ts = roots(bridge)[0]["ts"]
    bridge.wait_settled()
    bridge.processes[-1].stop()  # the worker: what the web records stays in the streams
    bridge.counsellor_reply(root_ts, "こんにちは")
    assert [bridge.redis.xlen(KEYS.inbound_of(p)) for p in range(PARTITIONS)] == [0, 0, 0, 1]
    bridge.slack_event({"type": "message", "channel": CHANNEL, "user": "UCOUNSEL1", "text": "別件", "ts": "1.000001"})
    assert [bridge.redis.xlen(KEYS.inbound_of(p)) for p in range(PARTITIONS)] == [1, 0, 0, 1]  # no case: partition 0


def test_a_worker_that_joins_is_handed_partitions_and_nothing_is_lost_or_doubled(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=1, BRIDGE_ROUTER_PARTITIONS=str(PARTITIONS))
    wait_leaders(bridge, worker_pids(bridge), each=PARTITIONS)
    send_rounds(bridge, range(3))
    bridge.start("worker")
    send_rounds(bridge, range(3, 6))
    wait_leaders(bridge, worker_pids(bridge), each=PARTITIONS // 2)
    first = next(p for p in bridge.processes if p.name == "worker")
    assert "router handed over" in first.log()
    send_rounds(bridge, range(6, 8))
    bridge.wait_settled(timeout=60)
    assert threads_by_first_message(bridge) == expected_threads(8)


def test_a_killed_workers_partitions_are_taken_over_in_seconds(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=2, BRIDGE_ROUTER_PARTITIONS=str(PARTITIONS), BRIDGE_LEASE_SECONDS="60")
    wait_leaders(bridge, worker_pids(bridge), each=PARTITIONS // 2)
    send_rounds(bridge, range(2))
    victim = next(p for p in bridge.processes if p.name == "worker")
    victim.popen.send_signal(signal.SIGKILL)
    victim.popen.wait(10)
    killed_at = time.monotonic()
    send_rounds(bridge, range(2, 4))
    survivor = worker_pids(bridge)
    wait_leaders(bridge, survivor, each=PARTITIONS, timeout=30)
    bridge.fake_slack.wait_for(lambda: threads_by_first_message(bridge) == expected_threads(4), timeout=60)
    took = time.monotonic() - killed_at
    # The router lease is 10 s and the lane lease 60: only the heartbeat (3 s) makes it this quick.
    assert took < 9 * time_scale(), f"taken over after {took:.1f} s"
    time.sleep(1)  # a doubled post would come now
    assert threads_by_first_message(bridge) == expected_threads(4)


def test_a_process_with_another_partition_count_refuses_to_start(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=1, BRIDGE_ROUTER_PARTITIONS=str(PARTITIONS))
    assert bridge.redis.get(KEYS.partition_count) == str(PARTITIONS).encode()
    bridge.env["BRIDGE_ROUTER_PARTITIONS"] = "2"
    for kind in ("worker", "web"):
        process = bridge.launch(kind)
        assert process.popen.wait(20 * time_scale()) != 0
        assert f"has {PARTITIONS} partitions, but BRIDGE_ROUTER_PARTITIONS is 2" in process.log()
