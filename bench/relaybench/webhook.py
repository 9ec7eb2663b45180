"""Webhook answer time under an open-loop load of signed LINE webhooks.

phase_webhook_load / phase_webhook_load_worker_paused: the phase run's phases 1 and 1b.
compare_with_bare: the bridge's webhook and the bare endpoint (bare_app) in alternating blocks
of the same load, for the target "p99 at most 3x the bare endpoint's".
"""

from __future__ import annotations

import signal
from typing import Any

from .common import SLACK_POST, Plan, log, marker, slack_texts, summary_ms, wait_until
from .loadgen import Block
from .rig import Rig
from .seen import Seen
from .system import cores_used


def _answers(result: dict[str, Any]) -> list[float]:
    return [a for a, s in zip(result["answer"], result["status"], strict=True) if s == 200]


def _webhook_load(rig: Rig, plan: Plan, run: str, *, seconds: float, tag: str, pause_worker: bool) -> dict[str, Any]:
    n = int(plan.load_rate * seconds)
    block = Block(port=rig.web_port, rate=plan.load_rate, n=n, run=run, tag=tag, children=plan.load_children)
    marks = [marker(run, tag, i) for i in range(n)]
    worker = rig.worker
    assert worker is not None
    load = rig.loadgen
    load.prepare(block)
    paused = False
    try:
        if pause_worker:
            worker.popen.send_signal(signal.SIGSTOP)
            paused = True
        cpu0 = rig.cpu()
        t_start = load.go()
        result = load.result(block)
        cpu1 = rig.cpu()
    finally:
        if paused:
            worker.popen.send_signal(signal.SIGCONT)
    non200 = sum(1 for s in result["status"] if s != 200)
    # Let the worker drain everything the load produced before anything else is measured.
    seen = Seen(rig.slack, SLACK_POST, slack_texts)
    drained = None
    if seen.wait_all(marks, timeout=120, what="the load's messages to reach Slack", interval=0.2):
        drained = max(seen.at[m] for m in marks) - t_start
    else:
        log("  timed out waiting for the load's messages to reach Slack")
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    cpu2 = rig.cpu()
    rig.check_alive()
    wall = result["wall"]
    from_schedule = [a + lag for a, lag in zip(result["answer"], result["lag"], strict=True)]
    return {
        "requests": n,
        "rate_per_s": plan.load_rate,
        "seconds": seconds,
        "worker_paused": pause_worker,
        "answer": summary_ms(_answers(result)),
        "answer_from_schedule": summary_ms(from_schedule),
        "sender_lag": summary_ms(result["lag"]),
        "non_200": non200,
        "unfinished": result["unfinished"],
        "achieved_rate_per_s": round(n / result["sent_for"], 1) if result["sent_for"] > 0 else None,
        "all_relayed_after_s": round(drained, 2) if drained is not None else None,
        "cpu_cores_during_load": cores_used(cpu0, cpu1, wall),
        "cpu_ms_per_message_incl_drain": {
            k: round((cpu2[k] - cpu0[k]) * 1000 / n, 2) for k in cpu0 if not k.startswith("_")
        },
    }


def phase_webhook_load(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    log(
        f"phase 1: {int(plan.load_rate * plan.load_seconds)} webhooks at {plan.load_rate:.0f}/s open loop "
        f"({plan.load_children} children)"
    )
    out = _webhook_load(rig, plan, run, seconds=plan.load_seconds, tag="load", pause_worker=False)
    log(
        f"  webhook answer p50={out['answer']['p50_ms']} p99={out['answer']['p99_ms']} ms, "
        f"non-200={out['non_200']}, CPU cores {out['cpu_cores_during_load']}"
    )
    return out


def phase_webhook_load_worker_paused(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    """Diagnostic: the same load with the worker SIGSTOPped, i.e. the web process not competing for CPU."""
    seconds = min(plan.load_seconds, plan.paused_load_seconds)
    log(f"phase 1b: {int(plan.load_rate * seconds)} webhooks at {plan.load_rate:.0f}/s with the worker paused")
    out = _webhook_load(rig, plan, run, seconds=seconds, tag="paused", pause_worker=True)
    log(f"  webhook answer p50={out['answer']['p50_ms']} p99={out['answer']['p99_ms']} ms, non-200={out['non_200']}")
    return out


def compare_with_bare(
    rig: Rig, run: str, *, rate: float, block_seconds: float, pairs: int, children: int
) -> dict[str, Any]:
    """Alternate blocks of the same open-loop load against the bridge's webhook (worker running,
    as in production) and the bare endpoint, in the order bridge, bare, bare, bridge, ... so that
    a drift of the machine's load over the phase hits both alike. After a bridge block the bench
    waits until the worker has relayed it all, so a bare block never competes with the bridge's
    backlog. Answers of all blocks of one side are pooled."""
    assert rig.bare is not None, "the rig was started without the bare endpoint"
    n = int(rate * block_seconds)
    log(
        f"webhook vs bare endpoint: {2 * pairs} alternating blocks of {block_seconds:.0f}s at {rate:.0f}/s "
        f"({n} webhooks each; bridge blocks over {children} children)"
    )
    seen = Seen(rig.slack, SLACK_POST, slack_texts)
    sides: dict[str, dict[str, Any]] = {
        side: {"answers": [], "lag": [], "non_200": 0, "blocks": [], "cores": []} for side in ("bridge", "bare")
    }
    order = [side for k in range(pairs) for side in (("bridge", "bare") if k % 2 == 0 else ("bare", "bridge"))]
    for index, side in enumerate(order):
        port = rig.web_port if side == "bridge" else rig.bare_port
        tag = "whb" if side == "bridge" else "whx"
        block = Block(port=port, rate=rate, n=n, run=run, tag=tag, children=children, first_index=index * n)
        rig.loadgen.prepare(block)
        cpu0 = rig.cpu()
        t0 = rig.loadgen.go()
        result = rig.loadgen.result(block)
        cpu1 = rig.cpu()
        answers = _answers(result)
        entry = sides[side]
        entry["answers"] += answers
        entry["lag"] += result["lag"]
        entry["non_200"] += sum(1 for s in result["status"] if s != 200)
        cores = cores_used(cpu0, cpu1, result["wall"])
        entry["cores"].append(cores)
        figures: dict[str, Any] = {"block": index, **summary_ms(answers), "cores": cores}
        if side == "bridge":
            marks = [marker(run, tag, i) for i in range(index * n, (index + 1) * n)]
            drained = seen.wait_all(marks, timeout=120, what="a bridge block's messages in Slack", interval=0.1)
            wait_until(rig.idle, timeout=60, what="the bridge to go idle")
            figures["relayed_after_s"] = round(max(seen.at[m] for m in marks) - t0, 2) if drained else None
        entry["blocks"].append(figures)
        log(f"  block {index + 1}/{len(order)} {side}: p50 {figures['p50_ms']} p99 {figures['p99_ms']} ms")
        rig.check_alive()
    out: dict[str, Any] = {"rate_per_s": rate, "block_seconds": block_seconds, "pairs": pairs, "order": order}
    for side, entry in sides.items():
        keys = sorted({k for cores in entry["cores"] for k in cores})
        mean_cores = {k: round(sum(c.get(k, 0.0) for c in entry["cores"]) / len(entry["cores"]), 2) for k in keys}
        out[side] = {
            "answer": summary_ms(entry["answers"]),
            "sender_lag": summary_ms(entry["lag"]),
            "non_200": entry["non_200"],
            "requests": n * len(entry["blocks"]),
            "cpu_cores_mean": mean_cores,
            "blocks": entry["blocks"],
        }
    bare_p99 = out["bare"]["answer"]["p99_ms"]
    out["p99_ratio"] = round(out["bridge"]["answer"]["p99_ms"] / bare_p99, 2) if bare_p99 > 0 else None
    out["p50_ratio"] = (
        round(out["bridge"]["answer"]["p50_ms"] / out["bare"]["answer"]["p50_ms"], 2)
        if out["bare"]["answer"]["p50_ms"] > 0
        else None
    )
    log(f"  bridge p99 {out['bridge']['answer']['p99_ms']} ms, bare p99 {bare_p99} ms, ratio {out['p99_ratio']}")
    return out
