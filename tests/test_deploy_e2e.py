"""A deployment under traffic: two web processes and two workers, children writing and counsellors
answering all the while.

- Every process is stopped with SIGTERM in the middle of the conversations and new ones are
  started (a release): nothing is lost or doubled, and each child's messages reach its thread, and
  its counsellor's replies reach the child, in the order they were sent. Webhooks that find no web
  process meanwhile are sent again as LINE and Slack do (the same event).
- The web processes are restarted one after the other (SIGTERM, then a new one on its port) behind
  a load balancer: every webhook is answered 200, each message arrives exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bridge.adapters.slack import verify as slack_side
from bridge.fakes.server import time_scale
from tests.conftest import CHANNEL, SLACK_SIGNING, Bridge, Process, line_text_event, line_user_id
from tests.test_relay_e2e import bot_thread

pytestmark = pytest.mark.redis

CHILDREN = 4
MESSAGES = 10  # each way, per child
POST = "/api/chat.postMessage"
PUSH = "/v2/bot/message/push"
IN_FLIGHT_S = 0.3


@dataclass
class Conversation:
    """One child and the counsellor answering in its case's thread, with what each sent, in order."""

    n: int
    child: str
    sent: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    root_ts: str | None = None

    def text(self, i: int) -> str:
        return f"子ども{self.n}の{i}通目"

    def reply(self, i: int) -> str:
        return f"相談員から{self.n}へ{i}通目"


def conversations() -> list[Conversation]:
    return [Conversation(n, line_user_id(100 + n)) for n in range(CHILDREN)]


def slack_body(bridge: Bridge, conversation: Conversation, text: str) -> tuple[str, bytes]:
    """A counsellor's reply in the case thread, stored in fake Slack first as Slack would; the
    Events API body that announces it, and its event id."""
    assert conversation.root_ts is not None
    ts = str(bridge.fake_slack.add_message(CHANNEL, text, user="UCOUNSEL1", thread_ts=conversation.root_ts)["ts"])
    event = {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "group",
        "user": "UCOUNSEL1",
        "text": text,
        "ts": ts,
        "thread_ts": conversation.root_ts,
    }
    event_id = "Ev" + uuid.uuid4().hex[:10].upper()
    body = {
        "token": "legacy",
        "team_id": bridge.fake_slack.team_id,
        "api_app_id": bridge.fake_slack.app_id,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
    }
    return event_id, json.dumps(body).encode()


def post_slack(url: str, body: bytes, retry: int) -> httpx.Response:
    headers = {"Content-Type": "application/json", **slack_side.sign(SLACK_SIGNING, body)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
    return httpx.post(url + "/slack/events", content=body, headers=headers, timeout=10)


class Sender:
    """Sends each webhook until a web process answers 200, trying the web processes in turn (a
    refused connection or any other answer: the next one; after a round of them, a pause), as LINE
    redelivers the same event and Slack retries it."""

    def __init__(self, bridge: Bridge, urls: Callable[[], list[str]]) -> None:
        self.bridge = bridge
        self.urls = urls
        self.turn = 0
        self.refused = 0  # attempts not answered 200 (the release's gap)

    def until_accepted(self, send: Callable[[str, int], httpx.Response], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout * time_scale()
        attempt = 0
        while True:
            urls = self.urls()
            for _ in urls:
                url = urls[self.turn % len(urls)]
                self.turn += 1
                try:
                    if send(url, attempt).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                attempt += 1
                self.refused += 1
            assert time.monotonic() < deadline, f"no web process accepted a webhook within {timeout} s"
            time.sleep(0.1)

    def child_writes(self, conversation: Conversation, i: int) -> None:
        event = line_text_event(conversation.child, conversation.text(i))
        body = json.dumps({"destination": "Ubot", "events": [event]}, ensure_ascii=False).encode()
        self.until_accepted(lambda url, _: self.bridge.line_post(body, url=url))
        conversation.sent.append(conversation.text(i))

    def counsellor_replies(self, conversation: Conversation, i: int) -> None:
        _, body = slack_body(self.bridge, conversation, conversation.reply(i))
        self.until_accepted(lambda url, retry: post_slack(url, body, retry))
        conversation.replies.append(conversation.reply(i))


def wait_for_threads(bridge: Bridge, talks: list[Conversation]) -> None:
    """Each conversation's case thread: the one whose first post is the child's first message."""

    def found() -> bool:
        for talk in talks:
            for root in bridge.fake_slack.roots(CHANNEL):
                if bot_thread(bridge, root["ts"])[:1] == [talk.text(0)]:
                    talk.root_ts = root["ts"]
        return all(t.root_ts for t in talks)

    bridge.fake_slack.wait_for(found, timeout=30, message="every case's thread")


def assert_each_once_in_order(bridge: Bridge, talks: list[Conversation]) -> None:
    def arrived() -> bool:
        return all(
            t.root_ts is not None
            and len(bot_thread(bridge, t.root_ts)) >= len(t.sent)
            and len(bridge.fake_line.texts_to(t.child)) >= len(t.replies)
            for t in talks
        )

    bridge.fake_slack.wait_for(arrived, timeout=90, message="every message delivered")
    bridge.wait_settled(timeout=60)
    time.sleep(1)  # a doubled delivery would come now
    for talk in talks:
        assert talk.root_ts is not None
        assert bot_thread(bridge, talk.root_ts) == talk.sent, f"child {talk.n}'s thread"
        assert bridge.fake_line.texts_to(talk.child) == talk.replies, f"child {talk.n}'s replies"
    assert len(bridge.fake_slack.roots(CHANNEL)) == len(talks)  # one case each, none opened twice


def assert_stopped_cleanly(process: Process) -> None:
    """It exits by itself after SIGTERM, having finished what it was doing: a worker with 0; a web
    process once uvicorn's graceful shutdown is over (uvicorn then re-raises the SIGTERM it caught,
    as a process stopped by it)."""
    code = process.popen.wait(20 * time_scale())
    if process.name == "web":
        assert code in (0, -signal.SIGTERM) and "Finished server process" in process.log(), process.log()
    else:
        assert code == 0 and "worker stopped" in process.log(), process.log()


def test_a_release_under_traffic_loses_doubles_and_reorders_nothing(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(web=2, worker=2)
    # Each post and push takes a while, so calls are in flight when the release stops the workers.
    bridge.fake_slack.delay_next(POST, IN_FLIGHT_S, times=10_000)
    bridge.fake_line.delay_next(PUSH, IN_FLIGHT_S, times=10_000)
    webs = [p for p in bridge.processes if p.name == "web"]
    sender = Sender(bridge, lambda: [f"http://127.0.0.1:{p.port}" for p in webs])
    talks = conversations()
    for talk in talks:
        sender.child_writes(talk, 0)
    wait_for_threads(bridge, talks)
    old: list[Process] = []
    for i in range(MESSAGES):
        if i == MESSAGES // 2:  # the release: every process stopped, new ones started at once
            old = list(bridge.processes)
            for process in old:
                process.popen.send_signal(signal.SIGTERM)
            webs[:] = [bridge.launch("web"), bridge.launch("web")]
            bridge.launch("worker")
            bridge.launch("worker")
        for talk in talks:
            if i:
                sender.child_writes(talk, i)
            sender.counsellor_replies(talk, i)
    for process in old:
        assert_stopped_cleanly(process)
    assert_each_once_in_order(bridge, talks)
    print(f"webhook attempts not answered 200 during the release: {sender.refused}")


class Front:
    """A round-robin load balancer on 127.0.0.1 in front of web processes (an HTTP/1.1 proxy, one
    request per connection). Like any load balancer it sends nothing to a backend that refuses the
    connection (stopped, or draining: uvicorn stops listening at SIGTERM) and sends the request to
    the next one instead; so too when a backend closes the connection without a byte of answer (a
    draining uvicorn closes connections it accepted but had no request on yet). An answer once begun
    is passed on as it is: a request a web failed is the client's to see."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = 0
        self.resent = 0  # requests sent on to the next backend
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Front:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _serve(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            head = await client.readuntil(b"\r\n\r\n")
            lines = [line for line in head.split(b"\r\n") if line]
            sizes = [int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")]
            body = await client.readexactly(sizes[0] if sizes else 0)
            lines = [line for line in lines if not line.lower().startswith(b"connection:")]
            request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
            answer = await self._forward(request)
            to_client.write(answer or b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await to_client.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            to_client.close()
            with contextlib.suppress(OSError):
                await to_client.wait_closed()

    async def _forward(self, request: bytes) -> bytes:
        """The first backend's whole answer, trying each in turn from the next one's turn."""
        start = self.turn
        self.turn += 1
        for k in range(len(self.ports)):
            port = self.ports[(start + k) % len(self.ports)]
            if k:
                self.resent += 1
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # refused: stopped or draining
            try:
                writer.write(request)
                await writer.drain()
                answer = await reader.read()  # to the end: the backend closes after answering
            except OSError:
                answer = b""
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            if answer:
                return answer
        return b""


@pytest.fixture
def front_of_two_webs(bridge_factory: Any) -> Iterator[tuple[Bridge, Front]]:
    bridge: Bridge = bridge_factory(web=2, worker=2)
    with Front([p.port for p in bridge.processes if p.name == "web"]) as front:
        yield bridge, front


def test_webhooks_are_answered_200_throughout_while_the_webs_restart_in_turn(
    front_of_two_webs: tuple[Bridge, Front],
) -> None:
    bridge, front = front_of_two_webs
    answers: list[int] = []
    failed: list[BaseException] = []

    def once(send: Callable[[], httpx.Response]) -> None:
        """One webhook through the front, never sent again: only a 200 will do."""
        try:
            answers.append(send().status_code)
        except httpx.HTTPError:
            answers.append(0)

    def child_writes(talk: Conversation, i: int) -> None:
        body = json.dumps({"destination": "Ubot", "events": [line_text_event(talk.child, talk.text(i))]}).encode()
        once(lambda: bridge.line_post(body, url=front.url))
        talk.sent.append(talk.text(i))

    def counsellor_replies(talk: Conversation, i: int) -> None:
        _, body = slack_body(bridge, talk, talk.reply(i))
        once(lambda: post_slack(front.url, body, 0))
        talk.replies.append(talk.reply(i))

    talks = conversations()
    stop = threading.Event()

    def traffic() -> None:
        """Every child and counsellor in turn, until the restarts are over (and MESSAGES rounds)."""
        try:
            for talk in talks:
                child_writes(talk, 0)
            wait_for_threads(bridge, talks)
            i = 1
            while not stop.is_set() or i < MESSAGES:
                for talk in talks:
                    child_writes(talk, i)
                    counsellor_replies(talk, i)
                i += 1
                time.sleep(0.05)
        except BaseException as exc:  # (seen by the test, not lost with the thread)
            failed.append(exc)

    sending = threading.Thread(target=traffic)
    sending.start()
    try:
        time.sleep(2)
        for web in [p for p in bridge.processes if p.name == "web"]:
            web.popen.send_signal(signal.SIGTERM)
            assert_stopped_cleanly(web)
            bridge.wait_ready(bridge.launch("web", port=web.port))  # the restarted one, on its port
            time.sleep(1)
    finally:
        stop.set()
        sending.join(120)
    assert not sending.is_alive() and not failed, failed
    assert answers and set(answers) == {200}, f"answers other than 200: {[a for a in answers if a != 200]}"
    assert_each_once_in_order(bridge, talks)
    print(f"webhooks: {len(answers)}, sent on to the other web by the front: {front.resent}")
