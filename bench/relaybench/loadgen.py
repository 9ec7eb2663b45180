"""The load generator: a process of its own (so it does not share the GIL with the fakes), which
sends blocks of signed LINE webhooks open loop, at a fixed rate, whatever the answers take.

The parent sends a block's spec; the child builds every request beforehand, opens a few
keep-alive connections and answers "ready"; the parent takes its readings and says "go"; the
child reports when it started (wall clock) and, at the end, every request's answer time, how
late it was sent against the schedule, and its status. One process serves the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from dataclasses import asdict, dataclass
from typing import Any

from .common import Stop, child_id, line_body, line_headers, marker, message_text
from .http_client import Pool, build_request
from .system import own_cpu_seconds


@dataclass(frozen=True)
class Block:
    """n signed LINE webhooks (child i % children, marker run+tag+i) at rate per second to port."""

    port: int
    rate: float
    n: int
    run: str
    tag: str
    children: int
    path: str = "/line/webhook"
    first_index: int = 0


def _requests(block: Block) -> list[bytes]:
    out = []
    for i in range(block.first_index, block.first_index + block.n):
        body = line_body(child_id(i % block.children), message_text(marker(block.run, block.tag, i)))
        out.append(build_request("POST", block.path, block.port, body, line_headers(body)))
    return out


async def _open_loop(conn: Any, block: Block) -> dict[str, Any]:
    raws = _requests(block)
    n = len(raws)
    answer = [float("nan")] * n
    lag = [float("nan")] * n
    status = [0] * n
    pool = Pool(block.port)
    await pool.warm(build_request("GET", "/healthz", block.port, b"", {}), 8)
    conn.send(("ready", None))
    if not conn.poll(60) or conn.recv() != "go":
        raise RuntimeError("no go from the parent")
    cpu0 = own_cpu_seconds()

    async def one(i: int, scheduled: float) -> None:
        start = time.perf_counter()
        lag[i] = start - scheduled
        try:
            status[i] = await pool.request(raws[i])
        except Exception:
            status[i] = -1
        answer[i] = time.perf_counter() - start

    tasks = []
    t0 = time.perf_counter() + 0.02
    t0_wall = time.time() + (t0 - time.perf_counter())
    conn.send(("started", t0_wall))
    for i in range(n):
        scheduled = t0 + i / block.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    sent_for = time.perf_counter() - t0
    _, pending = await asyncio.wait(tasks, timeout=30) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    wall = time.perf_counter() - t0
    await pool.close()
    return {
        "answer": answer,
        "lag": lag,
        "status": status,
        "t0_wall": t0_wall,
        "sent_for": sent_for,
        "wall": wall,
        "unfinished": len(pending),
        "cpu_s": own_cpu_seconds() - cpu0,
        "connections_opened": pool.opened,
        "reconnected": pool.retried,
    }


def _child(conn: Any) -> None:
    """The load generator's main loop: one block per ("block", spec) until ("quit", None)."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        while True:
            kind, spec = conn.recv()
            if kind == "quit":
                return
            try:
                conn.send(("result", run(_open_loop(conn, Block(**spec)))))
            except Exception as exc:  # report instead of hanging the parent
                conn.send(("error", repr(exc)))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:
        with contextlib.suppress(OSError):
            conn.close()


class LoadGen:
    """The parent's handle on the load generator process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=_child, args=(child,), daemon=True, name="bench-loadgen")
        self._proc.start()
        child.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def _expect(self, kind: str, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise Stop(f"the load generator sent no {kind!r} within {timeout:.0f}s")
        got, value = self._conn.recv()
        if got == "error":
            raise RuntimeError(f"load generator failed: {value}")
        if got != kind:
            raise RuntimeError(f"load generator said {got!r}, expected {kind!r}")
        return value

    def prepare(self, block: Block) -> None:
        """Hand over a block and wait until its requests are built and connections open."""
        self._conn.send(("block", asdict(block)))
        self._expect("ready", 120)

    def go(self) -> float:
        """Start the prepared block; the wall-clock time its schedule starts at."""
        self._conn.send("go")
        return float(self._expect("started", 30))

    def result(self, block: Block) -> dict[str, Any]:
        return dict(self._expect("result", block.n / block.rate + 90))

    def run(self, block: Block) -> dict[str, Any]:
        self.prepare(block)
        self.go()
        return self.result(block)

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(("quit", None))
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        with contextlib.suppress(OSError):
            self._conn.close()
