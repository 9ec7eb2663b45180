"""The chaos run's conversations: children writing on LINE and a counsellor answering in their case
threads, sent to the web processes as LINE and Slack would send them.

Each child is one conversation each way. A child's next message is sent only once LINE has had
a 200 for the one before, and so is the counsellor's next reply in the same case, so "the order
sent" is unambiguous. The counsellor starts answering a case once its thread exists in fake Slack
(found from the child's first message in it). Every attempt goes to the next web process in turn
(so a retry goes to the other one); a webhook answered anything but 200, or not answered within
ANSWER_TIMEOUT_S (Slack's 3 s), or refused at connection, is sent again after a short backoff,
as LINE redelivers (the same webhookEventId, deliveryContext.isRedelivery true) and Slack retries
(the same event_id, X-Slack-Retry-Num), until GIVE_UP_S.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .common import (
    CHANNEL,
    COUNSELLOR,
    SLACK_POST,
    child_id,
    counsellor_event,
    line_headers,
    marker,
    message_text,
    slack_headers,
)
from .rig import Rig

ANSWER_TIMEOUT_S = 3.0  # Slack retries an event not answered within 3 s
BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # between attempts (then 2 s); LINE and Slack wait longer, compressed here
GIVE_UP_S = 60.0  # a webhook not accepted within this is given up ("never accepted")
LS, SL = "ls", "sl"  # LINE -> Slack (a child's message), Slack -> LINE (a counsellor's reply)


@dataclass
class Message:
    """One message of a conversation and what happened to its webhook (wall-clock times)."""

    mark: str
    direction: str  # LS or SL
    child: int
    seq: int  # its place in the conversation, from 0
    first_sent: float = math.nan  # just before the first attempt
    accepted_sent: float = math.nan  # just before the attempt answered 200
    accepted: float = math.nan  # when that 200 arrived
    attempts: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "200", "503", "timeout", "refused"

    @property
    def was_accepted(self) -> bool:
        return not math.isnan(self.accepted)


def message_index(seq: int, child: int, children: int) -> int:
    """The number in a message's marker: every child's first message, then every second, ..."""
    return seq * children + child


class Roots:
    """Each child's case thread, learned from fake Slack: the thread of the first post (taken
    effect) that carries one of the child's messages. Read incrementally."""

    def __init__(self, rig: Rig, prefix: str, children: int) -> None:
        self.rig = rig
        self.prefix = prefix
        self.children = children
        self.thread: dict[int, str] = {}
        self._next = 0

    def update(self) -> None:
        requests = self.rig.slack.requests
        for index in range(self._next, len(requests)):
            r = requests[index]
            if r.status == 0:  # still being answered: read from here next time
                self._next = index
                return
            body = r.json if isinstance(r.json, dict) else {}
            if r.path == SLACK_POST and r.handled_status == 200 and body.get("thread_ts"):
                text = str(body.get("text") or "")
                start = text.find(self.prefix)
                if start >= 0:
                    child = int(text[start + len(self.prefix) : start + len(self.prefix) + 6]) % self.children
                    self.thread.setdefault(child, str(body["thread_ts"]))
        self._next = len(requests)


class Driver:
    """Sends every conversation's messages on their schedule, with retries (see the module)."""

    def __init__(self, rig: Rig, run: str, *, children: int, per_child: int, seconds: float) -> None:
        self.rig = rig
        self.run = run
        self.children = children
        self.per_child = per_child  # messages per child in each direction
        self.period = seconds / per_child  # between a conversation's messages
        self.seconds = seconds
        self.messages: dict[str, Message] = {}
        self.roots = Roots(rig, marker(run, LS, 0)[:10], children)
        self.never_sent: list[str] = []  # counsellor replies to a case whose thread never appeared
        self.accepted = 0  # webhooks answered 200 so far (read by the progress line)
        self._turn = 0
        self.t0 = 0.0

    def prefix(self, direction: str) -> str:
        return marker(self.run, direction, 0)[:10]

    def run_all(self, t0: float, stop: Callable[[], bool]) -> None:
        """Drive every conversation from t0 (wall clock); returns when all are done, stop() is
        true, or time ran out."""
        self.t0 = t0
        limit = t0 - time.time() + self.seconds + GIVE_UP_S + 60
        asyncio.run(asyncio.wait_for(self._main(stop), timeout=limit))

    async def _main(self, stop: Callable[[], bool]) -> None:
        limits = httpx.Limits(max_connections=4 * self.children, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=ANSWER_TIMEOUT_S, limits=limits) as client:
            tasks = [self._conversation(client, c, LS, stop) for c in range(self.children)]
            tasks += [self._conversation(client, c, SL, stop) for c in range(self.children)]
            tasks.append(self._watch_roots(stop))
            await asyncio.gather(*tasks)

    async def _watch_roots(self, stop: Callable[[], bool]) -> None:
        deadline = self.t0 + self.seconds + GIVE_UP_S
        while len(self.roots.thread) < self.children and time.time() < deadline and not stop():
            self.roots.update()
            await asyncio.sleep(0.1)

    async def _conversation(
        self, client: httpx.AsyncClient, child: int, direction: str, stop: Callable[[], bool]
    ) -> None:
        # Children's first messages are spread over one period; a counsellor's reply falls half
        # a period after the child's message.
        offset = (child / self.children + (0.5 if direction == SL else 0.0)) * self.period
        for seq in range(self.per_child):
            mark = marker(self.run, direction, message_index(seq, child, self.children))
            delay = self.t0 + offset + seq * self.period - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if stop():
                return
            if direction == SL and not await self._thread_known(child, stop):
                self.never_sent.append(mark)
                continue
            msg = Message(mark, direction, child, seq)
            self.messages[mark] = msg
            await self._send(client, msg)

    async def _thread_known(self, child: int, stop: Callable[[], bool]) -> bool:
        deadline = self.t0 + self.seconds + GIVE_UP_S
        while child not in self.roots.thread:
            if time.time() > deadline or stop():
                return False
            await asyncio.sleep(0.1)
        return True

    async def _send(self, client: httpx.AsyncClient, msg: Message) -> None:
        if msg.direction == LS:
            path, attempt_of = "/line/webhook", _line_webhook(child_id(msg.child), message_text(msg.mark))
        else:
            path, attempt_of = "/slack/events", self._slack_event(msg)
        msg.first_sent = time.time()
        while True:
            url = self.rig.web_urls[self._turn % len(self.rig.web_urls)]
            self._turn += 1
            body, headers = attempt_of(msg.attempts)
            msg.attempts += 1
            sent = time.time()
            try:
                response = await client.post(url + path, content=body, headers=headers)
                answer = str(response.status_code)
            except httpx.TimeoutException:
                answer = "timeout"
            except httpx.HTTPError:
                answer = "refused"
            msg.answers[answer] += 1
            if answer == "200":
                msg.accepted_sent, msg.accepted = sent, time.time()
                self.accepted += 1
                return
            if time.time() - msg.first_sent > GIVE_UP_S:
                return
            await asyncio.sleep(BACKOFF_S[min(msg.attempts - 1, len(BACKOFF_S) - 1)])

    def _slack_event(self, msg: Message) -> Callable[[int], tuple[bytes, dict[str, str]]]:
        """The counsellor's reply, stored in fake Slack once (as Slack would), and its event."""
        text = message_text(msg.mark)
        root = self.roots.thread[msg.child]
        ts = str(self.rig.slack.add_message(CHANNEL, text, user=COUNSELLOR, thread_ts=root)["ts"])
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": self.rig.slack.team_id,
                "api_app_id": self.rig.slack.app_id,
                "type": "event_callback",
                "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
                "event_time": int(time.time()),
                "event": counsellor_event(text, ts, root),
            }
        ).encode()

        def attempt(n: int) -> tuple[bytes, dict[str, str]]:
            headers = slack_headers(body)  # signed afresh: the timestamp is part of the signature
            if n > 0:
                headers |= {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": "http_error"}
            return body, headers

        return attempt


def _line_webhook(user: str, text: str) -> Callable[[int], tuple[bytes, dict[str, str]]]:
    """A LINE webhook with one text event; attempts after the first are LINE's redeliveries of
    the same event (the same webhookEventId, marked as a redelivery)."""
    event: dict[str, Any] = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01J" + uuid.uuid4().hex[:23].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
    }

    def attempt(n: int) -> tuple[bytes, dict[str, str]]:
        event["deliveryContext"] = {"isRedelivery": n > 0}
        body = json.dumps({"destination": "Ubot", "events": [event]}, ensure_ascii=False).encode()
        return body, line_headers(body)

    return attempt
