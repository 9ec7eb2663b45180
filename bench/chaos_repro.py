#!/usr/bin/env python
"""The chaos run's slow deliveries, one at a time: each case sets up the one thing that made a
message late and measures how late the case's next message is. No random faults.

  backoff: six 429s (Retry-After 1) and then one 500 on a child's post. The 429s count as
    attempts, so the 500 backs off as the seventh failure in a row (0.5 s x 2^6, at most 60 s)
    and the case's next message waits behind it.
  settle: a child's post is answered while redis-server is down, so its deliverer cannot settle
    it; the lane stays leased by that (living) worker until the lease runs out, and the case's
    next message waits for it.

Run:  .venv/bin/python bench/chaos_repro.py [--case backoff|settle]   (each about 40 s)
One web and one worker from the Procfile with the bridge's default leases and timeouts, the fakes
in this process, a private redis-server with its append-only file; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from relaybench.common import CHANNEL, SLACK_POST, child_id, line_body, line_headers, log, marker, message_text
from relaybench.rig import Rig

DEFAULTS: dict[str, str | None] = {
    "BRIDGE_LEASE_SECONDS": None,
    "BRIDGE_HTTP_TIMEOUT_SECONDS": None,
    "BRIDGE_RETRY_MAX_BACKOFF_SECONDS": None,
}
LATE_S = 15.0  # the chaos run's target for the slowest delivery


class Case:
    def __init__(self, rig: Rig, run: str) -> None:
        self.rig = rig
        self.run = run

    def mark(self, i: int) -> str:
        return marker(self.run, "rp", i)

    def send(self, i: int) -> None:
        """Child 1's message i, sent until a web answers 200 (the first after a Redis restart may not)."""
        body = line_body(child_id(1), message_text(self.mark(i)))
        for _ in range(20):
            if (
                httpx.post(self.rig.web_url + "/line/webhook", content=body, headers=line_headers(body)).status_code
                == 200
            ):
                return
            time.sleep(0.25)
        raise RuntimeError("the web did not take the webhook")

    def posts(self, i: int) -> list[int]:
        """The answers to every post that carried message i."""
        return [
            r.status for r in self.rig.slack.requests_to(SLACK_POST) if self.mark(i) in str((r.json or {}).get("text"))
        ]

    def wait(self, what: Callable[[], bool], timeout: float = 120) -> None:
        self.rig.slack.wait_for(what, timeout=timeout)

    def open_case(self) -> None:
        self.send(0)
        self.wait(lambda: 200 in self.posts(0))
        time.sleep(1)


def backoff(case: Case) -> float:
    rig = case.rig
    case.open_case()
    rig.slack.fail_next(SLACK_POST, 429, times=6, headers={"Retry-After": "1"})
    rig.slack.fail_next(SLACK_POST, 500)
    sent = time.time()
    case.send(1)
    case.wait(lambda: len(case.posts(1)) == 7)
    case.send(2)
    case.wait(lambda: 200 in case.posts(2))
    calls = [r for r in rig.slack.requests_to(SLACK_POST) if case.mark(1) in str((r.json or {}).get("text"))]
    log(
        "posts of the first message (s after it was sent, answer): "
        + ", ".join(f"{r.at - sent:.1f} {r.status}" for r in calls)
    )
    log(f"after the 500 the next try came {calls[7].at - calls[6].at:.1f} s later")
    return time.time() - sent


def settle(case: Case) -> float:
    rig = case.rig
    case.open_case()
    rig.slack.stall(SLACK_POST)
    case.send(1)
    case.wait(lambda: len(case.posts(1)) == 1)  # the worker's post is in flight
    rig.stop_redis()
    rig.slack.unstall(SLACK_POST)  # Slack takes it; settling it fails
    time.sleep(1.5)
    rig.start_redis()
    sent = time.time()
    case.send(2)
    case.wait(lambda: 200 in case.posts(2))
    late = time.time() - sent
    time.sleep(2)
    copies = [sum(case.mark(i) in m["text"] for m in rig.slack.messages(CHANNEL)) for i in (1, 2)]
    log(f"copies in Slack of the message settled while Redis was down and of the next one: {copies}")
    return late


CASES = {"backoff": backoff, "settle": settle}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="one case (repeatable; default all)")
    args = parser.parse_args(argv)
    failed = False
    for name in args.case or sorted(CASES):
        tmp = Path(tempfile.mkdtemp(prefix=f"bridge-repro-{name}-"))
        rig = Rig(tmp)
        try:
            rig.start(aof=True, env=DEFAULTS)
            late = CASES[name](Case(rig, "000000"))
            verdict = "reproduced" if late > LATE_S else "not reproduced"
            print(
                f"{name}: the case's next message arrived {late:.1f} s after it was sent ({verdict}: > {LATE_S:.0f} s)"
            )
        except (RuntimeError, AssertionError) as exc:
            failed = True
            print(f"{name}: failed: {exc}")
        finally:
            rig.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
