"""A small HTTP/1.1 client for load: prebuilt requests over a pool of keep-alive connections.

It costs far less CPU per request than httpx, which matters on a 2-core machine where the load
generator competes with what it measures. It understands what uvicorn answers (a status line,
headers, a Content-Length or chunked body) and nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib


def build_request(method: str, path: str, port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HttpError(Exception):
    pass


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def exchange(self, raw: bytes) -> tuple[int, bool]:
        """Send one request, read its answer; (status, whether the connection may be reused)."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0][:40]!r}")
        status = int(parts[1])
        length = -1
        chunked = False
        keep = True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                keep = False
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length >= 0:
            await self.reader.readexactly(length)
        else:
            await self.reader.read()  # until the server closes
            keep = False
        self.used += 1
        return status, keep


class Pool:
    """Keep-alive connections to one server. request() takes the most recently used idle one
    (so a few warm connections carry the load) or opens another, up to max_connections."""

    def __init__(self, port: int, max_connections: int = 256, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self._idle: list[_Conn] = []
        self._open = 0
        self._freed = asyncio.Condition()
        self.opened = 0
        self.retried = 0

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1
        return _Conn(reader, writer)

    async def _take(self) -> _Conn:
        async with self._freed:
            while not self._idle and self._open >= self.max_connections:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            async with self._freed:
                self._open -= 1
                self._freed.notify()
            raise

    async def _give_back(self, conn: _Conn | None) -> None:
        async with self._freed:
            if conn is None:
                self._open -= 1
            else:
                self._idle.append(conn)
            self._freed.notify()

    async def request(self, raw: bytes) -> int:
        """Send one prebuilt request; its status. A reused connection the server had closed
        (keep-alive timeout) is replaced once, transparently."""
        conn = await self._take()
        for attempt in (1, 2):
            reused = conn.used > 0
            try:
                status, keep = await conn.exchange(raw)
            except (OSError, asyncio.IncompleteReadError, HttpError, ValueError):
                conn.close()
                if attempt == 1 and reused:
                    self.retried += 1
                    try:
                        conn = await self._connect()
                    except BaseException:
                        await self._give_back(None)
                        raise
                    continue
                await self._give_back(None)
                raise
            except BaseException:
                conn.close()
                await self._give_back(None)
                raise
            if keep:
                await self._give_back(conn)
            else:
                conn.close()
                await self._give_back(None)
            return status
        raise AssertionError("unreachable")

    async def warm(self, raw: bytes, connections: int) -> None:
        """Open this many connections now (each used once with raw), so no measured request pays
        for a connect."""
        conns = [await self._take() for _ in range(connections)]
        for conn in conns:
            try:
                await conn.exchange(raw)
            except (OSError, asyncio.IncompleteReadError, HttpError, ValueError):
                conn.close()
                await self._give_back(None)
                continue
            await self._give_back(conn)

    async def close(self) -> None:
        async with self._freed:
            for conn in self._idle:
                conn.close()
            self._open -= len(self._idle)
            self._idle.clear()
