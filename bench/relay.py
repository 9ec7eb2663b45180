#!/usr/bin/env python
"""End-to-end benchmark of the LINE <-> Slack relay.

Starts a private redis-server, the fake LINE and Slack APIs (in this process), and the
Procfile's web and worker processes, then measures:

  1. webhook answer time under an open-loop load of signed LINE webhooks,
  2. LINE -> Slack relay time (webhook sent -> fake Slack receives chat.postMessage),
  3. Slack -> LINE relay time (Slack event sent -> fake LINE receives the push),
  4. sustained end-to-end throughput, with an exactly-once check,
  5. Redis commands per request / per relayed message (via MONITOR), by process.

Run:  .venv/bin/python bench/relay.py [--quick] [--json PATH] [--keep-logs]
Everything it starts is stopped in a finally block (also on Ctrl-C / SIGTERM).
Only 127.0.0.1 is used. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import json
import multiprocessing
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis as redis_sync  # noqa: E402

from bridge.adapters.line import webhook as line_side  # noqa: E402
from bridge.adapters.redis.keys import Keys  # noqa: E402
from bridge.adapters.slack import verify as slack_side  # noqa: E402
from bridge.fakes.harness import (  # noqa: E402
    ALWAYS_OPEN,
    Credentials,
    bridge_env,
    free_port,
    procfile_commands,
    write_policy,
)
from bridge.fakes.line import FakeLine  # noqa: E402
from bridge.fakes.slack import FakeSlack  # noqa: E402

CREDENTIALS = Credentials(
    line_secret="bench-line-channel-secret",
    line_token="bench-line-access-token",
    slack_token="xoxb-bench-bot-token",
    slack_signing="bench-slack-signing-secret",
)
LINE_SECRET = CREDENTIALS.line_secret
LINE_TOKEN = CREDENTIALS.line_token
SLACK_TOKEN = CREDENTIALS.slack_token
SLACK_SIGNING = CREDENTIALS.slack_signing
CHANNEL = CREDENTIALS.channel
COUNSELLOR = "UCOUNSEL1"
HOST = "127.0.0.1"

SLACK_POST = "/api/chat.postMessage"
LINE_PUSH = "/v2/bot/message/push"
MARKER_RE = re.compile(r"bm[0-9a-f]{6}[a-z]+\d{6}")

# Targets the project cares about.
TARGET_WEBHOOK_P99_MS = 25.0
TARGET_RELAY_P50_MS = 30.0
TARGET_WEBHOOK_ROUND_TRIPS = 3.0
TARGET_CONTROL_ACK_MS = 3000.0  # Slack gives a command or button three seconds


@dataclass(frozen=True)
class Plan:
    load_rate: float = 200.0  # webhooks/s, open loop
    load_seconds: float = 10.0
    load_children: int = 50
    relay_count: int = 200  # per direction
    relay_rate: float = 20.0  # messages/s
    relay_children: int = 20
    throughput_n: int = 2000
    throughput_concurrency: int = 20
    throughput_children: int = 50
    redis_messages: int = 100
    redis_idle_seconds: float = 3.0
    paused_load_seconds: float = 5.0


FULL = Plan()
QUICK = Plan(
    load_seconds=3.0,
    relay_count=50,
    throughput_n=400,
    redis_messages=30,
    redis_idle_seconds=1.0,
    paused_load_seconds=1.5,
)


# ----------------------------------------------------------------------------- helpers


class Stop(Exception):
    """Raised when a bounded wait runs out."""


def pct(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, min(len(data), int(-(-p * len(data) // 100))))
    return data[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p90_ms": round(pct(ms, 90), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def child_id(i: int) -> str:
    return f"Ubench{i:026d}"


def line_body(user: str, text: str) -> bytes:
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01J" + uuid.uuid4().hex[:23].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
    }
    return json.dumps({"destination": "Ubot", "events": [event]}, ensure_ascii=False).encode()


def line_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Line-Signature": line_side.sign(LINE_SECRET, body)}


def slack_event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


def marker(run: str, phase: str, i: int) -> str:
    return f"bm{run}{phase}{i:06d}"


def message_text(mark: str) -> str:
    return f"benchmark message {mark} please ignore"


def first_seen(
    requests: Iterable[Any], texts_of: Callable[[Any], list[str]]
) -> tuple[dict[str, float], collections.Counter[str]]:
    """marker -> earliest `at` among requests answered 200, and how often each marker appeared."""
    at: dict[str, float] = {}
    counts: collections.Counter[str] = collections.Counter()
    for r in requests:
        if r.status != 200:
            continue
        for text in texts_of(r):
            for m in MARKER_RE.findall(text):
                counts[m] += 1
                if m not in at or r.at < at[m]:
                    at[m] = r.at
    return at, counts


def slack_texts(r: Any) -> list[str]:
    body = r.json if isinstance(r.json, dict) else {}
    return [str(body.get("text") or "")]


def line_texts(r: Any) -> list[str]:
    body = r.json if isinstance(r.json, dict) else {}
    return [str(m.get("text") or "") for m in body.get("messages") or [] if isinstance(m, dict)]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Stop(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc); NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def system_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (Linux /proc/stat); NaN if unknown."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


# ----------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            self.popen.send_signal(signal.SIGCONT)  # in case it was ever stopped
            self.popen.terminate()
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Rig:
    """Everything the benchmark starts; stop() undoes all of it, whatever state it is in."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []
        self.fake_line: FakeLine | None = None
        self.fake_slack: FakeSlack | None = None
        self.redis_port = 0
        self.web_url = ""
        self.web: Proc | None = None
        self.worker: Proc | None = None
        self.redis: redis_sync.Redis | None = None

    @property
    def line(self) -> FakeLine:
        assert self.fake_line is not None
        return self.fake_line

    @property
    def slack(self) -> FakeSlack:
        assert self.fake_slack is not None
        return self.fake_slack

    @property
    def r(self) -> redis_sync.Redis:
        assert self.redis is not None
        return self.redis

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as handle:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis_port = free_port()
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        self._spawn(
            "redis",
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(redis_dir),
            ],
        )
        self.redis = redis_sync.Redis(host=HOST, port=self.redis_port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.redis.ping()
                break
            except redis_sync.ConnectionError:
                if time.monotonic() > deadline or not self.procs[-1].alive():
                    raise RuntimeError("redis-server did not start:\n" + self.procs[-1].log_tail()) from None
                time.sleep(0.05)

        self.fake_line = FakeLine(access_token=LINE_TOKEN).start()
        self.fake_slack = FakeSlack(bot_token=SLACK_TOKEN).start()  # no rate limit unless rate_limit() is called
        self.fake_slack.set_members(CHANNEL, ["UCOUNSEL1"])

        env = bridge_env(
            f"redis://{HOST}:{self.redis_port}/0",
            self.line.url,
            self.slack.url,
            credentials=CREDENTIALS,
            BRIDGE_LOG_LEVEL="WARNING",
            # Open around the clock, so the figures do not depend on the hour the bench runs at.
            # Flood limits off: a bench child sends far more than a person could.
            BRIDGE_CONFIG=str(
                write_policy(
                    self.tmp,
                    hours=ALWAYS_OPEN,
                    name="bench-policy.toml",
                    settings={"floods": {"max_messages": 0, "max_stickers": 0}},
                )
            ),
        )
        commands = procfile_commands()
        port = free_port()
        web_env = dict(env, PORT=str(port))
        self.web = self._spawn("web", shlex.split(commands["web"].replace("$PORT", str(port))), web_env)
        self.worker = self._spawn("worker", shlex.split(os.path.expandvars(commands["worker"])), env)
        self.web_url = f"http://{HOST}:{port}"

        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.web_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if not self.web.alive() or time.monotonic() > deadline:
                raise RuntimeError("web did not start:\n" + self.web.log_tail())
            time.sleep(0.05)
        lease = Keys().router_lease
        deadline = time.monotonic() + 30
        while not self.r.exists(lease):
            if not self.worker.alive() or time.monotonic() > deadline:
                raise RuntimeError("worker did not start leading:\n" + self.worker.log_tail())
            time.sleep(0.05)

    def idle(self) -> bool:
        """True when nothing is waiting in the inbound stream or in any delivery lane."""
        keys = Keys()
        return int(self.r.xlen(keys.inbound)) == 0 and int(self.r.zcard(keys.due)) == 0

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process; "bench" is this process (driver and both fakes)."""
        out = {p.name: cpu_seconds(p.popen.pid) for p in self.procs}
        out["bench"] = own_cpu_seconds()
        out["_system"] = system_busy_seconds()
        return out

    def check_alive(self) -> None:
        for p in (self.web, self.worker):
            if p is not None and not p.alive():
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{p.log_tail()}")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # worker, web, then redis
            try:
                proc.stop()
            except Exception as exc:  # keep stopping the rest
                log(f"stopping {proc.name}: {exc!r}")
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.close()
        for fake in (self.fake_slack, self.fake_line):
            if fake is not None:
                try:
                    fake.stop()
                except Exception as exc:
                    log(f"stopping fake: {exc!r}")


# ----------------------------------------------------------------------------- phase 1: webhook load


def _loadgen_child(conn: Any, url: str, users: list[str], texts: list[str], rate: float) -> None:
    """Runs in a separate process so the fakes (threads in the parent) do not share its GIL.

    Protocol on the duplex pipe: child sends "ready" once warmed up, parent answers "go",
    child sends the result dict (or {"error": ...}).
    """
    try:
        result = asyncio.run(_open_loop(conn, url, users, texts, rate))
        conn.send(result)
    except BaseException as exc:  # report instead of hanging the parent
        with contextlib.suppress(OSError):
            conn.send({"error": repr(exc)})
    finally:
        conn.close()


async def _open_loop(conn: Any, url: str, users: list[str], texts: list[str], rate: float) -> dict[str, Any]:
    bodies = [line_body(u, t) for u, t in zip(users, texts, strict=True)]
    headers = [line_headers(b) for b in bodies]
    n = len(bodies)
    answer = [float("nan")] * n
    from_schedule = [float("nan")] * n
    lag = [float("nan")] * n
    status = [0] * n
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        # Open a few keep-alive connections first so no measured request pays for connect.
        await asyncio.gather(*(client.get(url.replace("/line/webhook", "/healthz")) for _ in range(8)))
        conn.send("ready")
        if not conn.poll(30) or conn.recv() != "go":
            raise RuntimeError("no go from the parent")
        cpu0 = own_cpu_seconds()

        async def one(i: int, scheduled: float) -> None:
            start = time.perf_counter()
            lag[i] = start - scheduled
            try:
                response = await client.post(url, content=bodies[i], headers=headers[i])
                status[i] = response.status_code
            except httpx.HTTPError:
                status[i] = -1
            end = time.perf_counter()
            answer[i] = end - start
            from_schedule[i] = end - scheduled

        tasks = []
        t0 = time.perf_counter() + 0.05
        for i in range(n):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        sent_for = time.perf_counter() - t0
        _, pending = await asyncio.wait(tasks, timeout=30)
        for task in pending:
            task.cancel()
        wall = time.perf_counter() - t0
    return {
        "answer": answer,
        "from_schedule": from_schedule,
        "lag": lag,
        "status": status,
        "sent_for": sent_for,
        "wall": wall,
        "unfinished": len(pending),
        "cpu_s": own_cpu_seconds() - cpu0,
    }


def _webhook_load(rig: Rig, plan: Plan, run: str, *, seconds: float, tag: str, pause_worker: bool) -> dict[str, Any]:
    n = int(plan.load_rate * seconds)
    users = [child_id(i % plan.load_children) for i in range(n)]
    marks = [marker(run, tag, i) for i in range(n)]
    texts = [message_text(m) for m in marks]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(
        target=_loadgen_child, args=(child, rig.web_url + "/line/webhook", users, texts, plan.load_rate), daemon=True
    )
    worker = rig.worker
    assert worker is not None
    proc.start()
    child.close()
    paused = False
    try:
        if not parent.poll(60):
            raise Stop("load generator did not get ready in time")
        hello = parent.recv()
        if hello != "ready":
            raise RuntimeError(f"load generator failed: {hello}")
        if pause_worker:
            worker.popen.send_signal(signal.SIGSTOP)
            paused = True
        cpu0 = rig.cpu()
        t_start = time.time()
        parent.send("go")
        if not parent.poll(seconds + 60):
            raise Stop("load generator did not report in time")
        result = parent.recv()
        cpu1 = rig.cpu()
    finally:
        if paused:
            worker.popen.send_signal(signal.SIGCONT)
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        parent.close()
    if "error" in result:
        raise RuntimeError("load generator failed: " + result["error"])
    ok = [a for a, s in zip(result["answer"], result["status"], strict=True) if s == 200]
    non200 = sum(1 for s in result["status"] if s != 200)
    # Let the worker drain everything the load produced before anything else is measured.
    wanted = set(marks)
    drained = None
    try:
        wait_until(
            lambda: wanted <= set(first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)[0]),
            timeout=120,
            what="the load's messages to reach Slack",
            interval=0.2,
        )
        at, _ = first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)
        drained = max(at[m] for m in marks) - t_start
    except Stop as exc:
        log(str(exc))
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    cpu2 = rig.cpu()
    rig.check_alive()
    wall = result["wall"]
    load_cores = cores_used(cpu0, cpu1, wall, extra={"loadgen": result["cpu_s"]})
    return {
        "requests": n,
        "rate_per_s": plan.load_rate,
        "seconds": seconds,
        "worker_paused": pause_worker,
        "answer": summary_ms(ok),
        "answer_from_schedule": summary_ms([x for x in result["from_schedule"] if x == x]),
        "sender_lag": summary_ms([x for x in result["lag"] if x == x]),
        "non_200": non200,
        "unfinished": result["unfinished"],
        "achieved_rate_per_s": round(n / result["sent_for"], 1) if result["sent_for"] > 0 else None,
        "all_relayed_after_s": round(drained, 2) if drained is not None else None,
        "cpu_cores_during_load": load_cores,
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


# ----------------------------------------------------------------------------- phase 2/3: relay latency


async def _paced(count: int, rate: float, send: Callable[[int], Any]) -> None:
    t0 = time.perf_counter()
    for i in range(count):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i)


def phase_line_to_slack(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    n = plan.relay_count
    log(f"phase 2: LINE->Slack relay, {n} messages at {plan.relay_rate:.0f}/s over {plan.relay_children} children")
    sent_at: dict[str, float] = {}
    answers: list[float] = []
    statuses: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await client.get(rig.web_url + "/healthz")

            async def send(i: int) -> None:
                mark = marker(run, "ls", i)
                body = line_body(child_id(i % plan.relay_children), message_text(mark))
                headers = line_headers(body)
                sent_at[mark] = time.time()
                start = time.perf_counter()
                response = await client.post(rig.web_url + "/line/webhook", content=body, headers=headers)
                answers.append(time.perf_counter() - start)
                statuses.append(response.status_code)

            await _paced(n, plan.relay_rate, send)

    asyncio.run(asyncio.wait_for(main(), timeout=n / plan.relay_rate + 60))
    wait_until(
        lambda: set(sent_at) <= set(first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)[0]),
        timeout=60,
        what="LINE->Slack messages",
        interval=0.1,
    )
    at, _ = first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    relay = [at[m] - t for m, t in sent_at.items()]
    out: dict[str, Any] = {
        "relay": summary_ms(relay),
        "webhook_answer": summary_ms(answers),
        "non_200": sum(1 for s in statuses if s != 200),
    }
    log(f"  LINE->Slack p50={out['relay']['p50_ms']} p99={out['relay']['p99_ms']} ms")
    return out


def phase_slack_to_line(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    roots = rig.slack.roots(CHANNEL)[: plan.relay_children]
    if not roots:
        raise RuntimeError("no case threads in fake Slack")
    n = plan.relay_count
    log(f"phase 3: Slack->LINE relay, {n} counsellor replies at {plan.relay_rate:.0f}/s over {len(roots)} threads")
    sent_at: dict[str, float] = {}
    answers: list[float] = []
    statuses: list[int] = []

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await client.get(rig.web_url + "/healthz")

            async def send(i: int) -> None:
                mark = marker(run, "sl", i)
                text = message_text(mark)
                root_ts = roots[i % len(roots)]["ts"]
                # A counsellor writes in the thread (Slack stores it), then Slack sends the event.
                ts = str(rig.slack.add_message(CHANNEL, text, user=COUNSELLOR, thread_ts=root_ts)["ts"])
                event = {
                    "type": "message",
                    "channel": CHANNEL,
                    "channel_type": "group",
                    "user": COUNSELLOR,
                    "text": text,
                    "ts": ts,
                    "thread_ts": root_ts,
                }
                body = slack_event_body(event)
                headers = {"Content-Type": "application/json", **slack_side.sign(SLACK_SIGNING, body)}
                sent_at[mark] = time.time()
                start = time.perf_counter()
                response = await client.post(rig.web_url + "/slack/events", content=body, headers=headers)
                answers.append(time.perf_counter() - start)
                statuses.append(response.status_code)

            await _paced(n, plan.relay_rate, send)

    asyncio.run(asyncio.wait_for(main(), timeout=n / plan.relay_rate + 60))
    wait_until(
        lambda: set(sent_at) <= set(first_seen(rig.line.requests_to(LINE_PUSH), line_texts)[0]),
        timeout=60,
        what="Slack->LINE pushes",
        interval=0.1,
    )
    at, _ = first_seen(rig.line.requests_to(LINE_PUSH), line_texts)
    wait_until(rig.idle, timeout=60, what="the bridge to go idle (reactions)")
    relay = [at[m] - t for m, t in sent_at.items()]
    out: dict[str, Any] = {
        "relay": summary_ms(relay),
        "slack_event_answer": summary_ms(answers),
        "non_200": sum(1 for s in statuses if s != 200),
    }
    log(f"  Slack->LINE p50={out['relay']['p50_ms']} p99={out['relay']['p99_ms']} ms")
    return out


# ----------------------------------------------------------------------------- phase 3b: controls


def phase_controls(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    """Signed /escalate commands and escalate-button presses (which open a window with
    views.open before the answer): how fast each is acknowledged, and how soon a command's
    alert reaches the supervisors' channel."""
    cases = len(rig.slack.roots(CHANNEL)[: plan.relay_children])
    n = plan.relay_count
    log(f"phase 3b: controls, {n} /escalate commands and {n} escalate buttons at {plan.relay_rate:.0f}/s")
    sent_at: dict[str, float] = {}
    command_acks: list[float] = []
    button_acks: list[float] = []
    statuses: list[int] = []
    views_before = len(rig.slack.views())

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:

            async def post(form: dict[str, str], acks: list[float]) -> None:
                body = urlencode(form).encode()
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    **slack_side.sign(SLACK_SIGNING, body),
                }
                start = time.perf_counter()
                response = await client.post(rig.web_url + "/slack/events", content=body, headers=headers)
                acks.append(time.perf_counter() - start)
                statuses.append(response.status_code)

            async def command(i: int) -> None:
                mark = marker(run, "esc", i)
                sent_at[mark] = time.time()
                form = {
                    "command": "/escalate",
                    "text": f"{i % cases + 1} {mark}",
                    "user_id": COUNSELLOR,
                    "channel_id": CHANNEL,
                    "team_id": "T0001",
                    "trigger_id": f"trig-{run}-c{i}",
                }
                await post(form, command_acks)

            async def button(i: int) -> None:
                action = {"action_id": "escalate_case", "value": str(i % cases + 1), "action_ts": f"{time.time()}"}
                payload = {
                    "type": "block_actions",
                    "user": {"id": COUNSELLOR},
                    "team": {"id": "T0001"},
                    "channel": {"id": CHANNEL},
                    "trigger_id": f"trig-{run}-b{i}",
                    "actions": [action],
                }
                await post({"payload": json.dumps(payload)}, button_acks)

            await _paced(n, plan.relay_rate, command)
            await _paced(n, plan.relay_rate, button)

    asyncio.run(asyncio.wait_for(main(), timeout=2 * n / plan.relay_rate + 60))

    def alerts() -> dict[str, float]:
        seen: dict[str, float] = {}
        for message in rig.slack.messages(CREDENTIALS.supervisors):
            for mark in sent_at:
                if mark in message["text"] and mark not in seen:
                    seen[mark] = float(message["ts"])
        return seen

    wait_until(lambda: len(alerts()) == len(sent_at), timeout=60, what="escalation alerts", interval=0.2)
    wait_until(rig.idle, timeout=60, what="the bridge to go idle (escalation notes)")
    at = alerts()
    out: dict[str, Any] = {
        "command_ack": summary_ms(command_acks),
        "button_ack_with_views_open": summary_ms(button_acks),
        "escalation_alert": summary_ms([at[m] - t for m, t in sent_at.items()]),
        "views_opened": len(rig.slack.views()) - views_before,
        "non_200": sum(1 for s in statuses if s != 200),
    }
    log(
        f"  command ack p99={out['command_ack']['p99_ms']} ms, button ack p99="
        f"{out['button_ack_with_views_open']['p99_ms']} ms, alert p50={out['escalation_alert']['p50_ms']} ms"
    )
    return out


# ----------------------------------------------------------------------------- phase 4: throughput


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
                    try:
                        r = await client.post(rig.web_url + "/line/webhook", content=bodies[i], headers=headers[i])
                        statuses[i] = r.status_code
                    except httpx.HTTPError:
                        statuses[i] = -1

            times["start"] = time.time()
            await asyncio.gather(*(sender() for _ in range(plan.throughput_concurrency)))
            times["sent"] = time.time()

    cpu0, cpu0_at = rig.cpu(), time.monotonic()
    asyncio.run(asyncio.wait_for(main(), timeout=n / 20 + 60))
    accepted = {m for m, s in zip(marks, statuses, strict=True) if s == 200}
    timed_out = False
    try:
        wait_until(
            lambda: accepted <= set(first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)[0]),
            timeout=max(60.0, n / 10),
            what="throughput messages in Slack",
            interval=0.1,
        )
    except Stop as exc:
        log(str(exc))
        timed_out = True
    try:
        wait_until(rig.idle, timeout=30, what="the bridge to go idle")
    except Stop as exc:
        log(str(exc))
    cpu1, cpu1_at = rig.cpu(), time.monotonic()
    time.sleep(0.5)  # give any stray duplicate time to show up
    at, _ = first_seen(rig.slack.requests_to(SLACK_POST), slack_texts)
    # Exactly-once is judged on what Slack stores, not on requests (a failed post stores nothing).
    stored: collections.Counter[str] = collections.Counter()
    for msg in rig.slack.messages(CHANNEL):
        for m in MARKER_RE.findall(msg["text"]):
            stored[m] += 1
    lost = [m for m in marks if stored[m] == 0]
    doubled = [m for m in marks if stored[m] > 1]
    last = max((at[m] for m in marks if m in at), default=float("nan"))
    elapsed = last - times["start"]
    send_elapsed = times["sent"] - times["start"]
    out = {
        "messages": n,
        "webhook_non_200": sum(1 for s in statuses if s != 200),
        "webhook_accept_rate_per_s": round(n / send_elapsed, 1),
        "end_to_end_seconds": round(elapsed, 3),
        "end_to_end_per_s": round(len(accepted) / elapsed, 1) if elapsed > 0 else None,
        "lost": len(lost),
        "doubled": len(doubled),
        "timed_out": timed_out,
        "exactly_once": not lost and not doubled and len(accepted) == n,
        "cpu_ms_per_message": {k: round((cpu1[k] - cpu0[k]) * 1000 / n, 2) for k in cpu0 if not k.startswith("_")},
        "cpu_cores": cores_used(cpu0, cpu1, cpu1_at - cpu0_at),
    }
    log(
        f"  {out['end_to_end_per_s']} msg/s end to end, webhook accepted {out['webhook_accept_rate_per_s']}/s, "
        f"lost={len(lost)} doubled={len(doubled)}"
    )
    return out


# ----------------------------------------------------------------------------- phase 5: Redis commands


MONITOR_RE = re.compile(r'^\+(\d+\.\d+) \[\d+ ([^\]]+)\] "([^"]*)"')


class Monitor:
    """A raw MONITOR connection read by a thread; keeps (time, source, command) tuples."""

    def __init__(self, port: int, max_seconds: float, max_lines: int = 3_000_000) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[tuple[float, str, str]] = []
        self.raw_unparsed = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._max_lines = max_lines
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._read, name="redis-monitor", daemon=True)
        self.thread.start()
        if not self._ready.wait(5):
            self.stop()
            raise RuntimeError("MONITOR did not start")

    def _read(self) -> None:
        buf = b""
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline and len(self.lines) < self._max_lines:
                try:
                    chunk = self.sock.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                *complete, buf = buf.split(b"\r\n")
                for raw in complete:
                    if raw == b"+OK":
                        self._ready.set()
                        continue
                    m = MONITOR_RE.match(raw.decode("utf-8", "replace"))
                    if m is None:
                        self.raw_unparsed += 1
                        continue
                    self.lines.append((float(m.group(1)), m.group(2), m.group(3).upper()))
        finally:
            self._ready.set()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()


def socket_owners(pids: dict[str, int]) -> dict[int, str]:
    """Local TCP port -> process name, for sockets held by the given pids (Linux /proc)."""
    inode_port: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if len(parts) > 9:
                inode_port[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    owners: dict[int, str] = {}
    for name, pid in pids.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inode_port:
                owners[inode_port[target[8:-1]]] = name
    return owners


def phase_redis(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    n = plan.redis_messages
    log(
        f"phase 5: Redis commands (MONITOR), {plan.redis_idle_seconds:.1f}s idle baseline, "
        f"then {n} LINE->Slack messages one at a time"
    )
    wait_until(rig.idle, timeout=60, what="the bridge to go idle")
    time.sleep(0.3)
    sent: list[tuple[str, float, float]] = []  # marker, sent at, posted at
    answers: list[float] = []
    monitor = Monitor(rig.redis_port, max_seconds=plan.redis_idle_seconds + n * 2 + 60)
    try:
        idle_start = time.time()
        time.sleep(plan.redis_idle_seconds)
        idle_end = active_start = time.time()

        def posted_at(mark: str, seen_from: int) -> float | None:
            for r in rig.slack.requests[seen_from:]:
                if r.path == SLACK_POST and r.status == 200 and mark in slack_texts(r)[0]:
                    return r.at
            return None

        with httpx.Client(timeout=10.0) as client:
            client.get(rig.web_url + "/healthz")
            for i in range(n):
                mark = marker(run, "rd", i)
                body = line_body(child_id(i % plan.relay_children), message_text(mark))
                headers = line_headers(body)
                seen_from = len(rig.slack.requests)
                t_sent = time.time()
                start = time.perf_counter()
                response = client.post(rig.web_url + "/line/webhook", content=body, headers=headers)
                answers.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"webhook answered {response.status_code}")
                deadline = time.monotonic() + 10
                got = None
                while got is None:
                    got = posted_at(mark, seen_from)
                    if got is None:
                        if time.monotonic() > deadline:
                            raise Stop(f"message {i} did not reach Slack")
                        time.sleep(0.002)
                sent.append((mark, t_sent, got))
                time.sleep(0.02)  # let the deliverer settle (complete, wake-ups) before the next one
        time.sleep(0.3)
        active_end = time.time()
        owners = socket_owners(
            {"web": rig.web.popen.pid, "worker": rig.worker.popen.pid, "bench": os.getpid()}  # type: ignore[union-attr]
        )
    finally:
        monitor.stop()

    def source_of(addr: str) -> str:
        if addr == "lua":
            return "lua"
        try:
            return owners.get(int(addr.rsplit(":", 1)[1]), "unknown")
        except ValueError:
            return "unknown"

    def tally(t0: float, t1: float) -> dict[str, collections.Counter[str]]:
        out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for ts, addr, cmd in monitor.lines:
            if t0 <= ts < t1:
                out[source_of(addr)][cmd] += 1
        return out

    idle = tally(idle_start, idle_end)
    active = tally(active_start, active_end)
    idle_s = idle_end - idle_start
    active_s = active_end - active_start

    def per_message(name: str) -> dict[str, Any]:
        raw = sum(active[name].values())
        idle_rate = sum(idle[name].values()) / idle_s if idle_s > 0 else 0.0
        net = max(0.0, raw - idle_rate * active_s)
        # The router acknowledges and deletes each entry in one pipeline (XACK + XDEL).
        pipelined = min(active[name]["XACK"], active[name]["XDEL"])
        net_rt = max(0.0, net - pipelined)
        return {
            "commands_raw": raw,
            "idle_commands_per_s": round(idle_rate, 1),
            "commands_per_message": round(net / n, 2),
            "round_trips_per_message_est": round(net_rt / n, 2),
            "by_command_per_message": {c: round(k / n, 2) for c, k in active[name].most_common()},
        }

    web = per_message("web")
    worker = per_message("worker")
    lua_per_message = round(sum(active["lua"].values()) / n, 2)
    unknown = sum(active["unknown"].values())

    # Where the LINE->Slack time goes, from MONITOR timestamps (Redis's clock = this machine's clock):
    # sent -> XADD (web recorded it) -> RPUSH of the lane item (router enqueued it)
    # -> HINCRBY attempts (a deliverer claimed it) -> chat.postMessage reached the fake.
    lua = sorted((ts, cmd) for ts, addr, cmd in monitor.lines if addr == "lua")
    stages: dict[str, list[float]] = {
        "web_recorded": [],
        "router_enqueued": [],
        "deliverer_claimed": [],
        "slack_call_started": [],
    }

    lua_ts = [ts for ts, _ in lua]

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
    breakdown = {
        k: {"p50_ms": round(pct([x * 1000 for x in v], 50), 2), "p99_ms": round(pct([x * 1000 for x in v], 99), 2)}
        for k, v in stages.items()
    }
    out = {
        "messages": n,
        "counting": (
            "MONITOR lines from client connections (source != lua), attributed to web/worker by the client "
            "socket's port (/proc). Each pipelined command is a separate line, so commands are an upper bound on "
            "round trips; the estimate counts the router's XACK+XDEL pipeline as one. Idle polling measured "
            "beforehand is subtracted."
        ),
        "web": web,
        "worker": worker,
        "lua_commands_per_message": lua_per_message,
        "unattributed_commands": unknown,
        "monitor_unparsed_lines": monitor.raw_unparsed,
        "relay_under_monitor": summary_ms([p - s for _, s, p in sent]),
        "webhook_answer_under_monitor": summary_ms(answers),
        "line_to_slack_breakdown": breakdown,
        "breakdown_samples": len(stages["web_recorded"]),
    }
    log(f"  web {web['commands_per_message']} cmds/request, worker {worker['commands_per_message']} cmds/message")
    return out


# ----------------------------------------------------------------------------- report


def cores_used(
    cpu0: dict[str, float], cpu1: dict[str, float], wall: float, extra: dict[str, float] | None = None
) -> dict[str, float]:
    """CPU cores each of our processes kept busy over wall seconds, and "other": everything else
    on the machine (another test run, for example), which makes the figures noisy."""
    if wall <= 0:
        return {}
    ours = {k: (cpu1[k] - cpu0[k]) for k in cpu0 if not k.startswith("_")}
    ours.update(extra or {})
    out = {k: round(v / wall, 2) for k, v in ours.items()}
    system = cpu1["_system"] - cpu0["_system"]
    if system == system:  # not NaN
        out["other"] = round(max(0.0, system - sum(ours.values())) / wall, 2)
    return out


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        redis_version = subprocess.run(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--version"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        redis_version = ""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": redis_version,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def log_problems(rig: Rig) -> dict[str, Any]:
    out = {}
    for proc in (rig.web, rig.worker):
        if proc is None or proc.log_path is None or not proc.log_path.exists():
            continue
        rows = proc.log_path.read_text(errors="replace").splitlines()
        levels: collections.Counter[str] = collections.Counter()
        samples: list[str] = []
        for row in rows:
            for level in ("WARNING", "ERROR", "CRITICAL", "Traceback"):
                if level in row:
                    levels[level] += 1
                    if len(samples) < 5:
                        samples.append(row[:200])
                    break
        out[proc.name] = {"lines": len(rows), "levels": dict(levels), "samples": samples}
    return out


def fmt_map(values: dict[str, Any]) -> str:
    return " ".join(f"{k} {v}" for k, v in values.items())


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def build_table(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    rows: list[tuple[str, str, str, str]] = []
    targets: list[dict[str, Any]] = []

    def add(label: str, value: str, target: str = "", ok: bool | None = None, key: str | None = None) -> None:
        rows.append((label, value, target, verdict(ok) if target else ""))
        if target:
            targets.append({"figure": key or label, "value": value, "target": target, "result": verdict(ok)})

    load = results.get("webhook_load")
    if load:
        a = load["answer"]
        add(f"webhook answer p50 @{load['rate_per_s']:.0f}/s", f"{a['p50_ms']:.1f} ms")
        add(
            f"webhook answer p99 @{load['rate_per_s']:.0f}/s",
            f"{a['p99_ms']:.1f} ms",
            f"< {TARGET_WEBHOOK_P99_MS:.0f} ms",
            a["p99_ms"] < TARGET_WEBHOOK_P99_MS,
            "webhook_answer_p99_ms",
        )
        add("webhook answer max", f"{a['max_ms']:.1f} ms")
        add("webhook non-200 answers", f"{load['non_200']} / {load['requests']}")
        add(
            "  (sender lag p99 / achieved rate)",
            f"{load['sender_lag']['p99_ms']:.1f} ms / {load['achieved_rate_per_s']}/s",
        )
        add("  (load fully relayed to Slack after)", f"{load['all_relayed_after_s']} s")
        add("  (CPU cores busy during load)", fmt_map(load["cpu_cores_during_load"]))
    paused = results.get("webhook_load_worker_paused")
    if paused:
        a = paused["answer"]
        add(
            "  diag: worker paused, answer p50/p99/max",
            f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} ms (non-200 {paused['non_200']})",
        )
        add("  diag: worker paused, CPU cores", fmt_map(paused["cpu_cores_during_load"]))
    ls = results.get("line_to_slack")
    if ls:
        r = ls["relay"]
        add(
            "LINE->Slack relay p50",
            f"{r['p50_ms']:.1f} ms",
            f"< {TARGET_RELAY_P50_MS:.0f} ms",
            r["p50_ms"] < TARGET_RELAY_P50_MS,
            "line_to_slack_p50_ms",
        )
        add("LINE->Slack relay p99", f"{r['p99_ms']:.1f} ms")
    sl = results.get("slack_to_line")
    if sl:
        r = sl["relay"]
        add(
            "Slack->LINE relay p50",
            f"{r['p50_ms']:.1f} ms",
            f"< {TARGET_RELAY_P50_MS:.0f} ms",
            r["p50_ms"] < TARGET_RELAY_P50_MS,
            "slack_to_line_p50_ms",
        )
        add("Slack->LINE relay p99", f"{r['p99_ms']:.1f} ms")
        add(
            "  (Slack event answer p50 / p99)",
            f"{sl['slack_event_answer']['p50_ms']:.1f} / {sl['slack_event_answer']['p99_ms']:.1f} ms",
        )
    ct = results.get("controls")
    if ct:
        for key, label in (("command_ack", "/escalate ack"), ("button_ack_with_views_open", "button ack (views.open)")):
            a = ct[key]
            add(
                f"{label} p99",
                f"{a['p99_ms']:.1f} ms (p50 {a['p50_ms']:.1f}, max {a['max_ms']:.1f})",
                f"< {TARGET_CONTROL_ACK_MS:.0f} ms",
                a["max_ms"] < TARGET_CONTROL_ACK_MS,
                f"{key}_ms",
            )
        e = ct["escalation_alert"]
        add("/escalate -> supervisors' channel p50 / p99", f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f} ms")
        add("  (windows opened / non-200)", f"{ct['views_opened']} / {ct['non_200']}")
    tp = results.get("throughput")
    if tp:
        add(
            "throughput end to end",
            f"{tp['end_to_end_per_s']} msg/s ({tp['messages']} in {tp['end_to_end_seconds']} s)",
        )
        add("  (webhook accept rate, 20 senders)", f"{tp['webhook_accept_rate_per_s']}/s")
        add("  (CPU ms per message)", fmt_map(tp["cpu_ms_per_message"]))
        if tp.get("cpu_cores"):
            add("  (CPU cores busy)", fmt_map(tp["cpu_cores"]))
        add(
            "exactly once in Slack",
            f"lost {tp['lost']}, doubled {tp['doubled']}, non-200 {tp['webhook_non_200']}",
            "0 lost, 0 doubled",
            tp["exactly_once"],
            "exactly_once",
        )
    rd = results.get("redis")
    if rd:
        w, k = rd["web"], rd["worker"]
        add(
            "webhook path Redis round trips/request",
            f"{w['round_trips_per_message_est']:.2f} ({w['commands_per_message']:.2f} cmds)",
            f"<= {TARGET_WEBHOOK_ROUND_TRIPS:.0f}",
            w["round_trips_per_message_est"] <= TARGET_WEBHOOK_ROUND_TRIPS,
            "webhook_redis_round_trips",
        )
        add(
            "worker Redis cmds/relayed message",
            f"{k['commands_per_message']:.1f} (~{k['round_trips_per_message_est']:.1f} round trips)",
        )
        add("  (worker idle polling)", f"{k['idle_commands_per_s']} cmds/s")
        add("  (Lua-internal commands/message)", f"{rd['lua_commands_per_message']}")
        b = rd["line_to_slack_breakdown"]
        add("L->S breakdown p50 (under MONITOR):", f"relay {rd['relay_under_monitor']['p50_ms']:.1f} ms =")
        labels = {
            "web_recorded": "sent -> web recorded it (XADD)",
            "router_enqueued": "-> router enqueued it (RPUSH)",
            "deliverer_claimed": "-> a deliverer claimed it",
            "slack_call_started": "-> chat.postMessage arrives",
        }
        for name, label in labels.items():
            add(f"  {label}", f"{b[name]['p50_ms']:.1f} ms (p99 {b[name]['p99_ms']:.1f})")
    width = [max(len(r[i]) for r in rows) if rows else 0 for i in range(4)]
    lines = ["  ".join(r[i].ljust(width[i]) for i in range(4)).rstrip() for r in rows]
    header = "  ".join(h.ljust(width[i]) for i, h in enumerate(("figure", "value", "target", ""))).rstrip()
    return "\n".join([header, "-" * len(header), *lines]), targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (whole run ~30 s)")
    parser.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    parser.add_argument("--keep-logs", action="store_true", help="keep the web/worker/redis logs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
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
        log(f"starting redis, fakes, web, worker (logs in {tmp})")
        rig.start()
        phases: list[tuple[str, Callable[[Rig, Plan, str], dict[str, Any]]]] = [
            ("webhook_load", phase_webhook_load),
            ("webhook_load_worker_paused", phase_webhook_load_worker_paused),
            ("line_to_slack", phase_line_to_slack),
            ("slack_to_line", phase_slack_to_line),
            ("controls", phase_controls),
            ("throughput", phase_throughput),
            ("redis", phase_redis),
        ]
        for name, phase in phases:
            results[name] = phase(rig, plan, run)
            rig.check_alive()
        results["logs"] = log_problems(rig)
    except KeyboardInterrupt:
        failed = "interrupted"
        log("interrupted; stopping everything")
    except (Stop, RuntimeError) as exc:
        failed = str(exc)
        log(f"benchmark failed: {exc}")
        for proc in (rig.web, rig.worker):
            if proc is not None:
                log(f"--- {proc.name} log tail ---\n{proc.log_tail()}")
    finally:
        rig.stop()
        leftover = [p.name for p in rig.procs if p.alive()]
        if leftover:
            log(f"WARNING: still running: {leftover}")
        if not args.keep_logs and failed is None:
            shutil.rmtree(tmp, ignore_errors=True)
    table, targets = build_table(results)
    mode = "quick" if args.quick else "full"
    print()
    print(
        f"bridge relay benchmark ({mode}, {time.monotonic() - began:.0f} s)  "
        f"nproc={info['nproc']}  python {info['python']}  {info['redis'].split(' sha=')[0]}"
    )
    print(f"cpu: {info['cpu'] or '?'}  |  {info['platform']}")
    print("one web + one worker process (Procfile), fakes in the bench process, load generator in its own process")
    print()
    print(table)
    if "redis" in results:
        print()
        print("Redis counting: " + results["redis"]["counting"])
        for who in ("web", "worker"):
            cmds = results["redis"][who]["by_command_per_message"]
            print(
                f"  {who} commands per message (raw, incl. idle polling): "
                + ", ".join(f"{c} {k}" for c, k in list(cmds.items())[:10])
            )
    for name, entry in (results.get("logs") or {}).items():
        if entry["levels"]:
            print(f"\n{name} log: {entry['levels']}; e.g. {entry['samples'][:2]}")
    if failed:
        print(f"\nINCOMPLETE: {failed}" + (f" (logs kept in {tmp})" if tmp.exists() else ""))
    if args.json:
        document = {
            "mode": mode,
            "plan": asdict(plan),
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
