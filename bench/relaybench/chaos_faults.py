"""The chaos run's faults, on a schedule from one seed.

- Every Slack and LINE API call fails with probability error_rate (500, 502 or 503, from the
  fakes' seeded generator); of those, the share after_handling fails after it took effect (the
  message was posted or pushed, and the worker hears an error), so a retry must find it.
- Bursts of 429 with Retry-After, alternately on chat.postMessage and the LINE push: the next
  few calls to it are refused.
- A worker SIGKILLed every kill_every_s and started again at once: the router's leader and the
  other worker in turn (the leader is read from the router's lease).
- One redis-server restart (SIGKILL; it is started with --appendonly yes --appendfsync always,
  so nothing it acknowledged is lost) at redis_restart_at_s.

Faults.run() applies them in a thread while the driver sends; every fault is kept with its time
(seconds since the driver's start) for the report.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis as redis_sync

from .common import LINE_PUSH, SLACK_POST, log
from .rig import Rig, bridge_keys

ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class FaultPlan:
    seed: int = 11
    error_rate: float = 0.10
    after_handling: float = 0.25
    kill_every_s: float = 10.0
    burst_every_s: float = 30.0
    burst_first_s: float = 15.0
    burst_calls: tuple[int, int] = (5, 15)  # refused calls per burst, drawn in this range
    burst_retry_after_s: tuple[int, int] = (1, 2)
    redis_restart_at_s: float | None = None  # None: the middle of the run, between two kills


class Faults:
    """Applies a FaultPlan to a rig over seconds, from t0 (the driver's start, wall clock)."""

    def __init__(self, rig: Rig, plan: FaultPlan, *, seconds: float, t0: float) -> None:
        self.rig = rig
        self.plan = plan
        self.seconds = seconds
        self.t0 = t0
        self.events: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self._rng = random.Random(plan.seed)
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def schedule(self) -> list[tuple[float, str]]:
        """(seconds after t0, what) for every scheduled fault within the run."""
        plan, out = self.plan, []
        at = plan.kill_every_s
        while at < self.seconds:
            out.append((at, "kill"))
            at += plan.kill_every_s
        at = plan.burst_first_s
        while at < self.seconds:
            out.append((at, "burst"))
            at += plan.burst_every_s
        restart = plan.redis_restart_at_s
        if restart is None:
            restart = (round(self.seconds / 2 / plan.kill_every_s) + 0.5) * plan.kill_every_s
        if restart < self.seconds:
            out.append((restart, "redis"))
        return sorted(out)

    def errors_on(self) -> None:
        """Random 5xx on every call to either fake from now on (each fake its own generator)."""
        for n, (fake, paths) in enumerate(((self.rig.slack, "/api/*"), (self.rig.line, "/v2/*"))):
            fake.fail_randomly(
                paths,
                self.plan.error_rate,
                statuses=ERROR_STATUSES,
                seed=self.plan.seed * 10 + n,
                after_handling=self.plan.after_handling,
            )

    def errors_off(self) -> None:
        self.rig.slack.fail_randomly("/api/*", 0)
        self.rig.line.fail_randomly("/v2/*", 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(60)

    def _note(self, what: str, **fields: Any) -> None:
        self.events.append({"at_s": round(time.time() - self.t0, 2), "what": what, **fields})

    def _run(self) -> None:
        kills = 0
        bursts = 0
        try:
            for at, what in self.schedule():
                while not self.stopping.is_set() and time.time() < self.t0 + at:
                    self._watch()
                    self.stopping.wait(min(0.2, max(0.0, self.t0 + at - time.time())))
                if self.stopping.is_set():
                    return
                if what == "kill":
                    self._kill(leader=kills % 2 == 0)
                    kills += 1
                elif what == "burst":
                    self._burst(SLACK_POST if bursts % 2 == 0 else LINE_PUSH)
                    bursts += 1
                else:
                    self._restart_redis()
            while not self.stopping.is_set() and time.time() < self.t0 + self.seconds:
                self._watch()
                self.stopping.wait(0.2)
        except Exception as exc:  # reported; the run goes on without further faults
            self.error = f"{type(exc).__name__}: {exc}"
            log(f"  faults stopped: {self.error}")

    def _watch(self) -> None:
        """A worker that exited without being killed is a finding: note it and start another."""
        for slot, proc in enumerate(self.rig.workers):
            if not proc.alive():
                self._note("worker exited by itself", slot=slot, code=proc.popen.returncode, log=proc.log_tail(5))
                self.rig.start_worker(slot)
        for slot, proc in enumerate(self.rig.webs):
            if not proc.alive():
                self._note("web exited by itself", slot=slot, code=proc.popen.returncode)

    def _leader_slot(self) -> int | None:
        keys = bridge_keys()
        try:
            token: Any = self.rig.r.get(keys.router_lease) if keys is not None else None
        except redis_sync.RedisError:
            return None
        if not isinstance(token, bytes):
            return None
        parts = token.decode().rsplit(":", 2)  # the worker's name: host:pid:random
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else -1
        return next((slot for slot, p in enumerate(self.rig.workers) if p.popen.pid == pid), None)

    def _kill(self, *, leader: bool) -> None:
        leading = self._leader_slot()
        if leading is None:
            slot = self._rng.randrange(len(self.rig.workers))
        else:
            slot = leading if leader or len(self.rig.workers) == 1 else (leading + 1) % len(self.rig.workers)
        killed = self.rig.kill_worker(slot)
        self.rig.start_worker(slot)
        self._note("worker killed and started again", slot=slot, leader=slot == leading, pid=killed.popen.pid)

    def _burst(self, path: str) -> None:
        calls = self._rng.randint(*self.plan.burst_calls)
        retry_after = self._rng.randint(*self.plan.burst_retry_after_s)
        fake = self.rig.slack if path == SLACK_POST else self.rig.line
        fake.fail_next(path, 429, times=calls, headers={"Retry-After": str(retry_after)})
        self._note("429 burst", path=path, calls=calls, retry_after_s=retry_after)

    def _restart_redis(self) -> None:
        down = self.rig.restart_redis(kill=True)
        self._note("redis-server killed and restarted", down_s=round(down, 3))
        log(f"  redis-server restarted (down {down:.2f} s)")

    def near(self, at_s: float, window_s: float = 20.0) -> list[str]:
        """The faults in the window_s before at_s (seconds after t0), latest first."""
        return [
            f"{e['what']} at {e['at_s']:.1f}s"
            for e in reversed(self.events)
            if at_s - window_s <= e["at_s"] <= at_s and "exited" not in e["what"]
        ]
