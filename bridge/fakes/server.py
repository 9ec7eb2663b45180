"""Base class for the fake HTTP APIs used by end-to-end tests and the in-process demo.

A ``FakeServer`` is a real aiohttp server on ``127.0.0.1`` (random port) running in a
daemon thread with its own event loop, so synchronous tests and asyncio code alike can
talk to it through the real SDK clients. Every request is recorded, and failures or
latency can be scripted per path, or failures drawn at random with a seed (faults.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from bridge.fakes.faults import Delay, Failure, JsonBody, RandomFailures, Script, path_matches

__all__ = ["FakeServer", "RecordedRequest", "json_response", "time_scale"]


def time_scale() -> float:
    """How much longer than written every wait of a test may take: ``BRIDGE_TEST_TIME_SCALE``
    (default 1), for slow or loaded machines. Waits end as soon as their condition holds, so a
    larger scale only makes a failing run take longer to report."""
    try:
        scale = float(os.environ.get("BRIDGE_TEST_TIME_SCALE", "1"))
    except ValueError:
        return 1.0
    return scale if scale >= 1 else 1.0


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    # Parsed JSON body, or the fields of a form-encoded body, or None.
    json: Any
    # What the fake answered; 0 while still being handled (e.g. delayed) or if never answered.
    status: int = 0
    # What normal handling answered, so whether the request took effect (200): it differs from
    # status after a failure injected after handling; 0 when it never reached normal handling.
    handled_status: int = 0
    at: float = field(default_factory=time.time)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Build a JSON response (compact, UTF-8, no ASCII escaping like the real APIs)."""
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode("utf-8"),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
        charset="utf-8",
    )


def _parse_body(content_type: str, body: bytes) -> Any:
    """Decode JSON or form bodies; anything else (or garbage) yields None."""
    if not body:
        return None
    if content_type == "application/x-www-form-urlencoded":
        try:
            return dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return None
    if content_type == "application/json" or body[:1] in (b"{", b"["):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return None


class FakeServer:
    """A real HTTP server in a background thread; subclasses implement :meth:`handle`."""

    #: Seconds the server waits for in-flight (e.g. deliberately delayed) handlers on stop.
    shutdown_timeout: float = 0.5

    def __init__(self) -> None:
        # RLock: subclass handlers run under it and may call public accessors.
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._script = Script()  # fail_next, delay_next, fail_randomly
        self._latency: dict[str, float] = {}
        self._gates: set[str] = set()  # paths whose requests wait until released
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._inflight: set[asyncio.Task[Any]] = set()  # handler tasks, touched on the server loop only

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start serving and block until the socket is listening; returns self."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application(client_max_size=32 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._entry)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.shutdown_timeout)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._runner = runner
            self._port = int(runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # surfaced to start()'s caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"{type(self).__name__}-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10.0):
            raise RuntimeError(f"{type(self).__name__} did not start within 10s")
        if errors:
            self._thread.join()
            loop.close()
            self._thread = None
            self._loop = None
            raise RuntimeError(f"{type(self).__name__} failed to start") from errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and release the socket, thread and event loop (idempotent)."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(runner), loop).result(timeout=10.0)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10.0)
            loop.close()
            self._loop = self._thread = self._runner = None
            self._port = None

    async def _shutdown(self, runner: web.AppRunner | None) -> None:
        # Cancel handlers still sleeping on an injected delay first, so cleanup does not wait
        # for them; then cancel whatever is left so the loop closes with no pending tasks.
        await _cancel_all(self._inflight)
        if runner is not None:
            await runner.cleanup()
        await _cancel_all({t for t in asyncio.all_tasks() if t is not asyncio.current_task()})

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path equals ``path`` (or matches it as an fnmatch pattern)."""
        return [r for r in self.requests if path_matches(path, r.path)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0, message: str = "") -> None:
        """Poll ``predicate`` until true; raise AssertionError with context on timeout.

        The timeout is multiplied by :func:`time_scale`."""
        deadline = time.monotonic() + timeout * time_scale()
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(predicate, timeout, message))
            time.sleep(0.01)

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 20.0, message: str = "") -> None:
        """Like :meth:`wait_for` but yields to the caller's event loop while polling."""
        deadline = time.monotonic() + timeout * time_scale()
        while True:
            if predicate():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_message(predicate, timeout, message))
            await asyncio.sleep(0.01)

    def _timeout_message(self, predicate: Callable[[], bool], timeout: float, message: str) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        recent = self.requests[-10:]
        lines = [f"{type(self).__name__}: condition {name} not met within {timeout}s"]
        if message:
            lines.append(message)
        lines.append(f"{len(self._requests)} request(s) recorded; most recent:")
        lines += [f"  {r.method} {r.path} -> {r.status or 'pending'} {_short(r.body)}" for r in recent]
        return "\n".join(lines)

    # ------------------------------------------------------------------ injection

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: bytes | dict[str, Any] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with this canned response.

        The request is recorded but never reaches normal handling, so fake state is untouched.
        ``path`` may be an fnmatch pattern (``/v2/bot/profile/*``). ``body=None`` uses the
        subclass's API-shaped default error body. Injections for one path form a FIFO script
        shared with :meth:`delay_next`.
        """
        failure = Failure(status, dict(headers or {}), body, delay)
        with self._lock:
            self._script.add(path, failure, times)

    def delay_next(self, path: str, seconds: float, times: int = 1) -> None:
        """Sleep ``seconds`` before normally handling the next ``times`` requests to ``path``."""
        with self._lock:
            self._script.add(path, Delay(seconds), times)

    def fail_randomly(
        self,
        path: str,
        rate: float,
        *,
        statuses: tuple[int, ...] = (500, 502, 503),
        seed: int = 0,
        after_handling: float = 0.0,
    ) -> None:
        """Answer each request to ``path`` (or matching it as a pattern) with one of ``statuses``,
        with probability ``rate``, drawn from a generator seeded with ``seed``: the same seed and
        the same sequence of requests give the same failures. Of the failures, the share
        ``after_handling`` is answered after normal handling (the request took effect: a gateway
        that gave up after the backend acted). Scripted ``fail_next``/``delay_next`` actions come
        first; ``rate=0`` turns it off. The body is the subclass's API-shaped error body."""
        failures = RandomFailures(rate, statuses, seed=seed, after_handling=after_handling)
        with self._lock:
            self._script.set_random(path, failures if rate > 0 else None)

    def set_delay(self, path: str, seconds: float) -> None:
        """Add permanent latency to every request to ``path`` (``0`` clears it)."""
        with self._lock:
            if seconds > 0:
                self._latency[path] = seconds
            else:
                self._latency.pop(path, None)

    def stall(self, path: str) -> None:
        """Keep every request to ``path`` (or matching it as a pattern) waiting, recorded but
        unanswered, until :meth:`unstall`. Unlike a delay, this does not depend on how fast the
        machine is: a test decides when the answers come."""
        with self._lock:
            self._gates.add(path)

    def unstall(self, path: str) -> None:
        """Let the requests stalled by :meth:`stall` for ``path`` go on."""
        with self._lock:
            self._gates.discard(path)

    def _stalled(self, path: str) -> bool:
        with self._lock:
            return any(path_matches(gate, path) for gate in self._gates)

    def reset(self) -> None:
        """Forget records, injections, latency, stalls and all fake state."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._latency.clear()
            self._gates.clear()
            self._reset_state()

    # ------------------------------------------------------------------ subclass hooks

    def handle(self, request: RecordedRequest) -> web.Response:
        """Answer a request normally; called with the lock held. Subclasses override."""
        return json_response({"message": "Not found"}, status=404)

    def _reset_state(self) -> None:
        """Clear subclass state; called by :meth:`reset` with the lock held."""

    def _default_failure(self, status: int) -> tuple[dict[str, str], JsonBody]:
        """Headers and body used by ``fail_next`` when the test gave no body."""
        return {}, {"message": f"Injected failure {status}"}

    # ------------------------------------------------------------------ internals

    def _latency_for(self, path: str) -> float:
        return sum(s for p, s in self._latency.items() if path_matches(p, path))

    def _failure_response(self, failure: Failure) -> web.Response:
        default_headers, default_body = self._default_failure(failure.status)
        headers = {**default_headers, **failure.headers}
        body = default_body if failure.body is None else failure.body
        if isinstance(body, Mapping):
            return json_response(dict(body), status=failure.status, headers=headers)
        return web.Response(body=body or b"", status=failure.status, headers=headers)

    async def _entry(self, request: web.Request) -> web.Response:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            json=_parse_body(request.content_type, body),
        )
        with self._lock:
            self._requests.append(record)
            action = self._script.next_for(record.path)
            delay = self._latency_for(record.path)
        if isinstance(action, Failure):
            delay += action.delay
        elif isinstance(action, Delay):
            delay += action.seconds
        if delay > 0:
            await asyncio.sleep(delay)
        while self._stalled(record.path):
            await asyncio.sleep(0.005)
        if isinstance(action, Failure) and not action.after_handling:
            response = self._failure_response(action)
        else:
            with self._lock:
                try:
                    response = self.handle(record)
                except Exception as exc:  # a fake bug should show up as a 500, not a hang
                    response = json_response({"message": f"fake server error: {exc!r}"}, status=500)
            record.handled_status = response.status
            if isinstance(action, Failure):
                response = self._failure_response(action)
        record.status = response.status
        return response


async def _cancel_all(tasks: set[asyncio.Task[Any]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _short(body: bytes, limit: int = 120) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
