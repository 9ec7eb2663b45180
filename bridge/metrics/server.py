"""The worker's metrics server: GET /metrics on a port of its own.

Which port: $PORT when the environment gives one (a Procfile runner such as honcho gives each
process its own), else BRIDGE_METRICS_PORT, else none: not served. Said once at start. A port
that another process already listens on stops the worker with a message naming it, so two
workers on one machine never share (or silently miss) a port.

A small aiohttp app in the worker's own event loop, rather than prometheus_client's
start_http_server (a thread of its own): nothing runs beside the loop, it stops with the worker,
and a port in use is an exception at start, before the worker takes any work.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge.metrics.registry import TEXT_FORMAT, exposition

log = logging.getLogger("bridge.worker")

HOST = "0.0.0.0"  # like the web process: Prometheus scrapes from another machine


@dataclass(frozen=True)
class MetricsPort:
    port: int  # 0: any free port (the one taken is logged)
    setting: str  # the variable it came from


def choose_port(*, port: int | None, metrics_port: int | None) -> MetricsPort | None:
    """Where the worker serves its metrics: PORT first, then BRIDGE_METRICS_PORT; None: nowhere."""
    if port is not None:
        return MetricsPort(port, "PORT")
    if metrics_port is not None:
        return MetricsPort(metrics_port, "BRIDGE_METRICS_PORT")
    return None


class MetricsPortRefused(Exception):
    """The metrics port cannot be listened on (another process has it, or it is not allowed)."""


class MetricsServer:
    """GET /metrics: the registry in Prometheus's text format."""

    def __init__(self, registry: CollectorRegistry, where: MetricsPort) -> None:
        self.registry = registry
        self.where = where
        self.port = where.port
        self._runner: web.AppRunner | None = None

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=exposition(self.registry), headers={"Content-Type": TEXT_FORMAT})

    async def start(self) -> None:
        """Listen, or raise MetricsPortRefused saying why."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        # reuse_port off: a port another process listens on is refused, never shared with it.
        site = web.TCPSite(runner, HOST, self.where.port, reuse_port=False)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            asked = f"port {self.where.port} ({self.where.setting})"
            if exc.errno == errno.EADDRINUSE:
                raise MetricsPortRefused(
                    f"the worker's metrics {asked} is already in use by another process; give each worker "
                    "a port of its own (a Procfile runner sets PORT per process), or unset "
                    "BRIDGE_METRICS_PORT to serve no metrics"
                ) from None
            raise MetricsPortRefused(f"the worker's metrics {asked} cannot be listened on: {exc.strerror}") from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])  # the port taken, when 0 (any) was asked

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_metrics(
    registry: CollectorRegistry, *, port: int | None, metrics_port: int | None
) -> MetricsServer | None:
    """Start the worker's metrics server where the settings say (or none), and say which."""
    where = choose_port(port=port, metrics_port=metrics_port)
    if where is None:
        log.info("metrics not served: neither PORT nor BRIDGE_METRICS_PORT is set")
        return None
    server = MetricsServer(registry, where)
    await server.start()
    log.info("metrics served on port %d (%s) at /metrics", server.port, where.setting)
    return server
