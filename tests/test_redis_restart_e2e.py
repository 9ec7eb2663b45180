"""redis-server killed and started again under a running bridge (its append-only file fsynced at
every write, so it comes back with everything it acknowledged): a delivery answered while Redis
was down is settled as soon as Redis is back, and a worker started while Redis is down waits for
it instead of exiting.

The lane lease here is a minute, so a case's next message that arrives within the waits below
was not let through by its lane's lease running out."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.fakes.server import time_scale
from tests.conftest import Bridge, Process, RedisDeployment, RestartableRedis, SyncRedis, line_text_event
from tests.test_guarantees_e2e import POST, posts_in_thread
from tests.test_relay_e2e import CHILD, bot_thread, open_case, wait_thread

pytestmark = pytest.mark.redis

LEASE_S = "60"
MOVED_ON_WITHIN_S = 15  # far under the lease


@pytest.fixture
def redis_deployment(restartable_redis: RestartableRedis) -> RedisDeployment:
    return restartable_redis


@pytest.fixture
def bridge_redis(restartable_redis: RestartableRedis) -> Iterator[SyncRedis]:
    client = restartable_redis.client()
    yield client
    client.close()


def send_until_taken(bridge: Bridge, text: str, timeout: float = 30) -> None:
    """A child's message, redelivered as LINE does (the same event) until a web answers 200: the
    first webhook after a Redis restart may find only a closed connection."""
    event = line_text_event(CHILD, text)
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        try:
            if bridge.line_events(event).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"no web took the webhook within {timeout} s"
        time.sleep(0.25)


def wait_logged(process: Process, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout * time_scale()
    while text not in process.log():
        assert process.popen.poll() is None, f"{process.name} exited:\n{process.log()}"
        assert time.monotonic() < deadline, f"{process.name} never logged {text!r}:\n{process.log()}"
        time.sleep(0.1)


def test_a_post_answered_while_redis_is_down_is_settled_when_redis_is_back(
    bridge_factory: Any, restartable_redis: RestartableRedis
) -> None:
    """Slack takes a child's message while redis-server is down, so its worker cannot settle it
    then. Once Redis is back the worker settles it at once: the case's next message follows in
    seconds, not when the lane's lease (a minute) runs out, and each is posted once."""
    bridge: Bridge = bridge_factory(BRIDGE_LEASE_SECONDS=LEASE_S, BRIDGE_HTTP_TIMEOUT_SECONDS="10")
    root_ts = open_case(bridge)
    bridge.wait_settled()
    bridge.fake_slack.stall(POST)
    send_until_taken(bridge, "止まる前に")
    bridge.fake_slack.wait_for(lambda: len(posts_in_thread(bridge, root_ts, "止まる前に")) == 1)
    (post,) = [r for r in bridge.fake_slack.requests_to(POST) if not r.status]
    restartable_redis.stop()
    bridge.fake_slack.unstall(POST)  # Slack takes it; its worker hears so while Redis is down
    bridge.fake_slack.wait_for(lambda: post.status == 200)
    time.sleep(2)  # its worker tries to settle it meanwhile, and cannot
    restartable_redis.start()
    back = time.monotonic()
    send_until_taken(bridge, "戻った後に")
    bridge.fake_slack.wait_for(lambda: bot_thread(bridge, root_ts)[-1:] == ["戻った後に"], timeout=90)
    took = time.monotonic() - back
    assert took < MOVED_ON_WITHIN_S * time_scale(), f"the lane moved on {took:.1f} s after Redis was back"
    bridge.wait_settled()
    assert bot_thread(bridge, root_ts) == ["はじめまして", "止まる前に", "戻った後に"]
    (worker,) = [p for p in bridge.processes if p.name == "worker"]
    assert "delivery settled once redis answered" in worker.log()


def worker_waiting_for_redis(bridge_factory: Any, restartable_redis: RestartableRedis) -> tuple[Bridge, Process]:
    """A web with Redis stopped after it started, and a worker launched then: it logs that it waits."""
    bridge: Bridge = bridge_factory(worker=0)
    restartable_redis.stop()
    worker = bridge.launch("worker")
    wait_logged(worker, "waiting for redis")
    return bridge, worker


def test_a_worker_started_while_redis_is_down_waits_for_it(
    bridge_factory: Any, restartable_redis: RestartableRedis
) -> None:
    """It says it is waiting, asks again, and starts once Redis answers; then it relays."""
    bridge, worker = worker_waiting_for_redis(bridge_factory, restartable_redis)
    time.sleep(2)  # several more tries, still waiting
    assert worker.popen.poll() is None, worker.log()
    assert "worker started" not in worker.log()
    restartable_redis.start()
    bridge.wait_ready(worker)
    assert "redis answered step=redis check" in worker.log()
    send_until_taken(bridge, "はじめまして")
    _, texts = wait_thread(bridge, 1, timeout=30)
    assert texts == ["はじめまして"]


def test_a_worker_waiting_for_redis_stops_at_once_on_sigterm(
    bridge_factory: Any, restartable_redis: RestartableRedis
) -> None:
    _, worker = worker_waiting_for_redis(bridge_factory, restartable_redis)
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(5 * time_scale()) == 0, worker.log()
    assert "worker stopped while waiting for redis" in worker.log()
    assert "Traceback" not in worker.log()
