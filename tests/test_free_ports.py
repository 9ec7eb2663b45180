"""The ports the test harness hands out: under pytest-xdist, each test process draws from a
range of its own, in turn, so two processes never start servers on the same port."""

from __future__ import annotations

import socket

import pytest

from bridge.fakes import harness


def test_each_test_process_draws_distinct_ports_from_its_own_range(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: dict[str, list[int]] = {}
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setattr(harness, "_handed_out", 0)
        drawn[worker] = [harness.free_port() for _ in range(50)]
    for worker, ports in drawn.items():
        low = harness._FIRST_PORT + int(worker[2:]) * harness._PORTS_PER_PROCESS
        assert all(low <= port < low + harness._PORTS_PER_PROCESS for port in ports), worker
        assert len(set(ports)) == len(ports), worker
    assert not set(drawn["gw0"]) & set(drawn["gw1"])
    assert not set(drawn["gw1"]) & set(drawn["gw2"])
    # every port drawn, and a cluster node's bus port (+10000), is below the kernel's ephemeral
    # range, where outgoing connections live, and no bus port is a port handed out
    assert max(max(ports) for ports in drawn.values()) + 10_000 < 32768
    last = harness._FIRST_PORT + harness._RANGES * harness._PORTS_PER_PROCESS
    assert last <= harness._FIRST_PORT + 10_000


def test_a_port_in_use_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    monkeypatch.setattr(harness, "_handed_out", 0)
    first = harness.free_port()  # the first port of gw5's range that is free now
    monkeypatch.setattr(harness, "_handed_out", first - harness._FIRST_PORT - 5 * harness._PORTS_PER_PROCESS)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))
        busy.listen()
        after = harness.free_port()
    assert first < after < harness._FIRST_PORT + 6 * harness._PORTS_PER_PROCESS


def test_outside_xdist_the_kernel_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("", "gw6", "master"):  # no xdist, a process beyond the ranges, no worker name
        if name:
            monkeypatch.setenv("PYTEST_XDIST_WORKER", name)
        else:
            monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
        monkeypatch.setattr(harness, "_handed_out", 0)
        port = harness.free_port()
        assert harness._handed_out == 0, name  # no range was drawn from
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # it was free a moment ago, so binding it works now
