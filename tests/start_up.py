"""Starting the bridge's processes as a deployment would, for the tests of what each says when it
refuses to start: a good environment to change, the three commands, and one run of each."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from bridge.fakes.harness import procfile_commands

ROOT = Path(__file__).resolve().parent.parent

GOOD = {
    "LINE_CHANNEL_SECRET": "0123456789abcdef-line-secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "line-access-token-value",
    "SLACK_BOT_TOKEN": "xoxb-1-2-3-bot-token",
    "SLACK_SIGNING_SECRET": "abcdef0123456789-signing",
    "BRIDGE_PSEUDONYM_KEY": "5eed" * 16,
    "SLACK_CHANNEL_ID": "C0CASES",
    "SLACK_SUPERVISOR_CHANNEL_ID": "C0SUPER",
    "REDIS_URL": "redis://:redis-password-value@redis.internal:6379/0",
}


def start_env(changes: dict[str, str | None] | None = None) -> dict[str, str]:
    """GOOD with a Redis that is never reached (start-up stops first), the interpreter's path,
    and changes (None removes a variable)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "SYSTEMROOT")},
        **GOOD,
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    for name, value in (changes or {}).items():
        if value is None:
            del env[name]
        else:
            env[name] = value
    return env


def web_command() -> list[str]:
    """The Procfile's web command, run by this interpreter (so from this checkout) on any port."""
    argv = shlex.split(procfile_commands()["web"].replace("$PORT", "0"))
    assert argv[0] == "uvicorn"
    return [sys.executable, "-m", *argv]


def process_commands() -> dict[str, list[str]]:
    """bridge serve, bridge worker and the Procfile's web process (uvicorn's factory)."""
    return {
        "serve": [sys.executable, "-m", "bridge.cli", "serve", "--port", "0"],
        "worker": [sys.executable, "-m", "bridge.cli", "worker"],
        "web": web_command(),
    }


def start(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -m from the checkout, so the process runs this tree's bridge whatever the venv has installed.
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
