"""Shared fixtures: a real redis-server, the fake LINE and Slack servers, and the bridge's
own processes started from the Procfile as subprocesses."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlencode

import httpx
import pytest
import redis as redis_sync

from bridge.adapters.line import webhook as line_side
from bridge.adapters.redis.keys import CLUSTER_TAG, Keys, inbound_streams
from bridge.adapters.slack import verify as slack_side
from bridge.fakes.harness import ALWAYS_OPEN as ALWAYS_OPEN
from bridge.fakes.harness import Credentials, bridge_env, free_port, procfile_commands
from bridge.fakes.harness import write_policy as write_policy
from bridge.fakes.line import FakeLine
from bridge.fakes.server import time_scale
from bridge.fakes.slack import FakeSlack
from tests.redis_cluster import LocalCluster, start_cluster

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = Credentials()
LINE_SECRET = CREDENTIALS.line_secret
LINE_TOKEN = CREDENTIALS.line_token
SLACK_TOKEN = CREDENTIALS.slack_token
SLACK_SIGNING = CREDENTIALS.slack_signing
PSEUDONYM_KEY = CREDENTIALS.pseudonym_key
CHANNEL = CREDENTIALS.channel


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def keys(self) -> Keys:
        return Keys()

    def client(self) -> redis_sync.Redis:
        return redis_sync.Redis.from_url(self.url)


def _installed(program: str) -> str:
    """The path of redis-server or redis-cli; a test that needs a missing one is skipped with the
    reason, or fails under REQUIRE_REDIS=1 (CI)."""
    binary = shutil.which(program)
    if binary is None:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but no {program} is installed")
        pytest.skip(f"no {program} installed (apt-get install redis-server); REQUIRE_REDIS=1 makes this fail")
    return binary


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _answering(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Until the redis-server on port answers PING (after loading its data, if any)."""
    client = redis_sync.Redis(port=port)
    deadline = time.time() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis_sync.ConnectionError:  # (BusyLoadingError is one: still loading)
                if time.time() > deadline or process.poll() is not None:
                    process.kill()
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = _installed("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = _spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    )
    _answering(port, process)
    yield RedisServer(port=port, process=process)
    process.terminate()
    process.wait(10)


@dataclass
class RestartableRedis(RedisServer):
    """A redis-server of one test's own that the test may kill and start again on its port. It
    keeps an append-only file fsynced at every write, as production's Redis must (see the
    README's Redis), so a restart loses nothing it acknowledged."""

    argv: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """SIGKILL, as a crash: no last save, connections reset."""
        self.process.kill()
        self.process.wait(10)

    def start(self) -> None:
        """Start it again on its port from its files, until it answers."""
        self.process = _spawn(self.argv)
        _answering(self.port, self.process, timeout=30)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    """A redis-server for this test only (RestartableRedis). A test module runs its bridges on it
    by overriding the redis_deployment and bridge_redis fixtures with it and a client of it."""
    port = free_port()
    workdir = tmp_path / "redis"
    workdir.mkdir()
    argv = [_installed("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(workdir)]
    server = RestartableRedis(port=port, process=_spawn(argv), argv=argv)
    _answering(port, server.process)
    yield server
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(10)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis_sync.Redis]:
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A Redis Cluster of three masters (tests/redis_cluster.py), started once for the session."""
    server, cli = _installed("redis-server"), _installed("redis-cli")
    cluster = start_cluster(server, cli, tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


# Where the bridge of a test keeps its state: one redis-server, or the Redis Cluster.
RedisDeployment: TypeAlias = RedisServer | LocalCluster
SyncRedis: TypeAlias = redis_sync.Redis | redis_sync.RedisCluster
EACH_REDIS = "each_redis"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked each_redis that starts a bridge runs twice: against one redis-server
    ([server]) and against the Redis Cluster ([cluster]). Unmarked tests use the server only."""
    if "redis_deployment" in metafunc.fixturenames and metafunc.definition.get_closest_marker(EACH_REDIS):
        metafunc.parametrize("redis_deployment", ["server", "cluster"], indirect=True)


@pytest.fixture
def redis_deployment(request: pytest.FixtureRequest) -> RedisDeployment:
    kind = getattr(request, "param", "server")
    deployment: RedisDeployment = request.getfixturevalue("redis_server" if kind == "server" else "redis_cluster")
    return deployment


@pytest.fixture
def bridge_redis(request: pytest.FixtureRequest, redis_deployment: RedisDeployment) -> Iterator[SyncRedis]:
    """A client of the test's Redis, emptied first: on one server, redis_db itself (so a test or
    fixture that also asks for redis_db shares its one emptying); on the cluster, every master."""
    if isinstance(redis_deployment, RedisServer):
        server_client: redis_sync.Redis = request.getfixturevalue("redis_db")
        yield server_client
        return
    client = redis_deployment.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fake_line() -> Iterator[FakeLine]:
    with FakeLine(access_token=LINE_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=SLACK_TOKEN) as fake:
        yield fake


# A LINE user ID as LINE writes it. Every ID the tests send is of this shape (line_user_id); the
# core's unit tests also name children "Uchild…", which no log may carry either.
LINE_USER_ID = re.compile(r"U[0-9a-f]{32}")


def line_user_id(n: int) -> str:
    """The nth child's LINE user ID, of LINE's form: U and 32 lowercase hex digits (an event from
    an ID of any other form is ignored)."""
    return f"U{n:032x}"


SECRETS = (LINE_SECRET, LINE_TOKEN, SLACK_TOKEN, SLACK_SIGNING, PSEUDONYM_KEY)


def _scannable(value: str) -> bool:
    """Whether a value is distinctive enough to look for in a log: short ASCII values ("1", "x",
    "A3") also occur in ids, counts and times, so they would make the scan fail for no leak."""
    value = value.strip()
    return len(value) >= 6 if value.isascii() else len(value) >= 2


@dataclass
class Sensitive:
    """Everything about a child that one test sent to the bridge, registered as it is sent.

    ``Bridge.line_post`` registers every body it sends, whichever helper built it, so a test
    cannot forget to: every text, LINE user, group and room ID, reply token, quote token and
    markAsRead token. At teardown every process log is searched for all of them and for the
    secrets, and everything the fake Slack received is searched for the IDs and tokens.
    """

    texts: set[str] = field(default_factory=set)
    line_ids: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)

    def note_line_body(self, body: bytes) -> None:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            # Not JSON (or, nested too deeply, not for Python's parser): the web process refuses
            # it without reading any content.
            return
        events = document.get("events") if isinstance(document, dict) else None
        for event in events if isinstance(events, list) else []:
            if isinstance(event, dict):
                self.note_line_event(event)

    def note_line_event(self, event: dict[str, Any]) -> None:
        def strings(container: Any, *names: str) -> list[str]:
            if not isinstance(container, dict):
                return []
            return [value for name in names if isinstance(value := container.get(name), str) and value]

        self.line_ids.update(strings(event.get("source"), "userId", "groupId", "roomId"))
        self.tokens.update(strings(event, "replyToken", "markAsReadToken"))
        message = event.get("message")
        self.tokens.update(strings(message, "quoteToken", "markAsReadToken"))
        for text in strings(message, "text"):
            self.texts.add(text)
            self.texts.update(line for line in text.splitlines() if line.strip())

    def leaks_in_log(self, log: str) -> list[str]:
        """What of this test's sensitive values (and the secrets) the log contains."""
        found = [f"secret {value[:4]}…" for value in SECRETS if value in log]
        found += [f"LINE ID {value!r}" for value in self.line_ids if value in log]
        found += [f"token {value!r}" for value in self.tokens if _scannable(value) and value in log]
        found += [f"child's text {value!r}" for value in self.texts if _scannable(value) and value in log]
        if LINE_USER_ID.search(log) or "Uchild" in log:
            found.append("a LINE user ID")
        return found

    def leaks_in_slack(self, received: str) -> list[str]:
        """What Slack must never see: LINE IDs and LINE's tokens (a child's words may go there)."""
        found = [f"LINE ID {value!r}" for value in self.line_ids if value in received]
        found += [f"token {value!r}" for value in self.tokens if _scannable(value) and value in received]
        if LINE_USER_ID.search(received):
            found.append("a LINE user ID")
        return found


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _port_taken(log: str) -> bool:
    """Whether a process stopped at start because its port was in use (uvicorn's or the metrics
    server's line)."""
    return "address already in use" in log or "is already in use by another process" in log


@dataclass
class Bridge:
    """The bridge's processes for one test, and helpers to talk to them like LINE and Slack do."""

    env: dict[str, str]
    tmp: Path
    fake_line: FakeLine
    fake_slack: FakeSlack
    redis: SyncRedis
    keys: Keys  # the key names in this Redis (one server's or a cluster's layout)
    sensitive: Sensitive = field(default_factory=Sensitive)
    processes: list[Process] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)

    def launch(self, kind: str, *, port: int | None = None) -> Process:
        """Start one Procfile process without waiting for it, on a free port of its own (as a
        Procfile runner gives one to each process) unless port says which."""
        command = procfile_commands()[kind]
        env = dict(self.env)
        env["PORT"] = str(port or free_port())
        argv = shlex.split(command.replace("$PORT", env["PORT"]))
        log_path = self.tmp / f"{kind}-{len(self.processes)}.log"
        with log_path.open("wb") as handle:  # the child keeps its own descriptor
            popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
        process = Process(kind, popen, log_path, port=int(env["PORT"]))
        self.processes.append(process)
        return process

    def wait_ready(self, process: Process, timeout: float = 20) -> None:
        """Web: /healthz answers. Worker: it logged that it started."""
        deadline = time.time() + timeout * time_scale()
        url = f"http://127.0.0.1:{process.port}"
        while True:
            if process.name == "web":
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        self.web_urls.append(url)
                        return
                except httpx.HTTPError:
                    pass
            elif "worker started" in process.log():
                return
            if process.popen.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{process.name} did not start:\n{process.log()}")
            time.sleep(0.05)

    def start(self, kind: str) -> Process:
        """Launch a process and wait until it is ready (see ready)."""
        return self.ready(self.launch(kind))

    def ready(self, process: Process) -> Process:
        """Wait until a launched process is ready. Its free port may be taken by another test's
        process before it binds (the suite runs in several processes side by side): then it exits
        saying so, and one of its kind is started again on another free port (at most three
        tries in all); the process that is ready is returned."""
        for attempt in range(3):
            try:
                self.wait_ready(process)
                return process
            except RuntimeError:
                if attempt == 2 or process.popen.poll() is None or not _port_taken(process.log()):
                    raise
                self.processes.remove(process)
                process = self.launch(process.name)
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        return self.web_urls[0]

    def wait_settled(self, timeout: float = 20) -> None:
        """Until the bridge has nothing left to do now: every recorded event decided (in every
        partition's stream), every delivery lane empty, and no request to a fake unanswered. What a
        test asserts after this has not merely not happened yet. (Deadlines still to come do not count.)"""
        keys = self.keys

        def idle() -> bool:
            unanswered = [r for r in (*self.fake_slack.requests, *self.fake_line.requests) if not r.status]
            streams = inbound_streams(keys, int(self.env.get("BRIDGE_ROUTER_PARTITIONS", "1")))
            waiting = sum(int(self.redis.xlen(stream)) for stream in streams)
            return not unanswered and waiting == 0 and self.redis.zcard(keys.due) == 0

        def settled() -> bool:  # idle twice, a moment apart: nothing was between two steps
            if not idle():
                return False
            time.sleep(0.05)
            return idle()

        self.fake_slack.wait_for(settled, timeout=timeout, message="the bridge did not settle")

    def logs(self) -> str:
        return "\n".join(f"===== {p.name} =====\n{p.log()}" for p in self.processes)

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()

    # --- talking like LINE ---

    def line_post(
        self, body: bytes, *, signature: str | None = None, unsigned: bool = False, url: str | None = None
    ) -> httpx.Response:
        """Post a body as LINE does, signed unless ``signature`` or ``unsigned`` says otherwise.
        Whatever it carries about a child is registered for the privacy scan at teardown."""
        self.sensitive.note_line_body(body)
        headers = {"Content-Type": "application/json"}
        if not unsigned:
            headers["X-Line-Signature"] = signature if signature is not None else line_side.sign(LINE_SECRET, body)
        return httpx.post((url or self.url) + "/line/webhook", content=body, headers=headers, timeout=10)

    def line_events(self, *events: dict[str, Any], url: str | None = None) -> httpx.Response:
        body = json.dumps({"destination": "Ubot", "events": list(events)}, ensure_ascii=False).encode()
        return self.line_post(body, url=url)

    # --- talking like Slack ---

    def slack_post(
        self, body: bytes, *, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        all_headers = {"Content-Type": content_type, **slack_side.sign(SLACK_SIGNING, body), **(headers or {})}
        return httpx.post(self.url + "/slack/events", content=body, headers=all_headers, timeout=10)

    def slack_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry: int = 0,
        team: str | None = None,
        app: str | None = None,
    ) -> httpx.Response:
        """Deliver an event as Slack's Events API does, from the fake's app and workspace unless
        ``team`` or ``app`` names others."""
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team or self.fake_slack.team_id,
                "api_app_id": app or self.fake_slack.app_id,
                "type": "event_callback",
                "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
                "event_time": int(time.time()),
                "event": event,
            }
        ).encode()
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        return self.slack_post(body, headers=headers)

    def counsellor_reply(self, thread_ts: str, text: str, *, user: str = "UCOUNSEL1", **kw: Any) -> str:
        """Post a reply in the fake Slack thread (as a person) and send its event; returns its ts."""
        ts = str(self.fake_slack.add_message(CHANNEL, text, user=user, thread_ts=thread_ts)["ts"])
        event = {
            "type": "message",
            "channel": CHANNEL,
            "channel_type": "group",
            "user": user,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
            **kw,
        }
        response = self.slack_event(event)
        assert response.status_code == 200, response.text
        return ts


# The case channel's members: counsellors and a supervisor (by ID in policies that say so).
MEMBERS = ("UCOUNSEL1", "UCOUNSEL2", "USUPER1")


def line_text_event(
    user: str, text: str, *, event_id: str | None = None, reply_token: str | None = None
) -> dict[str, Any]:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id or "01J" + uuid.uuid4().hex[:23].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": reply_token or uuid.uuid4().hex,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
    }


@pytest.fixture
def bridge_factory(
    bridge_redis: SyncRedis,
    redis_deployment: RedisDeployment,
    fake_line: FakeLine,
    fake_slack: FakeSlack,
    tmp_path: Path,
) -> Iterator[Any]:
    made: list[Bridge] = []

    def make(*, web: int = 1, worker: int = 1, **extra_env: str) -> Bridge:
        if CHANNEL not in fake_slack.members_of_channels():
            fake_slack.set_members(CHANNEL, list(MEMBERS))  # who may use the case controls
        # Unless a test brings its own policy, the service is open around the clock, so
        # relay tests do not depend on the time of day they run at.
        if "BRIDGE_CONFIG" not in extra_env:
            # Flood limits are off too: tests of ordering and crashes send bursts no child would.
            no_floods = {"floods": {"max_messages": 0, "max_stickers": 0}}
            default = write_policy(tmp_path, hours=ALWAYS_OPEN, name="always-open.toml", settings=no_floods)
            extra_env["BRIDGE_CONFIG"] = str(default)
        env = bridge_env(redis_deployment.url, fake_line.url, fake_slack.url, extra=extra_env)
        bridge = Bridge(
            env=env,
            tmp=tmp_path,
            fake_line=fake_line,
            fake_slack=fake_slack,
            redis=bridge_redis,
            keys=redis_deployment.keys,
        )
        made.append(bridge)
        launched = [bridge.launch("web") for _ in range(web)] + [bridge.launch("worker") for _ in range(worker)]
        for process in launched:
            bridge.ready(process)  # started again elsewhere if another test took its port
        return bridge

    yield make
    for bridge in made:
        bridge.stop_all()
        print(bridge.logs())  # pytest shows it only when the test failed
        check_privacy(bridge)


def check_privacy(bridge: Bridge) -> None:
    """Nothing a child sent (words, LINE IDs, tokens) and no secret in any process log, and no
    LINE ID or token in anything the fake Slack received."""
    for process in bridge.processes:
        leaks = bridge.sensitive.leaks_in_log(process.log())
        assert not leaks, f"leaked into the {process.name} log {process.log_path.name}: {', '.join(sorted(leaks))}"
    received = "\n".join(request.body.decode("utf-8", "replace") for request in bridge.fake_slack.requests)
    leaks = bridge.sensitive.leaks_in_slack(received)
    assert not leaks, f"Slack received what identifies a child: {', '.join(sorted(leaks))}"


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`bridge <args>` (python -m bridge.cli) as an operator runs it, with these variables added to
    this environment; its exit code, stdout and stderr are the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.fixture
def bridge(bridge_factory: Any) -> Bridge:
    made: Bridge = bridge_factory()
    return made


def line_follow_event(user: str, *, event_id: str, reply_token: str) -> dict[str, Any]:
    return {
        "type": "follow",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        "replyToken": reply_token,
        "follow": {"isUnblocked": False},
    }


def slash_command(
    bridge: Bridge,
    command: str,
    text: str,
    *,
    user: str = "UCOUNSEL1",
    channel: str = CHANNEL,
    team: str | None = None,
    app: str | None = None,
) -> Any:
    """Send a slash command as Slack does (a signed form post), from the fake's app and workspace
    unless ``team`` or ``app`` names others."""
    body = urlencode(
        {
            "command": command,
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": team or bridge.fake_slack.team_id,
            "api_app_id": app or bridge.fake_slack.app_id,
            "trigger_id": f"trig-{time.time_ns()}",
            "response_url": "https://hooks.slack.invalid/x",
        }
    ).encode()
    return bridge.slack_post(body, content_type="application/x-www-form-urlencoded")


def interactive(bridge: Bridge, payload: dict[str, Any]) -> Any:
    """Send an interaction payload (block_actions, message_action, view_submission) as Slack does,
    naming the fake's app and workspace where the payload names none (Slack sends no api_app_id
    with a shortcut, so a message_action gets a team only)."""
    named: dict[str, Any] = {"team": {"id": bridge.fake_slack.team_id}}
    if payload.get("type") not in ("message_action", "shortcut"):
        named["api_app_id"] = bridge.fake_slack.app_id
    body = urlencode({"payload": json.dumps({**named, **payload})}).encode()
    return bridge.slack_post(body, content_type="application/x-www-form-urlencoded")


def press(bridge: Bridge, action_id: str, case: int, *, user: str = "UCOUNSEL1") -> Any:
    """Press a button on a case's root, as Slack sends it (block_actions)."""
    return interactive(
        bridge,
        {
            "type": "block_actions",
            "user": {"id": user},
            "channel": {"id": CHANNEL},
            "trigger_id": f"trig-{time.time_ns()}",
            "actions": [{"action_id": action_id, "value": str(case), "type": "button", "action_ts": str(time.time())}],
        },
    )


# The workers' heartbeats change every second by design: "nothing changed" means nothing else.
HEARTBEATS = {
    key.encode() for layout in (Keys(), Keys(slot_tag=CLUSTER_TAG)) for key in (layout.workers, layout.router_workers)
}


def everything_in_redis(client: SyncRedis) -> bytes:
    """Every key and value the bridge keeps, read by type (not DUMP, which may compress); the
    workers' heartbeats left out."""
    parts: list[bytes] = []
    for key in client.scan_iter(b"br:*"):
        if key in HEARTBEATS:
            continue
        kind = client.type(key)
        parts.append(key)
        # redis-py types its replies loosely; with no decode_responses they are bytes.
        value: Any
        if kind == b"string":
            value = client.get(key)
            parts.append(value or b"")
        elif kind == b"hash":
            value = client.hgetall(key)
            parts += [b for pair in value.items() for b in pair]
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
            parts += value
        elif kind == b"set":
            value = client.smembers(key)
            parts += list(value)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
            parts += [member for member, _ in value]
        elif kind == b"stream":
            value = client.xrange(key)
            parts += [b for _, fields in value for pair in fields.items() for b in pair]
    return b"\n".join(parts)
