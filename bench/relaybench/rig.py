"""Everything a run starts: redis-server, the fakes, the Procfile's web and worker, and (for the
targets) a bare endpoint served by uvicorn the same way as the web. stop() undoes all of it."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis as redis_sync

from bridge.fakes.harness import ALWAYS_OPEN, bridge_env, free_port, procfile_commands, write_policy
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack

from .common import CHANNEL, COUNSELLOR, CREDENTIALS, HOST, ROOT, log
from .loadgen import LoadGen
from .system import cpu_seconds, own_cpu_seconds, system_busy_seconds

BARE_APP = "relaybench.bare_app:create_app"


def _keys() -> Any | None:
    """The bridge's key names for the inbound stream, the due lanes and the router's lease, when
    they are still where the bench expects them; None sends idle() and start() to signs that do
    not depend on Redis's layout."""
    try:
        from bridge.adapters.redis.keys import Keys

        keys = Keys()
    except Exception:
        return None
    return keys if all(hasattr(keys, name) for name in ("inbound", "due", "router_lease")) else None


class Stoppable(Protocol):
    @property
    def pid(self) -> int | None: ...

    def stop(self) -> None: ...


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


def uvicorn_argv(command: str, port: int, app: str | None = None) -> list[str]:
    """The Procfile's web command for this port, listening on 127.0.0.1 only; with app, the same
    command serving another application."""
    argv = shlex.split(command.replace("$PORT", str(port)))
    for i, arg in enumerate(argv[:-1]):
        if arg == "--host":
            argv[i + 1] = HOST
    if app is not None:
        spots = [i for i, arg in enumerate(argv) if re.fullmatch(r"[\w.]+:[\w]+", arg)]
        if len(spots) != 1:
            raise RuntimeError(f"cannot find the application in the web command {command!r}")
        argv[spots[0]] = app
    return argv


class Rig:
    """Everything the benchmark starts; stop() undoes all of it, whatever state it is in.

    tree: the checkout whose web and worker run (its Procfile, on its PYTHONPATH); by default
    this one. The fakes and the driver are always this checkout's."""

    def __init__(self, tmp: Path, *, tree: Path = ROOT) -> None:
        self.tmp = tmp
        self.tree = tree
        self.procs: list[Proc] = []
        self.helpers: list[Stoppable] = []  # the load generator
        self._loadgen: LoadGen | None = None
        self.fake_line: FakeLine | None = None
        self.fake_slack: FakeSlack | None = None
        self.redis_port = 0
        self.web_port = 0
        self.bare_port = 0
        self.web: Proc | None = None
        self.worker: Proc | None = None
        self.bare: Proc | None = None
        self.redis: redis_sync.Redis | None = None
        self.env: dict[str, str] = {}

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    @property
    def loadgen(self) -> LoadGen:
        """The load generator process, started on first use."""
        if self._loadgen is None:
            self._loadgen = LoadGen()
            self.helpers.append(self._loadgen)
        return self._loadgen

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

    def pids(self) -> dict[str, int]:
        """Process name -> pid of what talks to Redis or serves HTTP, and this process ("bench")."""
        out = {p.name: p.popen.pid for p in self.procs if p.name != "redis"}
        out["bench"] = os.getpid()
        return out

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as handle:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=self.tree,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def start(
        self,
        *,
        bare: bool = False,
        env: dict[str, str] | None = None,
        policy: dict[str, dict[str, object]] | None = None,
        timeouts: dict[str, int] | None = None,
        channels: tuple[str, ...] = (),
    ) -> None:
        """Start everything. env: more variables for the web and worker; policy: single-line
        settings of the bench policy changed (write_policy's settings); timeouts: its [timeouts];
        channels: more channels whose members fake Slack knows (a pool of case channels)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis_port = free_port()
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        argv = [binary, "--port", str(self.redis_port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        self._spawn("redis", [*argv, "--dir", str(redis_dir)])
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

        self.fake_line = FakeLine(access_token=CREDENTIALS.line_token).start()
        self.fake_slack = FakeSlack(bot_token=CREDENTIALS.slack_token).start()  # no rate limit
        for channel in (CHANNEL, *channels):
            self.fake_slack.set_members(channel, [COUNSELLOR])

        self.env = bridge_env(
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
                    timeouts=timeouts,
                    settings={"floods": {"max_messages": 0, "max_stickers": 0}, **(policy or {})},
                )
            ),
        )
        self.env.update(env or {})
        if self.tree != ROOT:
            self.env["PYTHONPATH"] = str(self.tree)
        commands = procfile_commands(self.tree)
        self.web_port = free_port()
        web_env = dict(self.env, PORT=str(self.web_port))
        self.web = self._spawn("web", uvicorn_argv(commands["web"], self.web_port), web_env)
        self.worker = self._spawn("worker", shlex.split(os.path.expandvars(commands["worker"])), self.env)
        if bare:
            self.bare_port = free_port()
            bare_env = dict(web_env, PORT=str(self.bare_port), PYTHONPATH=str(ROOT / "bench"))
            self.bare = self._spawn("bare", uvicorn_argv(commands["web"], self.bare_port, BARE_APP), bare_env)
        for proc, port in ((self.web, self.web_port), (self.bare, self.bare_port)):
            if proc is not None:
                self._wait_healthy(proc, port)
        keys = _keys()
        deadline = time.monotonic() + 30
        while keys is not None and not self.r.exists(keys.router_lease):
            if not self.worker.alive() or time.monotonic() > deadline:
                raise RuntimeError("worker did not start leading:\n" + self.worker.log_tail())
            time.sleep(0.05)
        if keys is None:
            time.sleep(3)  # no lease to watch: give the worker time to start

    def _wait_healthy(self, proc: Proc, port: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.name} did not start:\n" + proc.log_tail())
            time.sleep(0.05)

    def idle(self) -> bool:
        """True when nothing is waiting in the inbound stream or in any delivery lane (without
        those keys: when neither fake received a request for half a second)."""
        keys = _keys()
        if keys is not None:
            return int(self.r.xlen(keys.inbound)) == 0 and int(self.r.zcard(keys.due)) == 0
        before = len(self.slack.requests) + len(self.line.requests)
        time.sleep(0.5)
        return len(self.slack.requests) + len(self.line.requests) == before

    def backlog(self) -> int | None:
        """Entries in the inbound stream (None if it cannot be read)."""
        keys = _keys()
        try:
            return int(self.r.xlen(keys.inbound)) if keys is not None else None
        except redis_sync.RedisError:
            return None

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process; "bench" is this process (driver and both fakes)."""
        out = {p.name: cpu_seconds(p.popen.pid) for p in self.procs}
        for helper in self.helpers:
            if helper.pid is not None:
                out["loadgen"] = cpu_seconds(helper.pid)
        out["bench"] = own_cpu_seconds()
        out["_system"] = system_busy_seconds()
        return out

    def check_alive(self) -> None:
        for p in (self.web, self.worker, self.bare):
            if p is not None and not p.alive():
                raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{p.log_tail()}")

    def stop(self) -> None:
        for helper in self.helpers:
            try:
                helper.stop()
            except Exception as exc:
                log(f"stopping the load generator: {exc!r}")
        for proc in reversed(self.procs):  # bare, worker, web, then redis
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

    def log_problems(self) -> dict[str, Any]:
        """Warnings and errors in the web, worker and bare logs (the bridge never logs content)."""
        out = {}
        for proc in (self.web, self.worker, self.bare):
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
