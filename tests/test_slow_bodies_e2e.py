"""Bodies that arrive too slowly, never arrive in full, or are too large, sent as raw bytes over a
socket to the real web process: each is answered (408, 413) or dropped without a trace of its
content, before any signature is checked, and nothing is recorded."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bridge.adapters.line import webhook as line_side
from bridge.adapters.slack import verify as slack_side
from bridge.fakes.server import time_scale
from tests.conftest import LINE_SECRET, SLACK_SIGNING, Bridge, line_text_event
from tests.test_webhooks_e2e import redis_snapshot

pytestmark = pytest.mark.redis

# The web processes of these tests wait this long for a body (BRIDGE_BODY_TIMEOUT_SECONDS).
BODY_TIMEOUT = 1.0
# How much later than the timeout the answer may come: the process's own latency, scaled.
MARGIN = 2.0
CHILD = "U" + "5" * 32
SECRET_WORDS = "だれにもいえないひみつのはなし"


@dataclass(frozen=True)
class Endpoint:
    path: str
    body: bytes  # a whole, valid request body: what the client claims to be sending
    signature_headers: dict[str, str]


def endpoint(name: str) -> Endpoint:
    if name == "line":
        body = json.dumps(
            {"destination": "Ubot", "events": [line_text_event(CHILD, SECRET_WORDS)]}, ensure_ascii=False
        ).encode()
        return Endpoint("/line/webhook", body, {"X-Line-Signature": line_side.sign(LINE_SECRET, body)})
    event = {"type": "message", "channel": "CCONSULT", "user": "U1", "text": SECRET_WORDS, "ts": "1.2"}
    body = json.dumps(
        {"type": "event_callback", "event_id": "EvSLOW", "team_id": "T0001", "api_app_id": "A0001", "event": event},
        ensure_ascii=False,
    ).encode()
    return Endpoint("/slack/events", body, slack_side.sign(SLACK_SIGNING, body))


@pytest.fixture
def quick(bridge_factory: Any) -> Iterator[Bridge]:
    """A web process with a short body timeout and no worker: whatever it recorded would stay in
    the stream, where the test looks for it."""
    bridge: Bridge = bridge_factory(worker=0, BRIDGE_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT))
    yield bridge


def connect(bridge: Bridge) -> socket.socket:
    host, _, port = bridge.url.removeprefix("http://").partition(":")
    sock = socket.create_connection((host, int(port)), timeout=10 * time_scale())
    return sock


def head(target: Endpoint, framing: dict[str, str]) -> bytes:
    headers = {"Host": "bridge", "Content-Type": "application/json", **target.signature_headers, **framing}
    return (f"POST {target.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def read_response(sock: socket.socket, deadline: float, *, trickle: bool = False) -> tuple[int, bytes]:
    """The status and everything the server sent until it closed the connection (by deadline).
    With trickle, one more byte of body goes out every 0.1 s until the server answers."""
    received = b""
    while time.monotonic() < deadline:
        try:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if not readable:
                if trickle and not received:
                    sock.sendall(b" ")
                continue
            chunk = sock.recv(65536)
        except ConnectionResetError:
            # The server closed with bytes of ours unread (a trickle's last), so the close came as
            # a reset: a close all the same, once the answer is in.
            chunk = b""
        if not chunk:
            status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else 0
            return status, received
        received += chunk
    raise AssertionError(f"no complete answer and close by the deadline; received {received[:200]!r}")


def nothing_recorded(bridge: Bridge, before: dict[Any, Any]) -> None:
    assert redis_snapshot(bridge) == before
    logs = bridge.logs()
    assert "recorded" not in logs and "bad signature" not in logs and "bad or stale" not in logs
    assert "Traceback" not in logs and "Exception" not in logs


@pytest.mark.parametrize("name", ["line", "slack"])
@pytest.mark.parametrize("how", ["short-of-content-length", "stalled-chunked", "trickle"])
def test_a_body_that_does_not_arrive_in_time_is_408(quick: Bridge, name: str, how: str) -> None:
    target = endpoint(name)
    quick.sensitive.note_line_body(endpoint("line").body)  # the privacy scan looks for its words
    before = redis_snapshot(quick)
    with connect(quick) as sock:
        started = time.monotonic()
        if how == "stalled-chunked":
            piece = target.body[:10]
            sock.sendall(head(target, {"Transfer-Encoding": "chunked"}) + b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            sock.sendall(head(target, {"Content-Length": str(len(target.body))}) + target.body[:10])
        deadline = started + (BODY_TIMEOUT + MARGIN) * time_scale()
        status, response = read_response(sock, deadline, trickle=how == "trickle")
        elapsed = time.monotonic() - started
    assert status == 408, response
    assert elapsed >= 0.95 * BODY_TIMEOUT, f"answered after {elapsed:.2f} s, before the body timeout"
    assert b"connection: close" in response.lower()
    assert "body not received within 1 s" in quick.logs()
    nothing_recorded(quick, before)


@pytest.mark.parametrize("name", ["line", "slack"])
def test_a_client_that_disconnects_mid_body_is_logged_in_one_line(quick: Bridge, name: str) -> None:
    target = endpoint(name)
    quick.sensitive.note_line_body(endpoint("line").body)
    before = redis_snapshot(quick)
    cut = target.body.index(SECRET_WORDS.encode()) + 12  # the first words of the text are sent
    with connect(quick) as sock:
        sock.sendall(head(target, {"Content-Length": str(len(target.body))}) + target.body[:cut])
        time.sleep(0.2)  # the body is being read when the client goes
    quick.fake_slack.wait_for(lambda: "client disconnected" in quick.logs(), timeout=5)
    lines = [line for line in quick.logs().splitlines() if "disconnected" in line]
    assert len(lines) == 1 and re.search(rf"after \d+ of {len(target.body)} bytes", lines[0]), lines
    assert SECRET_WORDS[:4] not in quick.logs()
    nothing_recorded(quick, before)
    # The process goes on serving.
    assert httpx.get(quick.url + "/healthz", timeout=10 * time_scale()).status_code == 200


@pytest.mark.parametrize("name", ["line", "slack"])
def test_a_declared_length_over_the_limit_is_413_at_once_and_the_connection_closed(quick: Bridge, name: str) -> None:
    target = endpoint(name)
    before = redis_snapshot(quick)
    with connect(quick) as sock:
        started = time.monotonic()
        sock.sendall(head(target, {"Content-Length": str(2 * 1024 * 1024)}))
        status, response = read_response(sock, started + MARGIN * time_scale())
        elapsed = time.monotonic() - started
    assert status == 413, response
    assert elapsed < BODY_TIMEOUT, "the server waited for a body it would refuse anyway"
    nothing_recorded(quick, before)


@pytest.mark.parametrize("name", ["line", "slack"])
def test_a_chunked_body_over_the_limit_is_413(bridge_factory: Any, name: str) -> None:
    """No Content-Length to refuse in advance: the read itself stops one byte over the limit.
    (The default body timeout: a loaded machine may take more than a second over a megabyte.)"""
    quick: Bridge = bridge_factory(worker=0)
    target = endpoint(name)
    before = redis_snapshot(quick)
    size = 1024 * 1024 + 1
    with connect(quick) as sock:
        started = time.monotonic()
        # One chunk, and nothing after it: every byte sent is read, so the close is clean.
        sock.sendall(head(target, {"Transfer-Encoding": "chunked"}) + b"%x\r\n" % size + b"x" * size)
        status, response = read_response(sock, started + (5 + MARGIN) * time_scale())
    assert status == 413, response
    assert "body over 1048576 bytes" in quick.logs()
    nothing_recorded(quick, before)
