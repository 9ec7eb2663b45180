#!/usr/bin/env python
"""Routing on several workers: the same backlog decided by one worker and by two, in one run.

A deployment with BRIDGE_ROUTER_PARTITIONS=4 (adapters/redis/partitions.py). For each round and
each worker count (1, then 2; --rounds alternates them): a fresh rig (redis-server, fakes, one
web, the workers: bench/relaybench/rig.py) waits until the workers share the partitions, opens a
case for each of --children children, then stops the workers (SIGSTOP, under a second, shorter
than a heartbeat's life), records --messages messages into the partitions' streams as the web
does (each in its child's partition), lets the workers go (SIGCONT) and times:

- decided: until every stream is empty (every entry loaded, decided and committed), giving
  decisions per second, with the workers' CPU the limit (fake Slack holds its answers meanwhile,
  so the deliverers wait instead of taking the cores; --deliver-meanwhile lets them run);
- delivered: until every lane is empty too (every post answered by fake Slack);
- the workers' CPU seconds meanwhile, and lost / doubled / out of order on what fake Slack got.

Run:  .venv/bin/python bench/partitions.py                    # 2 rounds, 10,000 messages
      .venv/bin/python bench/partitions.py --messages 4000 --rounds 1
Exit code: 0 when every run finished with nothing lost, doubled or out of order, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relaybench.common import (
    MARKER_RE,
    SLACK_POST,
    child_id,
    line_body,
    line_headers,
    log,
    marker,
    marker_index,
    message_text,
    wait_until,
)
from relaybench.rig import Rig

from bridge.adapters.line.webhook import split_webhook_events
from bridge.adapters.redis.keys import Keys
from bridge.adapters.redis.partitions import partition_of

PARTITIONS = 4
KEYS = Keys()


def leaders(rig: Rig) -> list[str]:
    held: list[Any] = [rig.r.get(KEYS.router_lease_of(p)) for p in range(PARTITIONS)]
    return [bytes(token).decode().split(":")[1] for token in held if token is not None]


def one_run(workers: int, *, messages: int, children: int, run: str, deliver_meanwhile: bool) -> dict[str, Any]:
    args_deliver_meanwhile = deliver_meanwhile
    with tempfile.TemporaryDirectory(prefix="bridge-partitions-") as tmp:
        rig = Rig(Path(tmp))
        try:
            rig.start(workers=workers, env={"BRIDGE_ROUTER_PARTITIONS": str(PARTITIONS)})
            share = PARTITIONS // workers

            def spread() -> bool:
                held = leaders(rig)
                return len(held) == PARTITIONS and all(held.count(str(w.popen.pid)) == share for w in rig.workers)

            wait_until(spread, 30, "the workers to share the partitions")
            users = [child_id(i) for i in range(children)]
            with httpx.Client(base_url=rig.web_url, timeout=10) as client:
                for i, user in enumerate(users):  # each child's case opens first
                    body = line_body(user, message_text(marker(run, "open", i)))
                    assert client.post("/line/webhook", content=body, headers=line_headers(body)).status_code == 200
            wait_until(rig.idle, 60, "the cases to open")
            before_posts = len(rig.slack.requests_to(SLACK_POST))
            # The backlog, as the web records it: each event in its child's partition's stream.
            entries: list[tuple[str, str]] = []
            for i in range(messages):
                user = users[i % children]
                body = line_body(user, message_text(marker(run, "load", i)))
                ((_, encoded, _),) = split_webhook_events(body)
                entries.append((KEYS.inbound_of(partition_of(user, PARTITIONS)), encoded))
            for w in rig.workers:
                w.popen.send_signal(signal.SIGSTOP)
            pipe = rig.r.pipeline(transaction=False)
            for stream, encoded in entries:
                pipe.xadd(stream, {"source": "line", "body": encoded})
            pipe.execute()
            # While the backlog is decided, fake Slack holds every post unanswered: the deliverers
            # wait on their first calls instead of competing with the routers for the two cores,
            # so the decided time is the routers' (with their workers' CPU the limit).
            if not args_deliver_meanwhile:
                rig.slack.stall(SLACK_POST)
            cpu_before = rig.cpu()
            started = time.monotonic()
            for w in rig.workers:
                w.popen.send_signal(signal.SIGCONT)
            wait_until(lambda: (rig.backlog() or 0) == 0, 600, "every stream to be decided", interval=0.01)
            decided = time.monotonic() - started
            cpu_decided = rig.cpu()
            rig.slack.unstall(SLACK_POST)
            wait_until(rig.idle, 600, "every lane to be delivered", interval=0.02)
            delivered = time.monotonic() - started
            cpu_after = rig.cpu()
            worker_cpu = sum(cpu_after[w.name] - cpu_before[w.name] for w in rig.workers)
            routing_cpu = sum(cpu_decided[w.name] - cpu_before[w.name] for w in rig.workers)
            counts: collections.Counter[str] = collections.Counter()
            order: dict[int, list[int]] = collections.defaultdict(list)
            for request in rig.slack.requests_to(SLACK_POST)[before_posts:]:
                if request.status != 200:
                    continue
                text = json.dumps(request.json or {}, ensure_ascii=False)
                for found in dict.fromkeys(MARKER_RE.findall(text)):
                    if f"{run}load" in found:
                        counts[found] += 1
                        index = marker_index(found)
                        order[index % children].append(index)
            lost = sum(1 for i in range(messages) if counts[marker(run, "load", i)] == 0)
            doubled = sum(1 for n in counts.values() if n > 1)
            disorder = sum(1 for seq in order.values() if seq != sorted(seq))
            return {
                "workers": workers,
                "decided_s": decided,
                "decisions_per_s": messages / decided,
                "delivered_s": delivered,
                "worker_cpu_s": worker_cpu,
                "worker_cpu_ms_per_message": 1000 * worker_cpu / messages,
                "routing_cores": routing_cpu / decided,  # the workers' cores busy while deciding
                "redis_cores": (cpu_decided["redis"] - cpu_before["redis"]) / decided,
                "lost": lost,
                "doubled": doubled,
                "out_of_order": disorder,
            }
        finally:
            rig.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--children", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deliver-meanwhile", action="store_true", help="do not hold Slack's answers while deciding")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
            run = uuid.uuid4().hex[:6]
            log(f"round {round_ + 1}: {workers} worker(s), {args.messages} messages over {args.children} children")
            result = one_run(
                workers,
                messages=args.messages,
                children=args.children,
                run=run,
                deliver_meanwhile=args.deliver_meanwhile,
            )
            log(
                f"  decided in {result['decided_s']:.2f} s ({result['decisions_per_s']:.0f}/s, workers "
                f"{result['routing_cores']:.2f} cores, redis {result['redis_cores']:.2f}), delivered in "
                f"{result['delivered_s']:.2f} s; worker CPU {result['worker_cpu_ms_per_message']:.2f} ms/message; "
                f"lost {result['lost']} doubled {result['doubled']} out of order {result['out_of_order']}"
            )
            results.append(result)
    print()
    print(
        f"{'workers':>8} {'decisions/s':>12} {'delivered/s':>12} {'worker CPU ms/msg':>18} {'lost/doubled/order':>20}"
    )
    for r in results:
        faults = f"{r['lost']}/{r['doubled']}/{r['out_of_order']}"
        per_s = args.messages / r["delivered_s"]
        cpu = r["worker_cpu_ms_per_message"]
        print(f"{r['workers']:>8} {r['decisions_per_s']:>12.0f} {per_s:>12.0f} {cpu:>18.2f} {faults:>20}")
    by = {n: [r["decisions_per_s"] for r in results if r["workers"] == n] for n in (1, 2)}
    if by[1] and by[2]:
        print(f"\ntwo workers decide {sum(by[2]) / len(by[2]) / (sum(by[1]) / len(by[1])):.2f}x as fast as one")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["lost"] == r["doubled"] == r["out_of_order"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
