"""Readings of the machine from outside the processes: CPU time, who owns a socket, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc); NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def system_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (Linux /proc/stat); NaN if unknown."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def cores_used(
    cpu0: dict[str, float], cpu1: dict[str, float], wall: float, extra: dict[str, float] | None = None
) -> dict[str, float]:
    """CPU cores each of our processes kept busy over wall seconds, and "other": everything else
    on the machine (another test run, for example), which makes the figures noisy."""
    if wall <= 0:
        return {}
    ours = {k: (cpu1[k] - cpu0[k]) for k in cpu0 if not k.startswith("_")}
    ours.update(extra or {})
    out = {k: round(v / wall, 2) for k, v in ours.items()}
    system = cpu1["_system"] - cpu0["_system"]
    if system == system:  # not NaN
        out["other"] = round(max(0.0, system - sum(ours.values())) / wall, 2)
    return out


def cpu_ms_per(cpu0: dict[str, float], cpu1: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds each process used per one of n messages between two readings."""
    return {k: round((cpu1[k] - cpu0[k]) * 1000 / n, 3) for k in cpu0 if not k.startswith("_") and n > 0}


def socket_owners(pids: dict[str, int]) -> dict[int, str]:
    """Local TCP port -> process name, for sockets held by the given pids (Linux /proc)."""
    inode_port: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            parts = row.split()
            if len(parts) > 9:
                inode_port[parts[9]] = int(parts[1].rsplit(":", 1)[1], 16)
    owners: dict[int, str] = {}
    for name, pid in pids.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inode_port:
                owners[inode_port[target[8:-1]]] = name
    return owners


def machine_info() -> dict[str, Any]:
    cpu = ""
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        redis_version = subprocess.run(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--version"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        redis_version = ""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": redis_version,
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
