"""bridge serve | worker | demo | check-config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bridge.logs import configure_logging
from bridge.policy import PolicyError, describe_policy, load_policy
from bridge.settings import SettingsError, load_settings

log = logging.getLogger("bridge.cli")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.app import create_app

    configure_logging()
    settings = load_settings()
    load_policy(settings.BRIDGE_CONFIG)  # refuse to start on a bad policy file
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


async def run_worker() -> None:
    """The worker process: clients built here, stopped cleanly on SIGTERM or SIGINT."""
    from redis.asyncio import Redis

    from bridge.worker import Worker

    settings = load_settings()
    policy = load_policy(settings.BRIDGE_CONFIG)
    # Reads wait at most 1 s (XREADGROUP BLOCK, pub/sub polls); 10 s means Redis is gone.
    redis = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=10)
    worker = Worker.build(settings, policy, redis)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        await worker.close()
        await redis.aclose()


def _worker(_: argparse.Namespace) -> int:
    configure_logging()
    try:
        import uvloop  # installed with uvicorn[standard]; the web process uses it too
    except ImportError:
        asyncio.run(run_worker())
    else:
        uvloop.run(run_worker())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    path = Path(args.path or os.environ.get("BRIDGE_CONFIG", "config/bridge.toml"))
    policy = load_policy(path)
    print(f"{path}: valid\n")
    print(describe_policy(policy))
    return 0


def _hours(args: argparse.Namespace) -> int:
    from datetime import datetime

    policy = load_policy(Path(args.config or os.environ.get("BRIDGE_CONFIG", "config/bridge.toml")))
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"bridge: --at {args.at!r} is not an ISO time (e.g. 2026-12-01T13:00)", file=sys.stderr)
            return 2
        if at.tzinfo is None:
            at = at.replace(tzinfo=policy.timezone)  # a bare time means the service's own zone
    else:
        at = datetime.now(policy.timezone)
    print(f"hours: {policy.schedule.summary()}\n")
    print(policy.schedule.week_report(at))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bridge.demo import run_demo

    configure_logging("WARNING" if not args.verbose else "INFO")
    return asyncio.run(run_demo())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bridge", description="LINE–Slack consultation bridge")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web process (uvicorn)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.set_defaults(run=_serve)
    commands.add_parser("worker", help="run the router and delivery worker").set_defaults(run=_worker)
    demo = commands.add_parser("demo", help="a scripted consultation against local fakes")
    demo.add_argument("--verbose", action="store_true", help="show the bridge's own log lines")
    demo.set_defaults(run=_demo)
    hours = commands.add_parser("hours", help="the week ahead, and whether the service is open")
    hours.add_argument("--at", help="ISO time to look from (default: now); without an offset, the service's zone")
    hours.add_argument("--config", help="policy file (default: $BRIDGE_CONFIG or config/bridge.toml)")
    hours.set_defaults(run=_hours)
    check = commands.add_parser("check-config", help="validate a policy file and show what it means")
    check.add_argument("path", nargs="?")
    check.set_defaults(run=_check_config)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except (SettingsError, PolicyError) as exc:
        print(f"bridge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
