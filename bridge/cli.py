"""bridge serve | worker | demo | check-config | hours | audit | set-aside | purge | pseudonym-key."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import time
import unicodedata
from datetime import datetime, tzinfo
from pathlib import Path

from bridge.adapters.slack.render import render
from bridge.config.policy_file import describe_policy, load_policy
from bridge.config.redis_url import RedisTarget, redis_target_from_environment
from bridge.config.settings import load_settings
from bridge.config.startup import EXIT_CODE, STARTUP_ERRORS, startup_error_line
from bridge.core.ids import CaseNumber
from bridge.core.schedule import wording
from bridge.logs import configure_logging

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
    from bridge.adapters.redis.connect import open_redis
    from bridge.engine.worker import Worker

    settings = load_settings()
    policy = load_policy(settings.BRIDGE_CONFIG)
    # Reads wait at most 1 s (XREADGROUP BLOCK, pub/sub polls); 10 s means Redis is gone.
    redis = open_redis(settings.redis_target, socket_timeout=10)
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


# The case channel the samples of check-config link to (any channel ID would do).
SAMPLE_CHANNEL = "C0123456789"


def _check_config(args: argparse.Namespace) -> int:
    path = Path(args.path or os.environ.get("BRIDGE_CONFIG", "config/bridge.toml"))
    policy = load_policy(path)
    print(f"{path}: valid\n")
    print(describe_policy(policy, show=lambda text: render(text, channel=SAMPLE_CHANNEL)))
    return 0


def _hours(args: argparse.Namespace) -> int:
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
    print(f"hours: {policy.hours_summary()}\n")
    print(wording.week_report(policy.schedule, at, weekdays=policy.texts["weekday_names"]))
    return 0


async def read_audit(
    target: RedisTarget, *, since: float, case: CaseNumber | None, retention_days: int
) -> list[dict[str, str]]:
    """The audit records from `since` on (of one case if given); records past retention are
    not shown (the worker drops them within a minute)."""
    from bridge.adapters.redis.connect import open_redis
    from bridge.adapters.redis.store import Store

    redis = open_redis(target, socket_timeout=10)
    try:
        store = Store(redis)
        return await store.audit_records(since=max(since, time.time() - retention_days * 86400), case=case)
    finally:
        await redis.aclose()


# What a terminal acts on or hides instead of showing: controls (C0, DEL and C1: ESC starts a
# sequence that can clear or rewrite the screen, CR returns over the line), format characters
# (bidi overrides and isolates such as U+202E, zero-width spaces and joiners, the BOM, the soft
# hyphen), the line and paragraph separators, and lone surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def visible(text: str) -> str:
    """text with every character a terminal would act on or hide written as an escape (\\x1b,
    \\r, \\u202e). A backslash is doubled, so a typed "\\x1b" cannot pass for an escaped one."""
    shown = []
    for char in text:
        if char in _SHORT_ESCAPES:
            shown.append(_SHORT_ESCAPES[char])
        elif unicodedata.category(char) in _HIDDEN_CATEGORIES:
            code = ord(char)
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            shown.append(char)
    return "".join(shown)


def format_audit(record: dict[str, str], zone: tzinfo) -> str:
    """One audit record as a line: local time, case, action, who, how, reason. Every field is
    passed through visible(): a reason typed in Slack must not move the operator's cursor,
    clear the screen or reorder what the line shows."""
    at = datetime.fromtimestamp(float(record.get("at", "0")), zone).strftime("%Y-%m-%d %H:%M:%S")
    field = {name: visible(value) for name, value in record.items()}
    case = f"#{field['case']}" if field.get("case") else "-"
    via = f" ({field['via']})" if field.get("via") else ""
    reason = field.get("reason", "")
    return f"{at}  {case:>6}  {field.get('action', '?'):<18} {field.get('actor', '?')}{via}" + (
        f"  {reason}" if reason else ""
    )


def _audit(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from bridge.core.case import parse_case_number

    policy = load_policy(Path(args.config or os.environ.get("BRIDGE_CONFIG", "config/bridge.toml")))
    since = 0.0
    if args.since:
        try:
            start = datetime.fromisoformat(args.since)
        except ValueError:
            print(
                f"bridge: --since {args.since!r} is not a date (e.g. 2026-12-01 or 2026-12-01T13:00)", file=sys.stderr
            )
            return 2
        since = (start if start.tzinfo else start.replace(tzinfo=policy.timezone)).timestamp()
    case = None
    if args.case is not None:
        case = parse_case_number(args.case)
        if case is None:
            print(f"bridge: --case {args.case!r} is not a case number (e.g. 12)", file=sys.stderr)
            return 2
    target = redis_target_from_environment(os.environ)
    try:
        records = asyncio.run(read_audit(target, since=since, case=case, retention_days=policy.audit_retention_days))
    except (RedisError, OSError) as exc:
        print(f"bridge: cannot read the audit records from Redis ({type(exc).__name__})", file=sys.stderr)
        return 1
    for record in records:
        print(format_audit(record, policy.timezone))
    print(f"{len(records)} record(s); kept {policy.audit_retention_days} days", file=sys.stderr)
    return 0


# The modules the demo extra (pyproject.toml) installs. Production installs leave them out, so only
# `bridge demo` imports them (and bridge.demo, bridge.fakes), and only after checking they are there.
# lupa is named on its own: fakeredis imports without it and fails only at the first Lua script.
DEMO_MODULES = ("fakeredis", "lupa", "httpx")


def _missing_demo_modules() -> list[str]:
    missing = []
    for name in DEMO_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if exc.name != name:
                raise  # installed but broken: the traceback says why
            missing.append(name)
    return missing


def _demo(args: argparse.Namespace) -> int:
    missing = _missing_demo_modules()
    if missing:
        print(
            "bridge: the demo needs the demo extra (fake Redis, fake LINE and Slack servers), not installed here"
            f" (missing: {', '.join(missing)}); install it with: pip install -e '.[demo]'",
            file=sys.stderr,
        )
        return 2
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
    demo = commands.add_parser("demo", help="a scripted consultation against local fakes (needs the demo extra)")
    demo.add_argument("--verbose", action="store_true", help="show the bridge's own log lines")
    demo.set_defaults(run=_demo)
    hours = commands.add_parser("hours", help="the week ahead, and whether the service is open")
    hours.add_argument("--at", help="ISO time to look from (default: now); without an offset, the service's zone")
    hours.add_argument("--config", help="policy file (default: $BRIDGE_CONFIG or config/bridge.toml)")
    hours.set_defaults(run=_hours)
    audit = commands.add_parser("audit", help="print the record of control actions and automatic flags")
    audit.add_argument("--case", help="only this case (12 or #12)")
    audit.add_argument("--since", help="from this date or time on (ISO; without an offset, the service's zone)")
    audit.add_argument("--config", help="policy file (default: $BRIDGE_CONFIG or config/bridge.toml)")
    audit.set_defaults(run=_audit)
    from bridge.ops import purge, set_aside  # (set_aside imports bridge.cli for visible: not at the top)

    set_aside.add_parser(commands)
    purge.add_parser(commands)
    check = commands.add_parser("check-config", help="validate a policy file and show what it means")
    check.add_argument("path", nargs="?")
    check.set_defaults(run=_check_config)
    from bridge.ops import pseudonym_key

    pseudonym_key.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except STARTUP_ERRORS as exc:
        print(startup_error_line(exc), file=sys.stderr)
        return EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
