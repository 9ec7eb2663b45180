"""Throughput end to end, with exactly-once and order checked on what fake Slack stored.

phase_throughput: the phase run's phase 4, closed loop (20 senders, as fast as answers come).
sustained: the targets' run, open loop at a fixed rate for a fixed time, then a bounded drain.
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
    summary_ms,
    wait_until,
)
from .loadgen import Block
from .redis_count import read, round_trips, server_calls
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


def sustained(rig: Rig, run: str, *, rate: float, seconds: float, children: int, drain_limit: float) -> dict[str, Any]:
    """rate x seconds signed webhooks, open loop, over children (one case each); the figures of
    the window [start, start + seconds], then a drain of at most drain_limit seconds (sized by the
    rate reached) so that lost, doubled and order can be judged on every message."""
    n = int(rate * seconds)
    log(f"sustained: {n} messages at {rate:.0f}/s open loop for {seconds:.0f}s over {children} children")
    prefix = marker(run, "su", 0)[:10]
    marks = [marker(run, "su", i) for i in range(n)]
    seen = Seen(rig.slack, SLACK_POST, slack_texts, prefix=prefix, from_now=True)
    block = Block(port=rig.web_port, rate=rate, n=n, run=run, tag="su", children=children)
    rig.loadgen.prepare(block)
    r0 = read(rig)
    t0 = rig.loadgen.go()
    t_end = t0 + seconds
    timeline: list[tuple[float, int]] = []
    while time.time() < t_end - 0.05:
        time.sleep(max(0.0, min(1.0, t_end - time.time())))
        timeline.append((round(time.time() - t0, 1), len(seen.update())))
    r_end = read(rig)
    delivered_in_window = seen.count_by(marks, t_end)
    stream_backlog = rig.backlog()
    result = rig.loadgen.result(block)
    accepted = [m for m, s in zip(marks, result["status"], strict=True) if s == 200]
    backlog_end = n - delivered_in_window
    reached = delivered_in_window / seconds
    limit = min(drain_limit, max(30.0, 1.5 * backlog_end / max(reached, 1.0) + 10))
    log(
        f"  in the window: {delivered_in_window} relayed ({reached:.0f}/s), backlog {backlog_end}; "
        f"draining (at most {limit:.0f}s)"
    )
    drain_start = time.time()
    while not seen.has_all(accepted) and time.time() - drain_start < limit:
        time.sleep(1.0)
        timeline.append((round(time.time() - t0, 1), len(seen.at)))
    drained = seen.has_all(accepted)
    if drained:
        try:
            wait_until(rig.idle, timeout=30, what="the bridge to go idle")
        except Exception as exc:
            log(str(exc))
    r1 = read(rig)
    time.sleep(0.5)  # give any stray duplicate time to show up
    at = seen.update()
    sent = [i / rate + lag for i, lag in enumerate(result["lag"])]  # seconds after the schedule's start
    answered = [
        t + a if s == 200 else float("inf") for t, a, s in zip(sent, result["answer"], result["status"], strict=True)
    ]
    check = stored_check(rig, prefix, marks, children, sent, answered)
    relayed = [m for m in marks if m in at]
    last = max((at[m] for m in relayed), default=float("nan"))
    rt = round_trips(r0, r1)
    out: dict[str, Any] = {
        "offered_rate_per_s": rate,
        "seconds": seconds,
        "messages": n,
        "children": children,
        "rate_reached_per_s": round(reached, 1),
        "backlog_at_end": backlog_end,
        "backlog_at_end_seconds_of_load": round(backlog_end / rate, 2),
        "stream_entries_at_end": stream_backlog,
        "sender_achieved_rate_per_s": round(n / result["sent_for"], 1) if result["sent_for"] > 0 else None,
        "sender_lag": summary_ms(result["lag"]),
        "webhook_answer": summary_ms([a for a, s in zip(result["answer"], result["status"], strict=True) if s == 200]),
        "webhook_non_200": n - len(accepted),
        "drained": drained,
        "drain_limit_s": round(limit, 1),
        "all_relayed_after_s": round(last - t0, 2) if relayed else None,
        "end_to_end_per_s": round(len(relayed) / (last - t0), 1) if relayed and last > t0 else None,
        **check,
        "undelivered_when_stopped": len(accepted) - len(relayed),
        "timeline_s_relayed": timeline,
        "cpu_ms_per_message": cpu_ms_per(r0.cpu, r1.cpu, len(relayed)),
        "cpu_cores_in_window": cores_used(r0.cpu, r_end.cpu, r_end.mono - r0.mono),
        "redis_round_trips_per_message": (
            {k: round(rt.get(k, 0) / max(1, len(relayed)), 2) for k in ("web", "worker")} if rt is not None else None
        ),
        "redis_commands_per_message_all": round(server_calls(r0, r1) / max(1, len(relayed)), 2),
    }
    out["kept_up"] = backlog_end <= rate  # at most one second of load still on its way
    out["exactly_once_in_order"] = (
        drained
        and check["lost"] == 0
        and check["doubled"] == 0
        and check["out_of_order"] == 0
        and out["webhook_non_200"] == 0
    )
    log(
        f"  relayed {len(relayed)} of {n}; lost {check['lost']} doubled {check['doubled']} "
        f"out of order {check['out_of_order']}; worker CPU {out['cpu_ms_per_message'].get('worker')} ms/message"
    )
    return out
