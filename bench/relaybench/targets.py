"""The issue's speed targets, measured side by side in one run, and their table.

Order of the run: warm-up (every child opens a case, a counsellor answers each), relay time both
ways interleaved, Redis round trips one message at a time (each direction), the bridge's webhook
against the bare endpoint in alternating blocks, and last the sustained open-loop run (the one
that may leave a backlog to drain).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .common import fmt_map, log
from .latency import open_cases, relay_both_ways
from .redis_phase import count_one_at_a_time
from .report import render, verdict
from .rig import Rig
from .throughput import sustained
from .webhook import compare_with_bare

MAX_ROUND_TRIPS = 6.0
MAX_WORKER_CPU_MS = 1.2
MIN_SUSTAINED_RATE = 500.0
SUSTAINED_SECONDS = 60.0
MAX_P99_RATIO = 3.0
MAX_RELAY_P50_MS = 10.0


@dataclass(frozen=True)
class TargetPlan:
    children: int = 50  # open cases every phase spreads its messages over
    relay_count: int = 200  # per direction
    relay_rate: float = 20.0  # per direction
    count_messages: int = 100  # per direction, one at a time
    count_idle_seconds: float = 3.0
    webhook_rate: float = 200.0
    block_seconds: float = 5.0
    block_pairs: int = 4
    sustain_rate: float = MIN_SUSTAINED_RATE
    sustain_seconds: float = SUSTAINED_SECONDS
    drain_limit: float = 240.0


TARGETS = TargetPlan()
TARGETS_QUICK = replace(
    TARGETS,
    relay_count=50,
    count_messages=30,
    count_idle_seconds=1.0,
    block_seconds=2.0,
    block_pairs=2,
    sustain_seconds=10.0,
)


def run_targets(rig: Rig, plan: TargetPlan, run: str, results: dict[str, Any]) -> None:
    """Fill results phase by phase (so a failure keeps what was measured before it)."""
    roots = open_cases(rig, run, plan.children)
    rig.check_alive()
    results["relay"] = relay_both_ways(
        rig, run, roots, count=plan.relay_count, rate=plan.relay_rate, children=plan.children
    )
    for direction in ("line_to_slack", "slack_to_line"):
        results[f"redis_{direction}"] = count_one_at_a_time(
            rig,
            run,
            direction,
            n=plan.count_messages,
            idle_seconds=plan.count_idle_seconds,
            roots=roots,
            children=plan.children,
        )
        rig.check_alive()
    results["webhook_vs_bare"] = compare_with_bare(
        rig,
        run,
        rate=plan.webhook_rate,
        block_seconds=plan.block_seconds,
        pairs=plan.block_pairs,
        children=plan.children,
    )
    results["sustained"] = sustained(
        rig,
        run,
        rate=plan.sustain_rate,
        seconds=plan.sustain_seconds,
        children=plan.children,
        drain_limit=plan.drain_limit,
    )
    rig.check_alive()


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def evaluate(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The table (target, wanted, PASS/MISS, measured, and figures to read them by) and its rows as JSON."""
    rows: list[tuple[str, str, str, str]] = []
    targets: list[dict[str, Any]] = []

    def add(key: str, target: str, measured: str, ok: bool | None) -> None:
        rows.append((key, target, verdict(ok), measured))
        targets.append({"figure": key, "target": target, "measured": measured, "result": verdict(ok)})

    def info(label: str, measured: str) -> None:
        rows.append(("  " + label, "", "", measured))

    for direction, label in (("line_to_slack", "child's message, open case"), ("slack_to_line", "counsellor's reply")):
        rd = results.get(f"redis_{direction}")
        if not rd:
            continue
        rt = rd["round_trips_per_message"]
        worker = rt["worker"] if rt else None
        add(
            f"worker Redis round trips / {label}",
            f"<= {MAX_ROUND_TRIPS:.0f}",
            "n/a (no ss)" if worker is None else f"{worker:.2f}",
            None if worker is None else worker <= MAX_ROUND_TRIPS,
        )
        cmds, script = rd["commands_per_message"], rd["script_commands_per_message"]
        info("worker Redis commands", f"{cmds['worker']:.2f} sent (+{script['worker']:.2f} run by scripts)")
        web = f"{rt['web']:.2f} round trips, " if rt else ""
        info("web Redis per request", f"{web}{cmds['web']:.2f} commands (+{script['web']:.2f} by scripts)")
        info("CPU ms per message, one at a time", fmt_map(rd["cpu_ms_per_message"]))

    su = results.get("sustained")
    if su:
        cpu = su["cpu_ms_per_message"]
        add(
            "worker CPU per relayed message",
            f"<= {MAX_WORKER_CPU_MS} ms",
            _ms(cpu.get("worker")),
            cpu.get("worker", float("inf")) <= MAX_WORKER_CPU_MS,
        )
        info(
            "web / redis / fakes+driver CPU per message",
            f"{_ms(cpu.get('web'))} / {_ms(cpu.get('redis'))} / {_ms(cpu.get('bench'))}",
        )
        window = f"{su['seconds']:.0f} s" + (
            "" if su["seconds"] >= SUSTAINED_SECONDS else f" (target: {SUSTAINED_SECONDS:.0f} s)"
        )
        add(
            "sustained end to end, 1 web + 1 worker",
            f">= {MIN_SUSTAINED_RATE:.0f}/s for {window}",
            f"{su['rate_reached_per_s']:.0f}/s reached, backlog {su['backlog_at_end']} at the end",
            su["kept_up"] and su["offered_rate_per_s"] >= MIN_SUSTAINED_RATE and su["seconds"] >= SUSTAINED_SECONDS,
        )
        lost = f"lost {su['lost']}" if su["drained"] else f"not drained ({su['undelivered_when_stopped']} on the way)"
        add(
            "  ... exactly once, in order per child",
            "0 lost, 0 doubled, order kept",
            f"{lost}, doubled {su['doubled']}, out of order {su['out_of_order']} ({su['lanes_checked']} children)",
            su["exactly_once_in_order"],
        )
        info("swapped while both in flight (not a fault)", str(su["reordered_while_overlapping"]))
        info("offered / sender achieved", f"{su['offered_rate_per_s']:.0f}/s / {su['sender_achieved_rate_per_s']}/s")
        info("everything relayed after", f"{su['all_relayed_after_s']} s ({su['end_to_end_per_s']}/s overall)")
        info(
            "webhook answer under load p50 / p99",
            f"{su['webhook_answer']['p50_ms']} / {su['webhook_answer']['p99_ms']} ms",
        )
        if su["redis_round_trips_per_message"]:
            rtl = su["redis_round_trips_per_message"]
            info("Redis round trips per message under load", f"worker {rtl['worker']}, web {rtl['web']}")
        info("CPU cores busy in the window", fmt_map(su["cpu_cores_in_window"]))

    wb = results.get("webhook_vs_bare")
    if wb:
        bridge, bare = wb["bridge"]["answer"], wb["bare"]["answer"]
        ratio = wb["p99_ratio"]
        add(
            f"LINE webhook p99 @{wb['rate_per_s']:.0f}/s vs bare endpoint",
            f"<= {MAX_P99_RATIO:.0f}x bare",
            f"{ratio}x ({bridge['p99_ms']:.2f} vs {bare['p99_ms']:.2f} ms)" if ratio is not None else "n/a",
            None if ratio is None else ratio <= MAX_P99_RATIO,
        )
        info(
            "bridge p50 / p99 / max",
            f"{bridge['p50_ms']} / {bridge['p99_ms']} / {bridge['max_ms']} ms, non-200 {wb['bridge']['non_200']}",
        )
        info(
            "bare p50 / p99 / max",
            f"{bare['p50_ms']} / {bare['p99_ms']} / {bare['max_ms']} ms, non-200 {wb['bare']['non_200']}",
        )
        info(
            "sender lag p99 bridge / bare",
            f"{wb['bridge']['sender_lag']['p99_ms']} / {wb['bare']['sender_lag']['p99_ms']} ms",
        )
        info("CPU cores, bridge blocks", fmt_map(wb["bridge"]["cpu_cores_mean"]))
        info("CPU cores, bare blocks", fmt_map(wb["bare"]["cpu_cores_mean"]))

    rl = results.get("relay")
    if rl:
        for key, label in (("line_to_slack", "LINE->Slack"), ("slack_to_line", "Slack->LINE")):
            r = rl[key]
            add(
                f"relay p50 {label}",
                f"< {MAX_RELAY_P50_MS:.0f} ms",
                f"{r['p50_ms']:.2f} ms (p99 {r['p99_ms']:.2f})",
                r["p50_ms"] < MAX_RELAY_P50_MS,
            )
        info("relayed / not arrived", f"{rl['line_to_slack']['n'] + rl['slack_to_line']['n']} / {rl['lost']}")
    return render(rows, ("target", "wanted", "", "measured")), targets


def log_verdicts(targets: list[dict[str, Any]]) -> None:
    passed = sum(1 for t in targets if t["result"] == "PASS")
    log(f"targets: {passed} of {len(targets)} met")
