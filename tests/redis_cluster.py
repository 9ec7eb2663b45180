"""A real Redis Cluster of three masters on 127.0.0.1, for the tests that run the bridge against a
cluster (conftest.py's redis_cluster fixture): three redis-server processes in cluster mode, joined
and given the 16384 slots by `redis-cli --cluster create`, as an operator makes one."""

from __future__ import annotations

import functools
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_sync

from bridge.adapters.redis.keys import CLUSTER_TAG, Keys
from bridge.fakes.harness import free_port

MASTERS = 3
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000 (redis-server's default)


@dataclass
class LocalCluster:
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """REDIS_URL for the bridge: every node, so the client can start from any of them."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @property
    def keys(self) -> Keys:
        return Keys(slot_tag=CLUSTER_TAG)

    def client(self) -> redis_sync.RedisCluster:
        return redis_sync.RedisCluster.from_url(f"redis://127.0.0.1:{self.ports[0]}")

    def node(self, port: int) -> redis_sync.Redis:
        """A plain client of one node: what it is sent goes to that node, redirected by nothing."""
        return redis_sync.Redis(port=port)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def node_ports(count: int) -> list[int]:
    """Ports whose cluster bus port (+10000) is free too, a moment ago: drawn like every other
    test port (under pytest-xdist, from this test process's own range, see free_port)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()  # outside pytest-xdist, one the kernel chose (its bus port may not exist)
        if port not in ports and port + BUS_OFFSET <= 65_535 and _bindable(port + BUS_OFFSET):
            ports.append(port)
    return ports


def start_cluster(server: str, cli: str, workdir: Path, *, timeout: float = 30) -> LocalCluster:
    """Start three masters, create the cluster, and wait until every node says cluster_state:ok.
    Raises (with what redis-cli said) if that does not happen within timeout; stops what it started."""
    cluster = LocalCluster(ports=node_ports(MASTERS))
    try:
        for port in cluster.ports:
            config = ["--cluster-enabled", "yes", "--cluster-config-file", str(workdir / f"nodes-{port}.conf")]
            not_kept = ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
            cluster.processes.append(
                subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1", *config, *not_kept],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.time() + timeout
        for port in cluster.ports:
            _wait(cluster.node(port).ping, deadline, f"node {port} did not start")
        nodes = [f"127.0.0.1:{port}" for port in cluster.ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        for port in cluster.ports:
            _wait(
                functools.partial(_cluster_ok, cluster.node(port)), deadline, f"node {port} never said cluster_state:ok"
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _cluster_ok(node: redis_sync.Redis) -> bool:
    # redis-py parses the reply of CLUSTER INFO into a dict of its fields.
    info: dict[str, str] = node.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]  # (untyped)
    return info.get("cluster_state") == "ok"


def _wait(ready: Callable[[], object], deadline: float, failure: str) -> None:
    while True:
        try:
            if ready():
                return
        except redis_sync.ConnectionError:
            pass
        if time.time() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)
