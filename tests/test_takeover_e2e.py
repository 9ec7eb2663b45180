"""A worker that dies is noticed in seconds: its lanes and the router move on long before their
leases would have run out (adapters/redis/heartbeat.py), and nothing is lost or doubled.

The lane lease here is a minute, so a take-over within the waits below can only come from the
dead worker's heartbeat running out (three seconds), never from its lease."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from bridge.adapters.redis.keys import Keys
from bridge.fakes.server import time_scale
from tests.conftest import Bridge, Process, line_text_event
from tests.test_guarantees_e2e import POST, posts_in_thread
from tests.test_relay_e2e import CHILD, bot_thread, open_case

pytestmark = pytest.mark.redis

KEYS = Keys()
LEASE_S = 60
TAKEN_OVER_WITHIN_S = 20  # well under the lease: only the heartbeat can make it


def lane_holder(bridge: Bridge) -> Process:
    """The worker process holding a case lane's lease (tokens are "host:pid:random:suffix")."""
    leases = [key for key in bridge.redis.scan_iter(match=KEYS.lanes_prefix + "lease:slack:*")]
    assert len(leases) == 1, leases
    token: Any = bridge.redis.get(leases[0])
    assert isinstance(token, bytes)
    pid = int(token.decode().split(":")[-3])
    return next(p for p in bridge.processes if p.name == "worker" and p.popen.pid == pid)


def kill_holder_mid_post(bridge: Bridge, root_ts: str) -> float:
    """A child's message whose post Slack has not answered when its worker is SIGKILLed; a second
    one queued behind it in the same lane. Returns when the worker died."""
    bridge.fake_slack.stall(POST)
    assert bridge.line_events(line_text_event(CHILD, "止まる前に")).status_code == 200
    bridge.fake_slack.wait_for(lambda: len(posts_in_thread(bridge, root_ts, "止まる前に")) == 1)
    holder = lane_holder(bridge)
    holder.popen.send_signal(signal.SIGKILL)
    holder.popen.wait(10)
    killed_at = time.monotonic()
    assert bridge.line_events(line_text_event(CHILD, "止まった後に")).status_code == 200
    bridge.fake_slack.unstall(POST)
    return killed_at


def assert_delivered_once_in_order(bridge: Bridge, root_ts: str, since: float) -> None:
    expected = ["はじめまして", "止まる前に", "止まった後に"]
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1:] == ["止まった後に"], timeout=60)
    took = time.monotonic() - since
    assert took < TAKEN_OVER_WITHIN_S * time_scale(), f"taken over after {took:.1f} s: the lease ran out instead"
    time.sleep(1)  # a doubled post would come now
    assert bot_thread(bridge, root_ts) == expected


def test_a_killed_workers_lane_is_taken_over_by_the_other_worker_in_seconds(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=2, BRIDGE_LEASE_SECONDS=str(LEASE_S), BRIDGE_HTTP_TIMEOUT_SECONDS="5")
    root_ts = open_case(bridge)
    killed_at = kill_holder_mid_post(bridge, root_ts)
    assert_delivered_once_in_order(bridge, root_ts, killed_at)
    survivor = next(p for p in bridge.processes if p.name == "worker" and p.popen.poll() is None)
    assert "workers stopped beating count=1" in survivor.log()


def test_a_killed_and_restarted_single_worker_does_not_wait_for_its_earlier_leases(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(BRIDGE_LEASE_SECONDS=str(LEASE_S), BRIDGE_HTTP_TIMEOUT_SECONDS="5")
    root_ts = open_case(bridge)
    kill_holder_mid_post(bridge, root_ts)
    bridge.start("worker")  # a new incarnation: its router and lanes were its predecessor's
    restarted_at = time.monotonic()
    assert_delivered_once_in_order(bridge, root_ts, restarted_at)
