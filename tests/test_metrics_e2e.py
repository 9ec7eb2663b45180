"""GET /metrics end to end: the Procfile's processes, real HTTP, real signatures, a real Redis.

The web's webhook counters move by exactly what was sent; the backlog, the lanes and the open
cases are read from Redis at the scrape; the worker serves its own deliveries, retries, 429s and
timer lateness on its own port and refuses a port already in use; no label carries anything but
a small fixed set of values."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import time
from typing import Any, cast

import httpx
import pytest

from bridge.adapters.redis.keys import Keys
from bridge.fakes.harness import free_port, procfile_commands
from tests.conftest import CHANNEL, ROOT, Bridge, Process, line_text_event, line_user_id
from tests.scrape import delta, scrape, unsafe_labels, value
from tests.test_relay_e2e import CHILD, open_case

pytestmark = pytest.mark.redis

PUSH = "/v2/bot/message/push"
# The Web API methods a delivery makes one call of (on its first try; none of them failed here).
SLACK_WRITES = ("/api/chat.postMessage", "/api/chat.update", "/api/reactions.add", "/api/chat.postEphemeral")


def requests_counted(found: dict[Any, float]) -> dict[tuple[str, str], float]:
    """bridge_webhook_requests_total by (source, outcome), as changed."""
    return {
        (dict(labels)["source"], dict(labels)["outcome"]): count
        for (name, labels), count in found.items()
        if name == "bridge_webhook_requests_total"
    }


def test_webhooks_are_counted_by_outcome_and_the_backlog_read_from_redis(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0)  # nothing routes: what is recorded stays in the stream
    before = scrape(bridge.url)
    assert value(before, "bridge_redis_up") == 1
    assert value(before, "bridge_inbound_backlog", partition="0") == 0
    sent_first = time.time()
    two = json.dumps({"events": [line_text_event(CHILD, "ひとつめ"), line_text_event(CHILD, "ふたつめ")]}).encode()
    assert bridge.line_post(two).status_code == 200
    assert bridge.line_events(line_text_event(line_user_id(2), "みっつめ")).status_code == 200
    assert bridge.line_post(two).status_code == 200  # LINE redelivers: both events seen before
    assert bridge.line_post(two, signature="bad").status_code == 401
    assert bridge.line_post(b"{not json").status_code == 400
    assert bridge.line_post(b'{"events": [' + b" " * (1024 * 1024) + b"]}").status_code == 413
    thread_reply = {"type": "message", "channel": CHANNEL, "user": "U1", "text": "x", "ts": "2.1", "thread_ts": "1.1"}
    assert bridge.slack_event(thread_reply).status_code == 200
    assert bridge.slack_event(thread_reply, app="AOTHERAPP").status_code == 200  # ignored, not recorded
    assert bridge.slack_post(b"{}", headers={"X-Slack-Signature": "v0=bad"}).status_code == 401
    time.sleep(1.0)  # the oldest entry is at least this old at the scrape
    after = scrape(bridge.url)
    scraped = time.time()
    changed = delta(before, after)
    assert requests_counted(changed) == {
        ("line", "accepted"): 2,
        ("line", "duplicate"): 1,
        ("line", "bad_signature"): 1,
        ("line", "bad_body"): 1,
        ("line", "too_large"): 1,
        ("slack", "accepted"): 1,
        ("slack", "other_app"): 1,
        ("slack", "bad_signature"): 1,
    }
    for (source, outcome), count in requests_counted(changed).items():  # each answer timed once
        assert value(changed, "bridge_webhook_seconds_count", source=source, outcome=outcome) == count
    assert value(changed, "bridge_webhook_events_total", source="line", outcome="recorded") == 3
    assert value(changed, "bridge_webhook_events_total", source="line", outcome="duplicate") == 2
    # Three LINE events and the counsellor's reply wait in the stream, the oldest since the first post.
    assert value(after, "bridge_inbound_backlog", partition="0") == 4
    assert 1.0 <= value(after, "bridge_inbound_oldest_age_seconds", partition="0") <= scraped - sent_first + 0.1
    assert value(after, "bridge_lanes_queued") == 0 and value(after, "bridge_open_cases") == 0
    assert unsafe_labels(after) == []


def test_a_relayed_consultation_is_counted_in_the_worker_and_read_from_redis(bridge: Bridge) -> None:
    _, worker = bridge.processes
    assert f"metrics served on port {worker.port} (PORT)" in worker.log()  # said once, at start
    root_ts = open_case(bridge, CHILD, "きいてほしい")
    # The counsellor's reply to LINE is answered 429 once, then taken.
    bridge.fake_line.fail_next(PUSH, 429, headers={"Retry-After": "1"})
    bridge.counsellor_reply(root_ts, "きいてるよ")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(CHILD) == ["きいてるよ"])
    bridge.wait_settled()
    # A timer due two seconds ago (as if the router had been away) moves into the stream late.
    worker_url = f"http://127.0.0.1:{worker.port}"
    before = scrape(worker_url)
    timers = Keys().timers
    member = cast(list[bytes], bridge.redis.zrange(timers, 0, 0))[0]
    bridge.redis.zadd(timers, {member: int(time.time() * 1000) - 2000}, xx=True)
    bridge.fake_slack.wait_for(lambda: bridge.redis.zscore(timers, member) is None)
    bridge.wait_settled()

    counted = scrape(worker_url)
    slack_delivered = sum(1 for path in SLACK_WRITES for r in bridge.fake_slack.requests_to(path) if r.status == 200)
    assert slack_delivered >= 3  # the case's root, the child's words, the ✅ on the reply at least
    assert value(counted, "bridge_deliveries_total", platform="slack", outcome="delivered") == slack_delivered
    line_delivered = len(bridge.fake_line.accepted_pushes()) + len(bridge.fake_line.accepted_replies())
    assert value(counted, "bridge_deliveries_total", platform="line", outcome="delivered") == line_delivered
    assert [r.status for r in bridge.fake_line.requests_to(PUSH)].count(429) == 1
    assert value(counted, "bridge_rate_limited_total", platform="line") == 1
    assert value(counted, "bridge_delivery_retries_total", platform="line") == 1
    assert value(counted, "bridge_rate_limited_total", platform="slack") == 0
    for outcome in ("failed", "set_aside"):
        assert value(counted, "bridge_deliveries_total", platform="line", outcome=outcome) == 0
    late = delta(before, counted)
    assert value(late, "bridge_timer_lateness_seconds_count") == 1
    assert 2.0 <= value(late, "bridge_timer_lateness_seconds_sum") < 3.5  # the router looks every second

    state = scrape(bridge.url)
    assert value(state, "bridge_open_cases") == 1
    assert value(state, "bridge_inbound_backlog", partition="0") == 0
    assert value(state, "bridge_lanes_queued") == 0
    assert value(state, "bridge_webhook_requests_total", source="line", outcome="accepted") == 1
    # No label of either process carries a case number, a user ID, a lane, a thread or a text.
    for found in (counted, state):
        assert unsafe_labels(found) == []
    everything = (
        httpx.get(bridge.url + "/metrics", timeout=10).text + httpx.get(worker_url + "/metrics", timeout=10).text
    )
    assert CHILD not in everything and root_ts not in everything and "きいて" not in everything


def test_deliveries_waiting_in_a_lane_are_counted_by_platform(bridge: Bridge) -> None:
    root_ts = open_case(bridge)
    bridge.wait_settled()
    bridge.fake_line.stall(PUSH)  # the first reply is in flight, the second waits behind it
    started = time.time()
    bridge.counsellor_reply(root_ts, "ひとつめ")
    bridge.counsellor_reply(root_ts, "ふたつめ")

    def both_waiting() -> bool:  # (a SCAN is fine in a test; the scrape itself makes none)
        return sum(bridge.redis.llen(key) for key in bridge.redis.scan_iter(Keys().lane("line:*"))) == 2

    bridge.fake_line.wait_for(both_waiting)
    time.sleep(0.5)
    found = scrape(bridge.url)
    assert value(found, "bridge_lanes", platform="line") == 1
    assert value(found, "bridge_lane_deliveries", platform="line") == 2
    assert 0.5 <= value(found, "bridge_lane_oldest_age_seconds", platform="line") <= time.time() - started + 0.1
    assert value(found, "bridge_lane_deliveries", platform="slack") == 0
    assert value(found, "bridge_lanes_queued") >= 1
    bridge.fake_line.unstall(PUSH)
    bridge.wait_settled(timeout=30)
    found = scrape(bridge.url)
    assert value(found, "bridge_lane_deliveries", platform="line") == 0
    assert value(found, "bridge_lane_oldest_age_seconds", platform="line") == 0


def test_a_scrape_without_redis_says_redis_is_down_instead_of_failing(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    found = scrape(bridge.url)  # 200, not 500
    assert value(found, "bridge_redis_up") == 0
    assert not [name for name, _ in found if name.startswith(("bridge_inbound", "bridge_lane", "bridge_open"))]
    assert bridge.line_events(line_text_event(CHILD, "x")).status_code == 503
    assert value(scrape(bridge.url), "bridge_webhook_requests_total", source="line", outcome="unavailable") == 1
    assert "Traceback" not in bridge.logs()
    assert bridge.logs().count("metrics: Redis did not answer") == 1  # said when it changed, not each scrape


def test_a_worker_refuses_a_metrics_port_already_in_use(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=1)
    running = bridge.processes[1]
    with socket.socket() as other:  # another program's port, and a running worker's
        other.bind(("0.0.0.0", 0))
        other.listen()
        for taken in (other.getsockname()[1], running.port):
            refused = bridge.launch("worker", port=taken)
            try:
                code = refused.popen.wait(20)
            except subprocess.TimeoutExpired:
                refused.stop()
                pytest.fail(f"a worker started on a metrics port in use:\n{refused.log()}")
            assert code != 0
            assert f"the worker's metrics port {taken} (PORT) is already in use" in refused.log()
            assert "worker started" not in refused.log() and "Traceback" not in refused.log()
    assert running.popen.poll() is None  # the worker that had the port keeps it
    assert httpx.get(f"http://127.0.0.1:{running.port}/metrics", timeout=10).status_code == 200


def test_a_worker_without_a_port_serves_no_metrics_and_says_so(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(worker=0)
    metrics_port = free_port()
    command = shlex.split(procfile_commands()["worker"])
    for extra, said in (
        ({}, "metrics not served: neither PORT nor BRIDGE_METRICS_PORT is set"),
        ({"BRIDGE_METRICS_PORT": str(metrics_port)}, f"metrics served on port {metrics_port} (BRIDGE_METRICS_PORT)"),
    ):
        env = {name: setting for name, setting in bridge.env.items() if name != "PORT"} | extra
        log_path = bridge.tmp / f"worker-without-port-{len(bridge.processes)}.log"
        with log_path.open("wb") as handle:
            popen = subprocess.Popen(command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        process = Process("worker", popen, log_path)
        bridge.processes.append(process)  # stopped and searched for leaks at teardown
        bridge.wait_ready(process)
        assert process.log().count(said) == 1
        if extra:
            assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).status_code == 200
        process.stop()
