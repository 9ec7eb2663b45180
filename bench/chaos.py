#!/usr/bin/env python
"""Chaos run of the LINE <-> Slack relay: conversations both ways while the APIs fail, workers are
killed and Redis restarts; then lost, doubled, out of order and delivery times.

Starts a private redis-server (append-only file, fsync at every write), the fake LINE and Slack
APIs (in this process), two web and two worker processes from the Procfile, with the bridge's
default leases and timeouts. Then, for --seconds: children write on LINE and a counsellor answers
in each case thread (half the messages each way), webhooks go to both web processes in turn and
are retried as LINE and Slack would; 10% of API calls answer 5xx, bursts of 429, a worker is
SIGKILLed every 10 s and started again, and redis-server is killed and restarted once.

Run:  .venv/bin/python bench/chaos.py [--quick] [--partitions N] [--workers N] [--json PATH] [--keep-logs] [--seed N]
Everything it starts is stopped in a finally block (also on Ctrl-C / SIGTERM); only 127.0.0.1 is
used. See bench/README.md, "Chaos run", for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from relaybench.chaos_check import after_kills, check, slow_by_fault, table
from relaybench.chaos_driver import LS, SL, Driver
from relaybench.chaos_faults import FaultPlan, Faults
from relaybench.common import LINE_PUSH, MARKER_RE, SLACK_POST, Stop, line_texts, log, slack_texts, wait_until
from relaybench.rig import Rig
from relaybench.seen import Seen
from relaybench.system import machine_info, system_busy_seconds

# The bridge's own defaults, not the tests' short ones: what a killed worker leaves behind is
# taken over by heartbeat, and the figures should show that, not a 3 s lease running out.
PRODUCTION_TIMEOUTS: dict[str, str | None] = {
    "BRIDGE_LEASE_SECONDS": None,
    "BRIDGE_HTTP_TIMEOUT_SECONDS": None,
    "BRIDGE_RETRY_MAX_BACKOFF_SECONDS": None,
}


@dataclass(frozen=True)
class ChaosPlan:
    messages: int = 10_000  # in all, half each way
    children: int = 200
    seconds: float = 200.0  # the window in which messages are sent and faults happen
    drain_limit: float = 90.0  # longest wait afterwards for what was accepted to arrive
    webs: int = 2
    workers: int = 2
    partitions: int = 1  # BRIDGE_ROUTER_PARTITIONS: 1, one router at a time; more, the workers share them


FULL = ChaosPlan()
QUICK = ChaosPlan(messages=2_000, children=40, seconds=40.0, drain_limit=45.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 messages, 40 children, 40 s (~1.5 min)")
    parser.add_argument("--messages", type=int, help="messages in all, half each way (default 10,000)")
    parser.add_argument("--children", type=int, help="children, one case each (default 200)")
    parser.add_argument("--seconds", type=float, help="how long messages are sent and faults happen (default 200)")
    parser.add_argument(
        "--partitions", type=int, help="BRIDGE_ROUTER_PARTITIONS of every process (default 1: one router at a time)"
    )
    parser.add_argument(
        "--workers", type=int, help="worker processes (default 2; with 1, each kill leaves none until it is restarted)"
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of every fault (default 11)")
    parser.add_argument("--error-rate", type=float, default=0.10, help="share of API calls answered 5xx")
    parser.add_argument(
        "--after-handling", type=float, default=0.25, help="share of those 5xx that come after the call took effect"
    )
    parser.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    parser.add_argument("--keep-logs", action="store_true", help="keep the web/worker/redis logs")
    args = parser.parse_args(argv)
    plan = plan_of(args)
    if plan.children < 1 or plan.messages < 2 * plan.children or plan.seconds <= 0:
        parser.error("--children must be >= 1, --messages >= 2 x children, --seconds > 0")
    if not 1 <= plan.partitions <= 64:
        parser.error("--partitions must be between 1 and 64")
    if not 1 <= plan.workers <= 4:
        parser.error("--workers must be between 1 and 4")
    if plan.messages // 2 // plan.children > 1_000_000 // plan.children - 1:
        parser.error("too many messages per child for the markers")
    if not 0 <= args.error_rate <= 1 or not 0 <= args.after_handling <= 1:
        parser.error("--error-rate and --after-handling are shares between 0 and 1")
    return args


def plan_of(args: argparse.Namespace) -> ChaosPlan:
    plan = QUICK if args.quick else FULL
    for name in ("messages", "children", "seconds", "partitions", "workers"):
        if getattr(args, name) is not None:
            plan = replace(plan, **{name: getattr(args, name)})
    return plan


def drain(driver: Driver, seen: dict[str, Seen], limit: float) -> float:
    """Wait (at most limit) until every accepted message was received; returns how long it took."""
    began = time.time()
    wanted = {d: [m.mark for m in driver.messages.values() if m.direction == d and m.was_accepted] for d in seen}
    while True:
        if all(seen[d].has_all(wanted[d]) for d in seen) or time.time() - began > limit:
            break
        time.sleep(0.5)
    return time.time() - began


def run(rig: Rig, plan: ChaosPlan, faults_plan: FaultPlan, results: dict[str, Any]) -> None:
    env = {**PRODUCTION_TIMEOUTS, "BRIDGE_ROUTER_PARTITIONS": str(plan.partitions)}
    rig.start(webs=plan.webs, workers=plan.workers, aof=True, env=env)
    run_id = uuid.uuid4().hex[:6]
    per_child = plan.messages // 2 // plan.children
    driver = Driver(rig, run_id, children=plan.children, per_child=per_child, seconds=plan.seconds)
    seen = {
        LS: Seen(rig.slack, SLACK_POST, slack_texts, prefix=driver.prefix(LS), took_effect=True),
        SL: Seen(rig.line, LINE_PUSH, line_texts, prefix=driver.prefix(SL), took_effect=True),
    }
    t0 = time.time() + 0.5
    faults = Faults(rig, faults_plan, seconds=plan.seconds, t0=t0)
    results["schedule"] = [{"at_s": at, "what": what} for at, what in faults.schedule()]
    log(
        f"chaos: {2 * per_child * plan.children} messages over {plan.children} children in {plan.seconds:.0f} s, "
        f"{len(rig.webs)} webs, {len(rig.workers)} workers, {plan.partitions} partition(s); "
        f"{faults_plan.error_rate:.0%} of API calls 5xx, "
        f"{sum(1 for _, w in faults.schedule() if w == 'kill')} kills"
    )
    stopping = threading.Event()
    faults.errors_on()
    faults.start()
    progress = threading.Thread(target=_progress, args=(driver, seen, stopping), daemon=True)
    progress.start()
    try:
        driver.run_all(t0, stopping.is_set)
    except TimeoutError:
        log("  the driver ran out of time; judging what was sent")
    finally:
        stopping.set()
        faults.stop()
        progress.join(20)
    sent_for = time.time() - t0
    log(f"sent for {sent_for:.0f} s; draining (at most {plan.drain_limit:.0f} s)")
    drained_in = drain(driver, seen, plan.drain_limit)
    faults.errors_off()
    try:
        wait_until(rig.idle, timeout=30, what="the bridge to go idle")
    except Stop as exc:
        log(str(exc))
    time.sleep(1.0)  # give any stray duplicate time to show up
    at = {d: s.update() for d, s in seen.items()}
    results["check"] = check(rig, driver, at)
    results["t0"] = t0  # wall clock: every "at_s" is seconds after it
    results["sent_for_s"] = round(sent_for, 1)
    results["drained_in_s"] = round(drained_in, 1)
    results["faults"] = faults.events
    results["faults_error"] = faults.error
    results["api_calls"] = _api_calls(rig)
    results["slow_by_fault"] = slow_by_fault(results["check"], faults.events)
    refused = _refused(rig, driver)
    results["refused"] = sorted(list(message) for message in refused)  # [direction, child, seq]
    results["after_kills"] = after_kills(results["check"], faults.events, refused)
    for direction, fake, path in (("line_to_slack", rig.slack, SLACK_POST), ("slack_to_line", rig.line, LINE_PUSH)):
        for row in results["check"][direction]["slowest"]:
            row["faults_before"] = faults.near(row["accepted_at_s"] + row["seconds"])[:4]
            row["calls"] = _calls_carrying(fake.requests, path, row["mark"], t0)


def _refused(rig: Rig, driver: Driver) -> frozenset[tuple[str, int, int]]:
    """(direction, child, seq) of every message that an API call carrying it was refused for:
    answered other than 200 (an injected 5xx or 429), or failed after taking effect."""
    out = set()
    for direction, fake, path, texts_of in (
        ("line_to_slack", rig.slack, SLACK_POST, slack_texts),
        ("slack_to_line", rig.line, LINE_PUSH, line_texts),
    ):
        for r in list(fake.requests):
            if r.path != path or (r.status == 200 and r.handled_status == 200):
                continue
            for text in texts_of(r):
                for mark in MARKER_RE.findall(text):
                    if mark in driver.messages:
                        out.add((direction, driver.messages[mark].child, driver.messages[mark].seq))
    return frozenset(out)


def _calls_carrying(requests: list[Any], path: str, mark: str, t0: float) -> list[list[Any]]:
    """[seconds after t0, answer, what normal handling answered, place among the fake's requests]
    of every call to path that carried mark: how a slow delivery went."""
    return [
        [round(r.at - t0, 2), r.status, r.handled_status, index]
        for index, r in enumerate(requests)
        if r.path == path and mark in json.dumps(r.json if isinstance(r.json, dict) else {}, ensure_ascii=False)
    ]


def _progress(driver: Driver, seen: dict[str, Seen], stopping: threading.Event) -> None:
    while not stopping.wait(15.0):
        received = sum(len(s.update()) for s in seen.values())  # only this thread reads them meanwhile
        log(f"  t={time.time() - driver.t0:.0f}s accepted {driver.accepted}, received {received}")


def _api_calls(rig: Rig) -> dict[str, Any]:
    """Calls each fake answered, by status (200, the injected 5xx and 429, the bridge's 409s)."""
    out: dict[str, Any] = {}
    for name, fake in (("slack", rig.slack), ("line", rig.line)):
        statuses: dict[str, int] = {}
        landed = 0
        for r in fake.requests:
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            landed += r.status != 200 and r.handled_status == 200
        out[name] = {"by_status": dict(sorted(statuses.items())), "failed_after_taking_effect": landed}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_of(args)
    faults_plan = FaultPlan(seed=args.seed, error_rate=args.error_rate, after_handling=args.after_handling)

    def on_sigterm(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="bridge-chaos-"))
    rig = Rig(tmp)
    results: dict[str, Any] = {}
    info = machine_info()
    began = time.monotonic()
    cpu0 = (system_busy_seconds(), _own_cpu(), _own_cpu(children=False))
    failed: str | None = None
    try:
        log(f"starting redis (AOF), fakes, {plan.webs} webs, {plan.workers} workers (logs in {tmp})")
        run(rig, plan, faults_plan, results)
        results["logs"] = rig.log_problems()
    except KeyboardInterrupt:
        failed = "interrupted"
        log("interrupted; stopping everything")
    except (Stop, RuntimeError) as exc:
        failed = str(exc)
        log(f"chaos run failed: {exc}")
    finally:
        rig.stop()
        leftover = [p.name for p in rig.procs if p.alive()]
        if leftover:
            log(f"WARNING: still running: {leftover}")
    elapsed = time.monotonic() - began
    busy, ours = system_busy_seconds() - cpu0[0], _own_cpu() - cpu0[1]
    results["cpu_cores"] = {
        "this_run": round(ours / elapsed, 2),
        "bench_process": round((_own_cpu(children=False) - cpu0[2]) / elapsed, 2),  # the fakes and the driver
        "other": round(max(0.0, busy - ours) / elapsed, 2),
    }
    targets: list[dict[str, Any]] = []
    print()
    print(
        f"bridge chaos run ({'quick' if args.quick else 'full'}, {elapsed:.0f} s)  "
        f"nproc={info['nproc']}  python {info['python']}  {info['redis'].split(' sha=')[0]}  seed {args.seed}"
    )
    cores = results["cpu_cores"]
    print(
        f"CPU cores busy on average: this run {cores['this_run']} (the fakes and the driver "
        f"{cores['bench_process']}), everything else on the machine {cores['other']}"
    )
    if "check" in results:
        text, targets = table(results["check"])
        print(_faults_line(results))
        print()
        print(text)
        slow = results.get("slow_by_fault") or {}
        print("\nslower than 1 s, by the fault met: " + (", ".join(f"{k} {v}" for k, v in slow.items()) or "none"))
        kills = results.get("after_kills") or {}
        if kills.get("kills"):
            print(
                f"in flight at a kill, all delivered within: median {kills['median_s']:.2f} s, "
                f"max {kills['max_s']:.2f} s after the kill ({kills['kills']} kills; target 5 s)"
            )
            clean = kills["clean"]
            if clean["kills"]:
                print(
                    f"  of those, the messages no API call was refused for (5xx, 429), nor for one ahead in their "
                    f"conversation: median "
                    f"{clean['median_s']:.2f} s, max {clean['max_s']:.2f} s after the kill ({clean['kills']} kills)"
                )
        print()
        for row in targets:
            print(f"{row['result']}  {row['figure']}: {row['measured']} (wanted {row['target']})")
    print(_logs_line(results.get("logs") or {}))
    if failed:
        print(f"\nINCOMPLETE: {failed}" + (f" (logs kept in {tmp})" if tmp.exists() else ""))
    elif not args.keep_logs:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"\nlogs kept in {tmp}")
    if args.json:
        document = {
            "plan": asdict(plan),
            "faults_plan": asdict(faults_plan),
            "machine": info,
            "results": results,
            "targets": targets,
            "failed": failed,
        }
        Path(args.json).write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if failed is None else 1


def _own_cpu(*, children: bool = True) -> float:
    """CPU seconds of this process and (children) of its children that have been reaped (every
    process the rig started, once stopped or killed)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if children else (resource.RUSAGE_SELF,):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _logs_line(logs: dict[str, Any]) -> str:
    """Warnings and errors of every web and worker process, summed by kind (web, worker)."""
    kinds: dict[str, dict[str, int]] = {}
    processes: dict[str, int] = {}
    for name, entry in logs.items():
        kind = name.rstrip("0123456789.").rstrip("0123456789")
        processes[kind] = processes.get(kind, 0) + 1
        for level, n in entry["levels"].items():
            kinds.setdefault(kind, {})[level] = kinds.setdefault(kind, {}).get(level, 0) + n
    parts = [f"{kind} ({processes[kind]} processes): {kinds.get(kind) or 'clean'}" for kind in sorted(processes)]
    return "logs: " + "; ".join(parts) if parts else "logs: none read"


def _faults_line(results: dict[str, Any]) -> str:
    events = results.get("faults") or []
    kills = sum(1 for e in events if e["what"].startswith("worker killed"))
    bursts = sum(1 for e in events if e["what"] == "429 burst")
    redis = [e for e in events if e["what"].startswith("redis")]
    own = sum(1 for e in events if "exited by itself" in e["what"])
    calls = results.get("api_calls") or {}
    failed = sum(n for fake in calls.values() for s, n in fake["by_status"].items() if s.startswith("5"))
    total = sum(n for fake in calls.values() for n in fake["by_status"].values())
    restart = f"redis down {redis[0]['down_s']:.2f} s at {redis[0]['at_s']:.0f} s" if redis else "no redis restart"
    return (
        f"faults: {kills} worker kills, {restart}, {bursts} bursts of 429, {failed} of {total} API calls 5xx; "
        f"sent for {results.get('sent_for_s')} s, drained in {results.get('drained_in_s')} s"
        + (f"; {own} processes exited by themselves" if own else "")
        + (f"; faults stopped early: {results['faults_error']}" if results.get("faults_error") else "")
    )


if __name__ == "__main__":
    sys.exit(main())
