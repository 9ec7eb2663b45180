"""Throughput end to end, with exactly-once and order checked on what fake Slack stored.

phase_throughput: the phase run's phase 4, closed loop (20 senders, as fast as answers come).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import httpx

from .common import (
    CHANNEL,
    MARKER_RE,
    SLACK_POST,
    Plan,
    child_id,
    line_body,
    line_headers,
    log,
    marker,
    marker_index,
    message_text,
    slack_texts,
    wait_until,
)
from .rig import Rig
from .seen import Seen
from .system import cores_used, cpu_ms_per


def stored_check(
    rig: Rig, prefix: str, marks: list[str], children: int, sent: list[float], answered: list[float]
) -> dict[str, Any]:
    """Lost, doubled and out-of-order messages among marks, as fake Slack stored them (in the
    order it stored them). Marker i belongs to child i % children. sent[i] and answered[i] are
    when its webhook was sent and answered (one clock). A child's message X stored after its
    message Y is out of order when X's webhook was answered before Y's was sent: the bridge had
    X before Y existed. Two webhooks of one child in flight at once may be recorded either way
    round; those inversions are counted apart, as "overlapping"."""
    stored: collections.Counter[str] = collections.Counter()
    last: dict[int, int] = {}
    latest_sent: dict[int, float] = {}
    out_of_order = overlapping = 0
    for msg in rig.slack.messages(CHANNEL):
        for m in MARKER_RE.findall(msg["text"]):
            if not m.startswith(prefix):
                continue
            stored[m] += 1
            i = marker_index(m)
            if stored[m] > 1 or not 0 <= i < len(sent):
                continue
            lane = i % children
            if answered[i] < latest_sent.get(lane, float("-inf")):
                out_of_order += 1
            elif i < last.get(lane, -1):
                overlapping += 1
            last[lane] = max(i, last.get(lane, -1))
            latest_sent[lane] = max(sent[i], latest_sent.get(lane, float("-inf")))
    lost = sum(1 for m in marks if stored[m] == 0)
    doubled = sum(1 for m in marks if stored[m] > 1)
    return {
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
        "reordered_while_overlapping": overlapping,
        "lanes_checked": len(last),
    }


def phase_throughput(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    n = plan.throughput_n
    log(
        f"phase 4: throughput, {n} messages, {plan.throughput_concurrency} concurrent senders, "
        f"{plan.throughput_children} children"
    )
    marks = [marker(run, "tp", i) for i in range(n)]
    bodies = [line_body(child_id(i % plan.throughput_children), message_text(m)) for i, m in enumerate(marks)]
    headers = [line_headers(b) for b in bodies]
    statuses = [0] * n
    sent = [float("nan")] * n
    answered = [float("nan")] * n
    times: dict[str, float] = {}

    async def main() -> None:
        next_index = 0
        limits = httpx.Limits(max_connections=plan.throughput_concurrency * 2)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            await asyncio.gather(*(client.get(rig.web_url + "/healthz") for _ in range(plan.throughput_concurrency)))

            async def sender() -> None:
                nonlocal next_index
                while next_index < n:
                    i = next_index
                    next_index += 1
                    sent[i] = time.perf_counter()
                    try:
                        r = await client.post(rig.web_url + "/line/webhook", content=bodies[i], headers=headers[i])
                        statuses[i] = r.status_code
                    except httpx.HTTPError:
                        statuses[i] = -1
                    answered[i] = time.perf_counter()

            times["start"] = time.time()
            await asyncio.gather(*(sender() for _ in range(plan.throughput_concurrency)))
            times["sent"] = time.time()

    seen = Seen(rig.slack, SLACK_POST, slack_texts, prefix=marker(run, "tp", 0)[:10], from_now=True)
    cpu0, cpu0_at = rig.cpu(), time.monotonic()
    asyncio.run(asyncio.wait_for(main(), timeout=n / 20 + 60))
    accepted = [m for m, s in zip(marks, statuses, strict=True) if s == 200]
    timed_out = not seen.wait_all(accepted, timeout=max(60.0, n / 10), what="throughput messages", interval=0.1)
    if timed_out:
        log("  timed out waiting for the throughput messages in Slack")
    try:
        wait_until(rig.idle, timeout=30, what="the bridge to go idle")
    except Exception as exc:
        log(str(exc))
    cpu1, cpu1_at = rig.cpu(), time.monotonic()
    time.sleep(0.5)  # give any stray duplicate time to show up
    at = seen.update()
    check = stored_check(rig, marker(run, "tp", 0)[:10], marks, plan.throughput_children, sent, answered)
    last = max((at[m] for m in marks if m in at), default=float("nan"))
    elapsed = last - times["start"]
    send_elapsed = times["sent"] - times["start"]
    out = {
        "messages": n,
        "webhook_non_200": sum(1 for s in statuses if s != 200),
        "webhook_accept_rate_per_s": round(n / send_elapsed, 1),
        "end_to_end_seconds": round(elapsed, 3),
        "end_to_end_per_s": round(len(accepted) / elapsed, 1) if elapsed > 0 else None,
        **check,
        "timed_out": timed_out,
        "exactly_once": check["lost"] == 0 and check["doubled"] == 0 and len(accepted) == n,
        "cpu_ms_per_message": cpu_ms_per(cpu0, cpu1, n),
        "cpu_cores": cores_used(cpu0, cpu1, cpu1_at - cpu0_at),
    }
    log(
        f"  {out['end_to_end_per_s']} msg/s end to end, webhook accepted {out['webhook_accept_rate_per_s']}/s, "
        f"lost={check['lost']} doubled={check['doubled']} out of order={check['out_of_order']}"
    )
    return out
