"""Redis round trips, commands and CPU per relayed message, one message at a time.

count_one_at_a_time: an idle baseline, then n messages of one direction (a child's message on
an open case, or a counsellor's reply), each sent when the one before has reached the fake on
the other side. Everything the web and the worker did in that window, less what they do when
idle (measured just before, per second, times the window's length), divided by n.
phase_redis: the phase run's phase 5, the same for LINE->Slack plus where the time goes.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
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
    pct,
    slack_event_body,
    slack_headers,
    slack_texts,
    summary_ms,
    wait_until,
)
from .redis_count import Monitor, Reading, read, round_trips, server_calls
from .rig import Rig
from .seen import Seen

PROCESSES = ("web", "worker")
COUNTING = (
    "Round trips: data segments the Redis server received on each client connection (ss -ti), by "
    "process (client port -> pid via /proc); a pipeline, a MULTI/EXEC and a script call are one "
    "each. Commands: MONITOR lines by process; 'in scripts' are the commands Lua scripts ran. "
    "What the process does when idle (measured just before, per second) is subtracted."
)


def _send_one(rig: Rig, client: httpx.Client, direction: str, i: int, mark: str, roots: list[str]) -> None:
    if direction == "line_to_slack":
        body = line_body(child_id(i), message_text(mark))
        response = client.post(rig.web_url + "/line/webhook", content=body, headers=line_headers(body))
    else:
        text = message_text(mark)
        root_ts = roots[i % len(roots)]
        ts = str(rig.slack.add_message(CHANNEL, text, user=COUNSELLOR, thread_ts=root_ts)["ts"])
        body = slack_event_body(counsellor_event(text, ts, root_ts))
        response = client.post(rig.web_url + "/slack/events", content=body, headers=slack_headers(body))
    if response.status_code != 200:
        raise RuntimeError(f"the web process answered {response.status_code}")


def _arrived(seen: Seen, mark: str) -> Callable[[], bool]:
    return lambda: mark in seen.update()


def _per_message(
    idle: dict[str, float], active: dict[str, float], idle_s: float, active_s: float, n: int
) -> dict[str, float]:
    """(active - idle rate x active seconds) / n for each process."""
    out = {}
    for name in PROCESSES:
        rate = idle.get(name, 0.0) / idle_s if idle_s > 0 else 0.0
        out[name] = round(max(0.0, active.get(name, 0.0) - rate * active_s) / n, 3)
    return out


def _figures(monitor: Monitor, r0: Reading, r1: Reading, r2: Reading, n: int) -> dict[str, Any]:
    idle_s, active_s = r1.mono - r0.mono, r2.mono - r1.mono
    owners = {**r0.owners, **r1.owners, **r2.owners}
    idle_cmds, active_cmds = monitor.tally(owners, r0.wall, r1.wall), monitor.tally(owners, r1.wall, r2.wall)

    def total(tallies: dict[str, dict[str, Any]], part: str) -> dict[str, float]:
        return {name: float(sum(t[part].values())) for name, t in tallies.items()}

    out: dict[str, Any] = {"messages": n, "idle_seconds": round(idle_s, 2), "active_seconds": round(active_s, 2)}
    idle_rt, active_rt = round_trips(r0, r1), round_trips(r1, r2)
    if idle_rt is not None and active_rt is not None:
        out["round_trips_per_message"] = _per_message(
            {k: float(v) for k, v in idle_rt.items()}, {k: float(v) for k, v in active_rt.items()}, idle_s, active_s, n
        )
        out["round_trips_idle_per_s"] = {k: round(idle_rt.get(k, 0) / idle_s, 1) for k in PROCESSES}
        out["round_trips_raw"] = active_rt
    else:
        out["round_trips_per_message"] = None
    out["commands_per_message"] = _per_message(
        total(idle_cmds, "client"), total(active_cmds, "client"), idle_s, active_s, n
    )
    out["script_commands_per_message"] = _per_message(
        total(idle_cmds, "script"), total(active_cmds, "script"), idle_s, active_s, n
    )
    out["commands_by_name_per_message"] = {
        name: {c: round(k / n, 2) for c, k in active_cmds[name]["client"].most_common(12)} for name in PROCESSES
    }
    # CPU in milliseconds (read in clock ticks of 10 ms: over 100 messages, 0.1 ms a message).
    cpu_idle = {k: (r1.cpu[k] - r0.cpu[k]) * 1000 for k in r0.cpu if not k.startswith("_")}
    cpu_active = {k: (r2.cpu[k] - r1.cpu[k]) * 1000 for k in r0.cpu if not k.startswith("_")}
    out["cpu_ms_per_message"] = _per_message(cpu_idle, cpu_active, idle_s, active_s, n)
    # Cross-checks, every client together (the bench's own idle checks included).
    segments = sum(v for k, v in (active_rt or {}).items() if k != "closed")
    out["check"] = {
        "server_read_events": r2.reads - r1.reads,
        "sum_of_connection_segments": segments if active_rt is not None else None,
        "server_commands_commandstats": server_calls(r1, r2),
        "commands_seen_by_monitor": sum(
            sum(t["client"].values()) + sum(t["script"].values()) for t in active_cmds.values()
        ),
        "monitor_unparsed_lines": monitor.raw_unparsed,
    }
    return out


def count_one_at_a_time(
    rig: Rig, run: str, direction: str, *, n: int, idle_seconds: float, roots: list[str], children: int
) -> dict[str, Any]:
    """direction: "line_to_slack" (a child's message on an open case) or "slack_to_line" (a
    counsellor's reply in a case thread)."""
    log(f"Redis count, {direction}: {idle_seconds:.0f}s idle, then {n} messages one at a time")
    tag = "rl" if direction == "line_to_slack" else "rs"
    seen = (
        Seen(rig.slack, SLACK_POST, slack_texts, from_now=True)
        if direction == "line_to_slack"
        else Seen(rig.line, LINE_PUSH, line_texts, from_now=True)
    )
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    time.sleep(0.3)
    relay: list[float] = []
    monitor = Monitor(rig.redis_port, max_seconds=idle_seconds + n * 2 + 60)
    try:
        r0 = read(rig)
        time.sleep(idle_seconds)
        r1 = read(rig)
        with httpx.Client(timeout=10.0) as client:
            client.get(rig.web_url + "/healthz")
            for i in range(n):
                mark = marker(run, tag, i)
                t_sent = time.time()
                _send_one(rig, client, direction, i % children, mark, roots)
                wait_until(_arrived(seen, mark), timeout=10, what=f"message {i} to arrive", interval=0.002)
                relay.append(seen.at[mark] - t_sent)
                time.sleep(0.02)  # let the deliverer settle before the next one
        wait_until(rig.idle, timeout=30, what="the bridge to go idle")
        time.sleep(0.3)
        r2 = read(rig)
    finally:
        monitor.stop()
    out = _figures(monitor, r0, r1, r2, n)
    out["relay_under_monitor"] = summary_ms(relay)
    rt = out["round_trips_per_message"] or {}
    log(
        f"  round trips per message: worker {rt.get('worker')}, web {rt.get('web')}; commands: "
        f"worker {out['commands_per_message']['worker']} (+{out['script_commands_per_message']['worker']} in scripts)"
    )
    return out


def _breakdown(monitor: Monitor, sent: list[tuple[str, float, float]]) -> tuple[dict[str, dict[str, float]], int]:
    """Where the LINE->Slack time goes, from MONITOR timestamps (Redis's clock is this machine's):
    sent -> the web's XADD -> the router's RPUSH of the lane item -> a deliverer's HINCRBY attempts
    -> chat.postMessage reached the fake. Written against today's scripts: a stage whose command
    is no longer there has no samples."""
    lua = sorted((ts, cmd) for ts, _, cmd, in_script in monitor.lines if in_script)
    lua_ts = [ts for ts, _ in lua]
    stages: dict[str, list[float]] = {
        k: [] for k in ("web_recorded", "router_enqueued", "deliverer_claimed", "slack_call_started")
    }

    def next_lua(cmd: str, after: float, before: float) -> float | None:
        j = bisect.bisect_left(lua_ts, after)
        while j < len(lua) and lua[j][0] <= before:
            if lua[j][1] == cmd:
                return lua[j][0]
            j += 1
        return None

    for _, t_sent, t_post in sent:
        t_xadd = next_lua("XADD", t_sent - 0.001, t_post)
        t_rpush = next_lua("RPUSH", t_xadd, t_post) if t_xadd else None
        t_claim = next_lua("HINCRBY", t_rpush, t_post) if t_rpush else None
        if t_xadd and t_rpush and t_claim:
            stages["web_recorded"].append(t_xadd - t_sent)
            stages["router_enqueued"].append(t_rpush - t_xadd)
            stages["deliverer_claimed"].append(t_claim - t_rpush)
            stages["slack_call_started"].append(t_post - t_claim)
    figures = {
        k: {"p50_ms": round(pct([x * 1000 for x in v], 50), 2), "p99_ms": round(pct([x * 1000 for x in v], 99), 2)}
        for k, v in stages.items()
    }
    return figures, len(stages["web_recorded"])


def phase_redis(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    n = plan.redis_messages
    log(
        f"phase 5: Redis (ss + MONITOR), {plan.redis_idle_seconds:.1f}s idle, "
        f"then {n} LINE->Slack messages one at a time"
    )
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    time.sleep(0.3)
    sent: list[tuple[str, float, float]] = []  # marker, sent at, posted at
    answers: list[float] = []
    seen = Seen(rig.slack, SLACK_POST, slack_texts, from_now=True)
    monitor = Monitor(rig.redis_port, max_seconds=plan.redis_idle_seconds + n * 2 + 60)
    try:
        r0 = read(rig)
        time.sleep(plan.redis_idle_seconds)
        r1 = read(rig)
        with httpx.Client(timeout=10.0) as client:
            client.get(rig.web_url + "/healthz")
            for i in range(n):
                mark = marker(run, "rd", i)
                body = line_body(child_id(i % plan.relay_children), message_text(mark))
                t_sent = time.time()
                start = time.perf_counter()
                response = client.post(rig.web_url + "/line/webhook", content=body, headers=line_headers(body))
                answers.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"webhook answered {response.status_code}")
                wait_until(_arrived(seen, mark), timeout=10, what=f"message {i} to reach Slack", interval=0.002)
                sent.append((mark, t_sent, seen.at[mark]))
                time.sleep(0.02)  # let the deliverer settle (complete, wake-ups) before the next one
        time.sleep(0.3)
        r2 = read(rig)
    finally:
        monitor.stop()
    out = _figures(monitor, r0, r1, r2, n)
    breakdown, samples = _breakdown(monitor, sent)
    out.update(
        counting=COUNTING,
        relay_under_monitor=summary_ms([p - s for _, s, p in sent]),
        webhook_answer_under_monitor=summary_ms(answers),
        line_to_slack_breakdown=breakdown,
        breakdown_samples=samples,
    )
    rt = out["round_trips_per_message"] or {}
    log(f"  round trips: web {rt.get('web')}/request, worker {rt.get('worker')}/message")
    return out
