"""Running the bridge's own processes locally, as tests and benchmarks do.

The Procfile is the source of truth for how processes start; this module reads it and builds
the environment that points them at a Redis and the fake LINE and Slack servers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Credentials:
    """Made-up secrets shared by the bridge processes and the client that signs requests."""

    line_secret: str = "test-line-channel-secret"
    line_token: str = "test-line-access-token"
    slack_token: str = "xoxb-test-bot-token"
    slack_signing: str = "test-slack-signing-secret"
    pseudonym_key: str = "7e57" * 16  # 32 bytes in hex: BRIDGE_PSEUDONYM_KEY
    channel: str = "CCONSULT"
    supervisors: str = "CSUPER"


ALWAYS_OPEN: dict[str, list[str]] = {
    day: ["00:00-24:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def write_policy(
    directory: Path,
    *,
    hours: dict[str, list[str]],
    capacity: dict[str, int] | None = None,
    timeouts: dict[str, int] | None = None,
    name: str = "policy.toml",
    settings: Mapping[str, Mapping[str, object]] | None = None,
) -> Path:
    """The shipped policy file with its [hours], [capacity] and [timeouts] replaced, and single-line
    settings of other sections changed (settings={"roles": {"supervisors": ["U1"]}}); returns its path."""
    text = (ROOT / "config" / "bridge.toml").read_text(encoding="utf-8")
    start, end = text.index("[hours]"), text.index("[roles]")
    section = ["[hours]"] + [f"{day} = {json.dumps(windows)}" for day, windows in hours.items()]
    values = {"cases": 3, "busy_notice_seconds": 180, "closing_reminder_minutes": 15, **(capacity or {})}
    section += ["", "[capacity]"] + [f"{key} = {value}" for key, value in values.items()]
    limits = {
        "idle_warning_seconds": 480,
        "idle_close_seconds": 600,
        "soft_limit_warning_seconds": 3000,
        "soft_limit_seconds": 3600,
        "overtime_alert_seconds": 5400,
        "unanswered_alert_seconds": 300,
        **(timeouts or {}),
    }
    section += ["", "[timeouts]"] + [f"{key} = {value}" for key, value in limits.items()]
    text = text[:start] + "\n".join(section) + "\n\n" + text[end:]
    for table, changes in (settings or {}).items():
        head = text.index(f"\n[{table}]\n")
        for key, value in changes.items():
            line = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
            match = line.search(text, head)
            if match is None:
                raise KeyError(f"{table}.{key} is not a single-line setting of the shipped policy")
            text = text[: match.start()] + f"{key} = {json.dumps(value, ensure_ascii=False)}" + text[match.end() :]
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# Under pytest-xdist each test process ("gw0" to "gw5") takes ports from a range of its own,
# 10000-18999, in turn: a port one process found free cannot be handed to another process a
# moment later, nor taken by an outgoing connection (the kernel's ephemeral range starts at
# 32768 on Linux), before the server it was meant for binds it. A Redis Cluster node's bus
# port (its port + 10000) lands in 20000-28999, which nothing else hands out either.
_PORTS_PER_PROCESS = 1500
_FIRST_PORT = 10000
_RANGES = 6
# Where in its range a process starts: a child process that inherits PYTEST_XDIST_WORKER (and
# so the range) starts elsewhere in it than its parent did.
_handed_out = os.getpid() % _PORTS_PER_PROCESS


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (see above for test processes)."""
    global _handed_out
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    if worker and int(worker.group(1)) < _RANGES:
        base = _FIRST_PORT + int(worker.group(1)) * _PORTS_PER_PROCESS
        for _ in range(_PORTS_PER_PROCESS):
            port = base + _handed_out % _PORTS_PER_PROCESS
            _handed_out += 1
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue  # in use by something else on this machine
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_commands(root: Path = ROOT) -> dict[str, str]:
    """The Procfile's process types and their commands."""
    commands = {}
    for raw in (root / "Procfile").read_text().splitlines():
        name, _, command = raw.partition(":")
        if command.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def bridge_env(
    redis_url: str,
    line_url: str,
    slack_url: str,
    *,
    credentials: Credentials = Credentials(),
    extra: Mapping[str, str] | None = None,
    **more: str,
) -> dict[str, str]:
    """The environment for a web or worker process talking to these servers; ``extra`` and
    ``more`` add or override variables.

    Timeouts and leases are short so that failure tests finish in seconds.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "SLACK_", "BRIDGE_", "REDIS_"))}
    env.update(
        LINE_CHANNEL_SECRET=credentials.line_secret,
        LINE_CHANNEL_ACCESS_TOKEN=credentials.line_token,
        SLACK_BOT_TOKEN=credentials.slack_token,
        SLACK_SIGNING_SECRET=credentials.slack_signing,
        BRIDGE_PSEUDONYM_KEY=credentials.pseudonym_key,
        SLACK_CHANNEL_ID=credentials.channel,
        SLACK_SUPERVISOR_CHANNEL_ID=credentials.supervisors,
        REDIS_URL=redis_url,
        BRIDGE_CONFIG=str(ROOT / "config" / "bridge.toml"),
        LINE_API_BASE_URL=line_url,
        LINE_DATA_API_BASE_URL=line_url,
        SLACK_API_BASE_URL=slack_url + "/api/",
        BRIDGE_LEASE_SECONDS="3",
        BRIDGE_HTTP_TIMEOUT_SECONDS="2",
        BRIDGE_RETRY_MAX_BACKOFF_SECONDS="2",
        # No pacing of posts per channel (a test or benchmark of it turns it on): the tests send
        # bursts into one channel that no consultation would, and the fake Slack has no limit
        # unless a test sets one.
        BRIDGE_SLACK_CHANNEL_POSTS_PER_SECOND="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    env.update(more)
    # The Procfile's commands (uvicorn, bridge) live next to this interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
