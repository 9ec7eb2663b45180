"""Relay time: from just before a webhook or Slack event is sent to the moment the fake on the
other side records the call that carries the message (its ``at``).

phase_line_to_slack / phase_slack_to_line: the phase run's phases 2 and 3.
open_cases: every child writes once and a counsellor answers each case (the targets' warm-up).
relay_both_ways: both directions interleaved in one paced phase (the targets' relay p50).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .common import (
    CHANNEL,
    COUNSELLOR,
    LINE_PUSH,
    SLACK_POST,
    Plan,
    child_id,
    counsellor_event,
    line_body,
    line_headers,
    line_texts,
    log,
    marker,
    message_text,
    slack_event_body,
    slack_headers,
    slack_texts,
    summary_ms,
    wait_until,
)
from .rig import Rig
from .seen import Seen


class Sender:
    """Sends synthetic messages to the web process: a child's LINE message, a counsellor's reply
    (stored in fake Slack first, as Slack would, then sent as an event). Records when each was
    sent (wall clock), its answer time and status."""

    def __init__(self, rig: Rig, client: httpx.AsyncClient) -> None:
        self.rig = rig
        self.client = client
        self.sent_at: dict[str, float] = {}
        self.answers: dict[str, list[float]] = {"line": [], "slack": []}
        self.statuses: list[int] = []

    async def _post(self, kind: str, path: str, mark: str, body: bytes, headers: dict[str, str]) -> None:
        self.sent_at[mark] = time.time()
        start = time.perf_counter()
        response = await self.client.post(self.rig.web_url + path, content=body, headers=headers)
        self.answers[kind].append(time.perf_counter() - start)
        self.statuses.append(response.status_code)

    async def child(self, child: int, mark: str) -> None:
        body = line_body(child_id(child), message_text(mark))
        await self._post("line", "/line/webhook", mark, body, line_headers(body))

    async def counsellor(self, root_ts: str, mark: str) -> None:
        text = message_text(mark)
        ts = str(self.rig.slack.add_message(CHANNEL, text, user=COUNSELLOR, thread_ts=root_ts)["ts"])
        body = slack_event_body(counsellor_event(text, ts, root_ts))
        await self._post("slack", "/slack/events", mark, body, slack_headers(body))

    def non_200(self) -> int:
        return sum(1 for s in self.statuses if s != 200)


async def paced(count: int, rate: float, send: Callable[[int], Awaitable[Any]]) -> None:
    t0 = time.perf_counter()
    for i in range(count):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


def drive(rig: Rig, count: int, rate: float, send: Callable[[Sender, int], Awaitable[Any]]) -> Sender:
    """Run send(sender, i) for i in range(count), paced at rate per second, one at a time."""
    holder: list[Sender] = []

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await client.get(rig.web_url + "/healthz")
            sender = Sender(rig, client)
            holder.append(sender)
            await paced(count, rate, lambda i: send(sender, i))

    asyncio.run(asyncio.wait_for(main(), timeout=count / rate + 60))
    return holder[0]


def _relay(seen: Seen, sent_at: dict[str, float], what: str) -> list[float]:
    if not seen.wait_all(sent_at, timeout=60, what=what, interval=0.05):
        missing = sum(1 for m in sent_at if m not in seen.at)
        log(f"  {missing} of {len(sent_at)} {what} did not arrive within 60 s")
    return [seen.at[m] - t for m, t in sent_at.items() if m in seen.at]


def case_roots(rig: Rig, limit: int) -> list[str]:
    roots = [str(m["ts"]) for m in rig.slack.roots(CHANNEL)][:limit]
    if not roots:
        raise RuntimeError("no case threads in fake Slack")
    return roots


def phase_line_to_slack(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    n = plan.relay_count
    log(f"phase 2: LINE->Slack relay, {n} messages at {plan.relay_rate:.0f}/s over {plan.relay_children} children")
    seen = Seen(rig.slack, SLACK_POST, slack_texts)
    sender = drive(rig, n, plan.relay_rate, lambda s, i: s.child(i % plan.relay_children, marker(run, "ls", i)))
    relay = _relay(seen, sender.sent_at, "LINE->Slack messages")
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    out: dict[str, Any] = {
        "relay": summary_ms(relay),
        "webhook_answer": summary_ms(sender.answers["line"]),
        "non_200": sender.non_200(),
    }
    log(f"  LINE->Slack p50={out['relay']['p50_ms']} p99={out['relay']['p99_ms']} ms")
    return out


def phase_slack_to_line(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    roots = case_roots(rig, plan.relay_children)
    n = plan.relay_count
    log(f"phase 3: Slack->LINE relay, {n} counsellor replies at {plan.relay_rate:.0f}/s over {len(roots)} threads")
    seen = Seen(rig.line, LINE_PUSH, line_texts)
    sender = drive(rig, n, plan.relay_rate, lambda s, i: s.counsellor(roots[i % len(roots)], marker(run, "sl", i)))
    relay = _relay(seen, sender.sent_at, "Slack->LINE pushes")
    wait_until(rig.idle, timeout=60, what="the bridge to go idle (reactions)")
    out: dict[str, Any] = {
        "relay": summary_ms(relay),
        "slack_event_answer": summary_ms(sender.answers["slack"]),
        "non_200": sender.non_200(),
    }
    log(f"  Slack->LINE p50={out['relay']['p50_ms']} p99={out['relay']['p99_ms']} ms")
    return out


def open_cases(rig: Rig, run: str, children: int) -> list[str]:
    """Each of the children writes once (opening their case) and a counsellor answers every case,
    so later phases see open, answered cases and no timer of a new case is pending. Returns the
    case threads' root ts."""
    log(f"warm-up: {children} children open a case, a counsellor answers each")
    slack_seen = Seen(rig.slack, SLACK_POST, slack_texts)
    sender = drive(rig, children, 50.0, lambda s, i: s.child(i, marker(run, "wu", i)))
    _relay(slack_seen, sender.sent_at, "warm-up messages")
    wait_until(lambda: len(rig.slack.roots(CHANNEL)) >= children, timeout=60, what="a thread per case")
    roots = case_roots(rig, children)
    line_seen = Seen(rig.line, LINE_PUSH, line_texts)
    replies = drive(rig, len(roots), 50.0, lambda s, i: s.counsellor(roots[i], marker(run, "wr", i)))
    _relay(line_seen, replies.sent_at, "warm-up replies")
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    if sender.non_200() or replies.non_200():
        raise RuntimeError("the web process refused warm-up messages")
    return roots


def relay_both_ways(rig: Rig, run: str, roots: list[str], *, count: int, rate: float, children: int) -> dict[str, Any]:
    """count child messages and count counsellor replies, alternating, each direction at rate per
    second (so 2 x rate messages per second in all), over open, answered cases."""
    log(f"relay both ways: {count} LINE->Slack and {count} Slack->LINE, alternating, {rate:.0f}/s each")
    slack_seen = Seen(rig.slack, SLACK_POST, slack_texts)
    line_seen = Seen(rig.line, LINE_PUSH, line_texts)

    async def send(sender: Sender, i: int) -> None:
        if i % 2 == 0:
            await sender.child((i // 2) % children, marker(run, "ls", i // 2))
        else:
            await sender.counsellor(roots[(i // 2) % len(roots)], marker(run, "sl", i // 2))

    sender = drive(rig, 2 * count, 2 * rate, send)
    ls_sent = {m: t for m, t in sender.sent_at.items() if m[8:10] == "ls"}
    sl_sent = {m: t for m, t in sender.sent_at.items() if m[8:10] == "sl"}
    ls = _relay(slack_seen, ls_sent, "LINE->Slack messages")
    sl = _relay(line_seen, sl_sent, "Slack->LINE pushes")
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    out: dict[str, Any] = {
        "rate_per_s_each_way": rate,
        "line_to_slack": summary_ms(ls),
        "slack_to_line": summary_ms(sl),
        "webhook_answer": summary_ms(sender.answers["line"]),
        "slack_event_answer": summary_ms(sender.answers["slack"]),
        "lost": (len(ls_sent) - len(ls)) + (len(sl_sent) - len(sl)),
        "non_200": sender.non_200(),
    }
    log(f"  LINE->Slack p50 {out['line_to_slack']['p50_ms']} ms, Slack->LINE p50 {out['slack_to_line']['p50_ms']} ms")
    return out
