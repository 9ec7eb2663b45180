"""A process the rig started (its Popen and log), and the Procfile's web command as the rig runs it."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .common import HOST


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        try:
            self.popen.send_signal(signal.SIGCONT)  # in case it was ever stopped
            self.popen.terminate()
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def uvicorn_argv(command: str, port: int, app: str | None = None) -> list[str]:
    """The Procfile's web command for this port, listening on 127.0.0.1 only; with app, the same
    command serving another application."""
    argv = shlex.split(command.replace("$PORT", str(port)))
    for i, arg in enumerate(argv[:-1]):
        if arg == "--host":
            argv[i + 1] = HOST
    if app is not None:
        spots = [i for i, arg in enumerate(argv) if re.fullmatch(r"[\w.]+:[\w]+", arg)]
        if len(spots) != 1:
            raise RuntimeError(f"cannot find the application in the web command {command!r}")
        argv[spots[0]] = app
    return argv
