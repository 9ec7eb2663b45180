"""Counting Redis work from outside the processes, by process.

Round trips: the kernel counts, for every TCP connection, the segments that carried data. On the
Redis server's side of a client's connection, ``data_segs_in`` (read with ``ss -ti``) is the
number of times the client sent something: one command, one pipeline (MULTI/EXEC or not) and one
script call are one each, because redis-py writes a whole pipeline at once (TCP_NODELAY, small
requests, loopback MSS of 64 KiB) and waits for the answer before it sends again. Connections
are attributed to the web or the worker through their client port (``/proc``). The server's
``INFO stats total_reads_processed`` (one per read event, every client together) is kept beside
it as a cross-check.

Commands: a ``MONITOR`` connection, read by a thread, sees every command, each command of a
pipeline and (as ``lua``) each command a script runs; those follow their EVALSHA on the same
single-threaded server, so they are attributed to the script's caller. ``INFO commandstats``
gives the server's own total as a cross-check.
"""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .common import HOST
from .rig import Rig
from .system import socket_owners

MONITOR_RE = re.compile(r'^\+(\d+\.\d+) \[\d+ ([^\]]+)\] "([^"]*)"')
SEGS_RE = re.compile(r"\bdata_segs_in:(\d+)")
BENCH_ONLY = {"info", "monitor", "client|list", "config|resetstat"}  # commands only the bench sends


class Monitor:
    """A raw MONITOR connection read by a thread; keeps (time, client address, command, whether
    a script ran it) tuples. A script's commands carry the address of the client that called it."""

    def __init__(self, port: int, max_seconds: float, max_lines: int = 3_000_000) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[tuple[float, str, str, bool]] = []
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
        caller = "unknown"
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
                    addr, in_script = m.group(2), m.group(2) == "lua"
                    if not in_script:
                        caller = addr
                    self.lines.append((float(m.group(1)), caller, m.group(3).upper(), in_script))
        finally:
            self._ready.set()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        with contextlib.suppress(OSError):
            self.sock.close()

    def tally(self, owners: dict[int, str], t0: float, t1: float) -> dict[str, dict[str, collections.Counter[str]]]:
        """name -> {"client": commands it sent, "script": commands its scripts ran} in [t0, t1)."""
        out: dict[str, dict[str, collections.Counter[str]]] = collections.defaultdict(
            lambda: {"client": collections.Counter(), "script": collections.Counter()}
        )
        for ts, addr, cmd, in_script in self.lines:
            if t0 <= ts < t1:
                out[owner_of(addr, owners)]["script" if in_script else "client"][cmd] += 1
        return out


def owner_of(addr: str, owners: dict[int, str]) -> str:
    try:
        return owners.get(int(addr.rsplit(":", 1)[1]), "unknown")
    except (ValueError, IndexError):
        return "unknown"


def server_segments(redis_port: int) -> dict[int, int] | None:
    """Client port -> data segments the server received on that connection so far (ss -ti);
    None when ss is missing or fails."""
    binary = shutil.which("ss")
    if binary is None:
        return None
    try:
        text = subprocess.run(
            [binary, "-tinH", "state", "established", f"( sport = :{redis_port} )"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    out: dict[int, int] = {}
    peer: int | None = None
    for line in text.splitlines():
        if line[:1].isspace():
            if peer is not None:
                found = SEGS_RE.search(line)
                out[peer] = int(found.group(1)) if found else 0
                peer = None
            continue
        fields = line.split()
        if len(fields) >= 4:
            with contextlib.suppress(ValueError):
                peer = int(fields[3].rsplit(":", 1)[1])
                out[peer] = 0
    return out


@dataclass
class Reading:
    """One look at Redis and the processes: round-trip counters by connection, who owns each
    connection, the server's read events and command calls, CPU seconds, and when."""

    wall: float
    mono: float
    segments: dict[int, int] | None
    owners: dict[int, str]
    reads: int
    calls: dict[str, int]
    cpu: dict[str, float] = field(default_factory=dict)


def read(rig: Rig) -> Reading:
    segments = server_segments(rig.redis_port)
    owners = socket_owners(rig.pids())
    stats = rig.r.info("stats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in rig.r.info("commandstats").items()}
    return Reading(
        time.time(), time.monotonic(), segments, owners, int(stats["total_reads_processed"]), calls, rig.cpu()
    )


def round_trips(a: Reading, b: Reading) -> dict[str, int] | None:
    """Round trips each process made between two readings (None without ss). A connection
    opened in between counts from zero; "closed" counts connections that went away (their last
    round trips are lost to the count)."""
    if a.segments is None or b.segments is None:
        return None
    out: collections.Counter[str] = collections.Counter()
    for port, segs in b.segments.items():
        name = b.owners.get(port) or a.owners.get(port) or "unknown"
        out[name] += segs - a.segments.get(port, 0)
    out["closed"] = sum(1 for port in a.segments if port not in b.segments)
    return dict(out)


def server_calls(a: Reading, b: Reading) -> int:
    """Commands the server ran between two readings (scripts' commands included), leaving out
    what only the bench sends (INFO, MONITOR)."""
    return sum(n - a.calls.get(c, 0) for c, n in b.calls.items() if c not in BENCH_ONLY)
