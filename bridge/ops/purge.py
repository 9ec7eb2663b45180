"""`bridge purge --case N --operator NAME [--yes]`: erase everything the bridge keeps about the
child of a case, on the request of a guardian or of the office.

The command writes nothing itself but a request: it checks that the case is known, says what
will go and asks to confirm, then records the request in the inbound stream. The worker's router
decides it in order with everything else (a message from the child arriving at the same moment is
decided wholly before it or wholly after it) and commits the erasure in one atomic step, as it
does a Slack control request. The command then waits for the audit record that says it was done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError

from bridge.adapters import operator
from bridge.adapters.redis.connect import open_redis
from bridge.adapters.redis.store import Store
from bridge.config.redis_url import RedisTarget, redis_target_from_environment
from bridge.core.case import parse_case_number
from bridge.core.ids import CaseNumber
from bridge.core.rules.purge import PURGE, operator_actor

POLL_S = 0.2


async def purge(
    target: RedisTarget,
    case: CaseNumber,
    name: str,
    *,
    confirm: Callable[[list[CaseNumber]], bool],
    wait_s: float,
    say: Callable[[str], None],
) -> int:
    """Check, confirm, request, wait for the outcome; returns the exit code."""
    redis = open_redis(target, socket_timeout=10)
    try:
        store = Store(redis)
        record = await store.case_record(case)
        if record is None:
            say(f"bridge: case #{case} is not known (never opened, or its record is gone already); nothing changed")
            return 1
        numbers = await store.case_numbers_of_child(record.child_key) if record.child_key else [case]
        if not confirm(numbers):
            say("bridge: not confirmed; nothing changed")
            return 1
        since = time.time() - 5  # the entry gets Redis's clock; allow for a little skew
        await store.record_events(operator.SOURCE, [(uuid.uuid4().hex, operator.purge_request(case, name))])
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for done in await store.audit_records(since=since, case=case):
                if done.get("actor") != operator_actor(name):
                    continue
                if done.get("action") == PURGE:
                    shown = ", ".join(f"#{n}" for n in numbers)
                    say(f"erased: case(s) {shown}; each thread the bridge knew got a note (Slack keeps its messages)")
                    return 0
                if done.get("action") == f"refused:{PURGE}":
                    say(f"bridge: the worker found no case #{case} (its record went meanwhile); nothing changed")
                    return 1
            await asyncio.sleep(POLL_S)
        say(
            f"bridge: the request is recorded, but no worker carried it out within {wait_s:g} s;"
            " it will be carried out when a worker runs (`bridge audit --case` shows when)"
        )
        return 3
    finally:
        await redis.aclose()


def purge_command(args: argparse.Namespace) -> int:
    case = parse_case_number(args.case)
    if case is None:
        print(f"bridge: --case {args.case!r} is not a case number (e.g. 12)", file=sys.stderr)
        return 2
    if not operator.valid_operator(args.operator):
        print("bridge: --operator is your name for the audit: 1 to 64 letters, digits or . _ @ -", file=sys.stderr)
        return 2
    if not args.yes and not sys.stdin.isatty():
        print("bridge: confirm with --yes when not at a terminal", file=sys.stderr)
        return 2

    def confirm(numbers: list[CaseNumber]) -> bool:
        shown = ", ".join(f"#{n}" for n in numbers)
        print(
            f"This erases everything the bridge keeps about the child of case #{case}: their case(s) {shown},"
            " their history, block and anything queued for them. An open case ends without a message to them."
            " Slack keeps its own messages.",
            file=sys.stderr,
        )
        if args.yes:
            return True
        return input(f"Type {case} to confirm: ").strip() == str(case)

    def say(line: str) -> None:
        print(line, file=sys.stderr if line.startswith("bridge:") else sys.stdout)

    target = redis_target_from_environment(os.environ)
    try:
        return asyncio.run(purge(target, case, args.operator, confirm=confirm, wait_s=args.wait, say=say))
    except (RedisError, OSError) as exc:
        print(f"bridge: cannot reach Redis ({type(exc).__name__}); nothing changed", file=sys.stderr)
        return 1


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`bridge purge ...`, registered by bridge/cli.py."""
    parser = commands.add_parser("purge", help="erase everything kept about the child of a case, on request")
    parser.add_argument("--case", required=True, help="a case of the child's (12 or #12)")
    parser.add_argument("--operator", required=True, help="your name, for the audit record")
    parser.add_argument("--yes", action="store_true", help="do not ask to confirm")
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for the worker (default 60)")
    parser.set_defaults(run=purge_command)
