#!/usr/bin/env python
"""End-to-end benchmark of the LINE <-> Slack relay.

Starts a private redis-server, the fake LINE and Slack APIs (in this process), and the
Procfile's web and worker processes (and, with --targets, a bare FastAPI endpoint), then either

  the phase run (default): webhook load, relay both ways, controls, throughput, Redis counts;
  --targets: the issue's speed targets side by side in one run, with PASS/MISS.

Run:  .venv/bin/python bench/relay.py [--quick] [--targets [--sustain-seconds S]] [--json PATH] [--keep-logs]
Everything it starts is stopped in a finally block (also on Ctrl-C / SIGTERM).
Only 127.0.0.1 is used. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from relaybench.common import FULL, QUICK, Plan, Stop, log
from relaybench.controls import phase_controls
from relaybench.latency import phase_line_to_slack, phase_slack_to_line
from relaybench.redis_phase import phase_redis
from relaybench.report import build_table, redis_notes
from relaybench.rig import Rig
from relaybench.system import machine_info
from relaybench.targets import TARGETS, TARGETS_QUICK, TargetPlan, evaluate, log_verdicts, run_targets
from relaybench.throughput import phase_throughput
from relaybench.webhook import phase_webhook_load, phase_webhook_load_worker_paused

PHASES: list[tuple[str, Callable[[Rig, Plan, str], dict[str, Any]]]] = [
    ("webhook_load", phase_webhook_load),
    ("webhook_load_worker_paused", phase_webhook_load_worker_paused),
    ("line_to_slack", phase_line_to_slack),
    ("slack_to_line", phase_slack_to_line),
    ("controls", phase_controls),
    ("throughput", phase_throughput),
    ("redis", phase_redis),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (phase run ~30 s, targets ~1.5 min)")
    parser.add_argument("--targets", action="store_true", help="measure the speed targets in one run (~5 min)")
    parser.add_argument(
        "--sustain-seconds", type=float, metavar="S", help="length of the sustained run (targets; default 60)"
    )
    parser.add_argument(
        "--sustain-rate", type=float, metavar="R", help="offered rate of the sustained run (default 500)"
    )
    parser.add_argument(
        "--drain-limit", type=float, metavar="S", help="longest wait for the sustained run's backlog (default 240)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    parser.add_argument("--keep-logs", action="store_true", help="keep the web/worker/redis logs")
    args = parser.parse_args(argv)
    tuning = (args.sustain_seconds, args.sustain_rate, args.drain_limit)
    if not args.targets and any(v is not None for v in tuning):
        parser.error("--sustain-seconds, --sustain-rate and --drain-limit belong to --targets")
    if any(v is not None and v <= 0 for v in tuning):
        parser.error("--sustain-seconds, --sustain-rate and --drain-limit must be positive")
    return args


def target_plan(args: argparse.Namespace) -> TargetPlan:
    plan = TARGETS_QUICK if args.quick else TARGETS
    if args.sustain_seconds is not None:
        plan = replace(plan, sustain_seconds=args.sustain_seconds)
    if args.sustain_rate is not None:
        plan = replace(plan, sustain_rate=args.sustain_rate)
    if args.drain_limit is not None:
        plan = replace(plan, drain_limit=args.drain_limit)
    return plan


def print_header(mode: str, seconds: float, info: dict[str, Any], bare: bool) -> None:
    print()
    print(
        f"bridge relay benchmark ({mode}, {seconds:.0f} s)  "
        f"nproc={info['nproc']}  python {info['python']}  {info['redis'].split(' sha=')[0]}"
    )
    print(f"cpu: {info['cpu'] or '?'}  |  {info['platform']}")
    print(
        "one web + one worker process (Procfile)"
        + (", a bare endpoint (same uvicorn command)" if bare else "")
        + ", fakes in the bench process, load generator in its own process"
    )
    print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    tplan = target_plan(args)
    mode = ("targets" if args.targets else "phases") + (" quick" if args.quick else "")
    run = uuid.uuid4().hex[:6]

    def on_sigterm(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    rig = Rig(tmp)
    results: dict[str, Any] = {}
    info = machine_info()
    began = time.monotonic()
    failed: str | None = None
    try:
        log(f"starting redis, fakes, web, worker{', bare endpoint' if args.targets else ''} (logs in {tmp})")
        rig.start(bare=args.targets)
        if args.targets:
            run_targets(rig, tplan, run, results)
        else:
            for name, phase in PHASES:
                results[name] = phase(rig, plan, run)
                rig.check_alive()
        results["logs"] = rig.log_problems()
    except KeyboardInterrupt:
        failed = "interrupted"
        log("interrupted; stopping everything")
    except (Stop, RuntimeError) as exc:
        failed = str(exc)
        log(f"benchmark failed: {exc}")
        for proc in (rig.web, rig.worker, rig.bare):
            if proc is not None:
                log(f"--- {proc.name} log tail ---\n{proc.log_tail()}")
    finally:
        rig.stop()
        leftover = [p.name for p in rig.procs if p.alive()]
        if leftover:
            log(f"WARNING: still running: {leftover}")
        if not args.keep_logs and failed is None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.targets:
        table, targets = evaluate(results)
        log_verdicts(targets)
        notes: list[str] = []
    else:
        table, targets = build_table(results)
        notes = redis_notes(results)
    print_header(mode, time.monotonic() - began, info, args.targets)
    print(table)
    if notes:
        print()
        print("\n".join(notes))
    for name, entry in (results.get("logs") or {}).items():
        if entry["levels"]:
            print(f"\n{name} log: {entry['levels']}; e.g. {entry['samples'][:2]}")
    if failed:
        print(f"\nINCOMPLETE: {failed}" + (f" (logs kept in {tmp})" if tmp.exists() else ""))
    if args.json:
        document = {
            "mode": mode,
            "plan": asdict(tplan) if args.targets else asdict(plan),
            "machine": info,
            "results": results,
            "targets": targets,
            "failed": failed,
        }
        Path(args.json).write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if failed is None else 1


if __name__ == "__main__":
    sys.exit(main())
