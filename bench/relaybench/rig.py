"""Everything a run starts: redis-server, the fakes, the Procfile's web and worker (one of each,
or more), and (for the targets) a bare endpoint served by uvicorn the same way as the web.
stop() undoes all of it. For the chaos run (bench/chaos.py) a worker can be killed and started
again, and redis-server restarted on its port (with its append-only file, when started with one)."""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis as redis_sync

from bridge.fakes.harness import ALWAYS_OPEN, bridge_env, free_port, procfile_commands, write_policy
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack

from .common import CHANNEL, COUNSELLOR, CREDENTIALS, HOST, ROOT, log
from .loadgen import LoadGen
from .procs import Proc, uvicorn_argv
from .system import cpu_seconds, own_cpu_seconds, system_busy_seconds

BARE_APP = "relaybench.bare_app:create_app"


def bridge_keys() -> Any | None:
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
        self.web: Proc | None = None  # the first web and worker (the relay bench runs one of each)
        self.worker: Proc | None = None
        self.webs: list[Proc] = []  # every web and worker now running, by slot
        self.workers: list[Proc] = []
        self.web_ports: list[int] = []
        self.bare: Proc | None = None
        self._redis_argv: list[str] = []
        self._incarnations: collections.Counter[str] = collections.Counter()
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
        self._incarnations[name] += 1
        again = self._incarnations[name]
        log_path = self.tmp / (f"{name}.log" if again == 1 else f"{name}.{again}.log")
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
        webs: int = 1,
        workers: int = 1,
        aof: bool = False,
        env: dict[str, str | None] | None = None,
        policy: dict[str, dict[str, object]] | None = None,
        timeouts: dict[str, int] | None = None,
        channels: tuple[str, ...] = (),
    ) -> None:
        """Start redis-server, the fakes, webs web processes and workers worker processes (and
        the bare endpoint). aof: redis-server keeps an append-only file fsynced at every write
        (--appendfsync always), so a restart loses nothing it acknowledged. env changes the
        processes' environment (None removes a variable, e.g. to use the bridge's default);
        policy: single-line settings of the bench policy changed (write_policy's settings);
        timeouts: its [timeouts]; channels: more channels whose members fake Slack knows (a pool
        of case channels)."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis_port = free_port()
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
        argv = [binary, "--port", str(self.redis_port), "--bind", HOST, "--save", "", *persistence]
        self._redis_argv = [*argv, "--dir", str(redis_dir)]
        self._spawn("redis", self._redis_argv)
        self.redis = redis_sync.Redis(host=HOST, port=self.redis_port, socket_timeout=5)
        self._wait_redis(self.procs[-1], 10)

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
        # The tree's bridge (this checkout's unless another is given), not whatever checkout the
        # interpreter has installed (editable).
        self.env["PYTHONPATH"] = os.pathsep.join([str(self.tree), *filter(None, [self.env.get("PYTHONPATH")])])
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        commands = procfile_commands(self.tree)
        self._web_command = commands["web"]
        self._worker_argv = shlex.split(os.path.expandvars(commands["worker"]))
        for slot in range(webs):
            port = free_port()
            self.web_ports.append(port)
            self.webs.append(
                self._spawn(_slot_name("web", slot), uvicorn_argv(self._web_command, port), self._web_env(port))
            )
        self.web, self.web_port = self.webs[0], self.web_ports[0]
        for slot in range(workers):
            self.workers.append(self._spawn(_slot_name("worker", slot), self._worker_argv, self.env))
        self.worker = self.workers[0]
        if bare:
            self.bare_port = free_port()
            bare_env = self._web_env(self.bare_port)
            bare_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), bare_env["PYTHONPATH"]])
            self.bare = self._spawn("bare", uvicorn_argv(self._web_command, self.bare_port, BARE_APP), bare_env)
        for proc, port in [*zip(self.webs, self.web_ports, strict=True), (self.bare, self.bare_port)]:
            if proc is not None:
                self._wait_healthy(proc, port)
        keys = bridge_keys()
        deadline = time.monotonic() + 30
        while keys is not None and self.workers and not self.r.exists(keys.router_lease):
            if not all(w.alive() for w in self.workers) or time.monotonic() > deadline:
                raise RuntimeError("worker did not start leading:\n" + self.worker.log_tail())
            time.sleep(0.05)
        if keys is None:
            time.sleep(3)  # no lease to watch: give the worker time to start

    def _web_env(self, port: int) -> dict[str, str]:
        return dict(self.env, PORT=str(port))

    def _wait_redis(self, proc: Proc, timeout: float) -> None:
        """Until redis-server answers PING (after loading its append-only file, if any)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.r.ping()
                return
            except (redis_sync.ConnectionError, redis_sync.BusyLoadingError, redis_sync.TimeoutError):
                if time.monotonic() > deadline or not proc.alive():
                    raise RuntimeError("redis-server did not start:\n" + proc.log_tail()) from None
                time.sleep(0.02)

    @property
    def web_urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.web_ports]

    def kill_worker(self, slot: int) -> Proc:
        """SIGKILL the worker in this slot (no clean stop: it holds what it held) and reap it."""
        proc = self.workers[slot]
        with contextlib.suppress(ProcessLookupError):
            proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(10)
        return proc

    def start_worker(self, slot: int) -> Proc:
        """A new worker process in this slot (the one there must have exited)."""
        if self.workers[slot].alive():
            raise RuntimeError(f"worker slot {slot} is still running")
        proc = self._spawn(_slot_name("worker", slot), self._worker_argv, self.env)
        self.workers[slot] = proc
        if slot == 0:
            self.worker = proc
        return proc

    def restart_redis(self, *, kill: bool = True) -> float:
        """Stop redis-server (SIGKILL, or SIGTERM with kill=False) and start it again on its port
        with the same options, then wait until it answers. Returns how long it was down (s)."""
        began = time.monotonic()
        self.stop_redis(kill=kill)
        self.start_redis()
        return time.monotonic() - began

    def stop_redis(self, *, kill: bool = True) -> None:
        old = next(p for p in self.procs if p.name == "redis" and p.alive())
        if kill:
            old.popen.send_signal(signal.SIGKILL)
            old.popen.wait(10)
        else:
            old.stop()

    def start_redis(self) -> None:
        """redis-server again on its port, with the same options and files; once it answers."""
        new = self._spawn("redis", self._redis_argv)
        self.procs.remove(new)
        self.procs.insert(0, new)  # stopped last, after everything that talks to it
        self._wait_redis(new, 30)

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
        keys = bridge_keys()
        if keys is not None:
            return self._inbound(keys) == 0 and int(self.r.zcard(keys.due)) == 0
        before = len(self.slack.requests) + len(self.line.requests)
        time.sleep(0.5)
        return len(self.slack.requests) + len(self.line.requests) == before

    def _inbound(self, keys: Any) -> int:
        """Entries in the inbound stream, in every partition of it (a tree without partitions:
        its one stream)."""
        count = int(self.env.get("BRIDGE_ROUTER_PARTITIONS", "1"))
        streams = [keys.inbound_of(p) for p in range(count)] if hasattr(keys, "inbound_of") else [keys.inbound]
        return sum(int(self.r.xlen(stream)) for stream in streams)

    def backlog(self) -> int | None:
        """Entries in the inbound stream, every partition's (None if it cannot be read)."""
        keys = bridge_keys()
        try:
            return self._inbound(keys) if keys is not None else None
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
        for p in [*self.webs, *self.workers, self.bare]:
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
        """Warnings and errors in the web, worker and bare logs (the bridge never logs content), by
        log file: web, worker, bare; with more processes web2, worker2, and worker.3 for the
        third process started in the first worker slot."""
        out = {}
        for proc in self.procs:
            if proc.name == "redis" or proc.log_path is None or not proc.log_path.exists():
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
            out[proc.log_path.name.removesuffix(".log")] = {
                "lines": len(rows),
                "levels": dict(levels),
                "samples": samples,
            }
        return out


def _slot_name(kind: str, slot: int) -> str:
    """web, web2, web3, ...: the first of each keeps the name the relay bench reads."""
    return kind if slot == 0 else f"{kind}{slot + 1}"
