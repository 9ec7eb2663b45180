"""A worker process: the router and the deliverers, sharing one Redis client and two API clients.

- the router (router.py) reads the inbound stream in order and makes one pass per entry:
  load, decide (the core), commit. One router leads each partition of the stream at a time;
  the workers share the partitions (partitions.py).
- the deliverers (deliverer.py) claim due lanes and make the API calls. Any worker may deliver.
- the roster of the case channels (who may use the controls: the members of SLACK_CHANNEL_ID and
  of every other channel of a pool) is refreshed from Slack here.
- the heartbeat says this process is alive, so that when it dies what it held (the router
  leases, lane leases) is taken over within seconds (adapters/redis/heartbeat.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.errors import SlackApiError

from bridge.adapters.line.client import LineClient
from bridge.adapters.redis.connect import RedisClient, redis_away
from bridge.adapters.redis.heartbeat import BEAT_S
from bridge.adapters.redis.partitions import PartitionsRefused, check_partition_count
from bridge.adapters.redis.pseudonym import PseudonymKeyRefused
from bridge.adapters.redis.safety import UnsafeRedis, check_no_eviction
from bridge.adapters.redis.store import Store
from bridge.adapters.slack.client import SlackClient, outcome_of
from bridge.config.policy_file import case_channels_for
from bridge.config.settings import Settings, pseudonym_key_bytes
from bridge.core.policy import Policy
from bridge.core.retry import RETRY_AFTER_MAX_S, RetryRules
from bridge.engine.deliverer import Deliverers
from bridge.engine.pacing import Pacing
from bridge.engine.router import Router
from bridge.metrics.server import MetricsPortRefused, MetricsServer, serve_metrics
from bridge.metrics.worker import WorkerMetrics

log = logging.getLogger("bridge.worker")

START_AGAIN_S = 1.0  # how often a starting worker asks a Redis that does not answer again
WAIT_LOGGED_EVERY = 10  # of those tries, one in this many is logged (the first among them)
# A case channel check that Slack did not answer is asked again after CHECK_AGAIN_FIRST_S, then
# after twice as long each time, at most CHECK_AGAIN_MAX_S apart: a restarted worker that met
# one of Slack's passing 5xx routes again in a moment, not 5 s later, and one waiting for a
# person (the bot not invited yet) asks every 5 s. A 429's Retry-After is waited for.
CHECK_AGAIN_FIRST_S = 0.25
CHECK_AGAIN_MAX_S = 5.0


class Worker:
    """One worker process's jobs."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: Policy,
        redis: RedisClient,
        store: Store,
        line: LineClient,
        slack: SlackClient,
    ) -> None:
        self.settings = settings
        # A pool that does not start with SLACK_CHANNEL_ID stops the process at start (PolicyError).
        case_channels_for(policy, settings.SLACK_CHANNEL_ID)
        self.redis = redis
        self.line = line
        self.slack = slack
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = asyncio.Event()
        self.metrics = WorkerMetrics()
        self.metrics_server: MetricsServer | None = None
        self.router = Router(name=self.name, policy=policy, channel=settings.SLACK_CHANNEL_ID, redis=redis, store=store)
        pacing = Pacing(
            per_second=settings.BRIDGE_SLACK_CHANNEL_POSTS_PER_SECOND,
            burst=settings.BRIDGE_SLACK_CHANNEL_BURST,
            case_channel=settings.SLACK_CHANNEL_ID,
            supervisor_channel=settings.SLACK_SUPERVISOR_CHANNEL_ID,
        )
        self.router.pacing = pacing
        self.deliverers = Deliverers(
            name=self.name,
            policy=policy,
            redis=redis,
            store=store,
            line=line,
            slack=slack,
            supervisor_channel=settings.SLACK_SUPERVISOR_CHANNEL_ID,
            lease_ms=int(settings.BRIDGE_LEASE_SECONDS * 1000),
            retry_rules=RetryRules(
                give_up_after_s=settings.BRIDGE_RETRY_GIVE_UP_SECONDS,
                max_backoff_s=settings.BRIDGE_RETRY_MAX_BACKOFF_SECONDS,
                unanswered_wait_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
            ),
            pacing=pacing,
        )
        self.router.takers = self.deliverers
        self.router.metrics = self.deliverers.metrics = self.metrics
        self._policy = policy
        self._store = store

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = self.router.policy = self.deliverers.policy = policy

    @property
    def case_channels(self) -> tuple[str, ...]:
        """Every channel cases open in, SLACK_CHANNEL_ID first."""
        return case_channels_for(self._policy, self.settings.SLACK_CHANNEL_ID)

    @property
    def store(self) -> Store:
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._store = self.router.store = self.deliverers.store = store

    @classmethod
    def build(cls, settings: Settings, policy: Policy, redis: RedisClient) -> Worker:
        """A worker with its API clients made from settings. Call inside the event loop."""
        return cls(
            settings=settings,
            policy=policy,
            redis=redis,
            store=Store(
                redis,
                child_key_secret=pseudonym_key_bytes(settings.BRIDGE_PSEUDONYM_KEY.get_secret_value()),
                partitions=settings.BRIDGE_ROUTER_PARTITIONS,
            ),
            line=LineClient(
                access_token=settings.LINE_CHANNEL_ACCESS_TOKEN.get_secret_value(),
                api_base_url=settings.LINE_API_BASE_URL,
                data_api_base_url=settings.LINE_DATA_API_BASE_URL,
                timeout_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
            ),
            slack=SlackClient(
                token=settings.SLACK_BOT_TOKEN.get_secret_value(),
                base_url=settings.SLACK_API_BASE_URL,
                channel=settings.SLACK_CHANNEL_ID,
                timeout_s=settings.BRIDGE_HTTP_TIMEOUT_SECONDS,
            ),
        )

    async def close(self) -> None:
        """Close the API clients and the metrics server (not the Redis client, which the caller owns)."""
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await self.line.close()
        await self.slack.close()

    def stop(self) -> None:
        self._stopping.set()
        self.router.stopping.set()
        self.deliverers.stop()

    async def run(self) -> None:
        """Run the router and the deliverers until stop() is called.

        On stop, deliveries in flight get one HTTP timeout to finish, so a reply that was
        sent is also settled (and not sent again by the next worker).
        """
        try:  # first: a metrics port in use stops the worker before it takes any work
            self.metrics_server = await serve_metrics(
                self.metrics.registry, port=self.settings.PORT, metrics_port=self.settings.BRIDGE_METRICS_PORT
            )
        except MetricsPortRefused as exc:
            raise SystemExit(str(exc)) from None
        if not await self._once_redis_answers("redis check", self._check_redis):
            return
        await self.check_case_channel()
        if not await self._once_redis_answers("router group", self.store.ensure_router_group):
            return
        fetched = await self.refresh_roster()  # before routing, so controls are checked from the start
        # Alive before holding anything.
        if not await self._once_redis_answers("heartbeat", lambda: self.store.beat(self.name)):
            return
        heart = asyncio.create_task(self._keep_heartbeat(), name="heartbeat")
        router = asyncio.create_task(self.router.route_forever(), name="router")
        waker = asyncio.create_task(self.deliverers.listen_for_wakeups(), name="wake")
        roster = asyncio.create_task(self._keep_roster(fetched), name="roster")
        deliverers = [
            asyncio.create_task(self.deliverers.deliver_forever(i), name=f"deliverer-{i}")
            for i in range(self.settings.BRIDGE_WORKER_CONCURRENCY)
        ]
        log.info("worker started name=%s deliverers=%d", self.name, self.settings.BRIDGE_WORKER_CONCURRENCY)
        await self._stopping.wait()
        _, unfinished = await asyncio.wait([router, *deliverers], timeout=self.settings.BRIDGE_HTTP_TIMEOUT_SECONDS + 2)
        for task in [*unfinished, waker, roster, heart]:
            task.cancel()
        await asyncio.gather(router, waker, roster, heart, *deliverers, return_exceptions=True)
        with contextlib.suppress(Exception):  # what is left (an unfinished call's lane) is taken over at once
            await self.store.gone(self.name)
        log.info("worker stopped name=%s", self.name)

    async def _check_redis(self) -> None:
        """Refuse a Redis that may evict keys, whose pseudonyms were made with another key, or
        whose inbound stream has another partition count."""
        try:
            await check_no_eviction(self.redis)
        except UnsafeRedis as exc:
            raise SystemExit(str(exc)) from None
        try:
            await self.store.prepare()
        except PseudonymKeyRefused as exc:
            raise SystemExit(str(exc)) from None
        try:
            await check_partition_count(self.redis, self.store.keys, self.store.partitions)
        except PartitionsRefused as exc:
            raise SystemExit(str(exc)) from None

    async def _once_redis_answers(self, step: str, start: Callable[[], Awaitable[object]]) -> bool:
        """Run a start-up step, and again every START_AGAIN_S while Redis does not answer (not up
        yet, restarting, loading its data: a deployment may start a worker before its Redis, or
        while Redis restarts), logged as it waits; any other error ends the start. Each step may
        be run again. False: the worker was stopped while it waited."""
        waited = 0
        while not self._stopping.is_set():
            try:
                await start()
            except Exception as exc:
                if not redis_away(exc):
                    raise
                if waited % WAIT_LOGGED_EVERY == 0:
                    log.warning("waiting for redis step=%s error=%s", step, type(exc).__name__)
                waited += 1
                await self._pause(START_AGAIN_S)
                continue
            if waited:
                log.info("redis answered step=%s after=%d tries", step, waited + 1)
            return True
        log.info("worker stopped while waiting for redis name=%s", self.name)
        return False

    async def _keep_heartbeat(self) -> None:
        """Beat every BEAT_S. When another worker's heartbeat has just run out, the idle
        deliverers look for its lanes at once (the router's standby looks every BEAT_S)."""
        while not self._stopping.is_set():
            await self._pause(BEAT_S)
            try:
                died = await self.store.beat(self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat failed error=%s", type(exc).__name__)
                continue
            if died:
                log.info("workers stopped beating count=%d; taking over their lanes", len(died))
                self.deliverers.wake_all()

    async def check_case_channel(self) -> None:
        """Refuse to run unless every case channel (SLACK_CHANNEL_ID and the rest of a pool) is
        private and shared with no other workspace or organisation: children's words go there.
        Until Slack answers for each (unreachable, a token or scope to fix, a bot to invite), it
        asks again (CHECK_AGAIN_FIRST_S, growing to CHECK_AGAIN_MAX_S); nothing is routed meanwhile."""
        for channel in self.case_channels:
            await self._check_channel(channel)

    async def _check_channel(self, channel: str) -> None:
        wait = CHECK_AGAIN_FIRST_S
        while not self._stopping.is_set():
            retry_after = 0.0
            try:
                info = await self.slack.channel_info(channel)
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "") if exc.response is not None else ""
                retry_after = min(outcome_of(exc).retry_after or 0.0, RETRY_AFTER_MAX_S)
                log.warning("case channel check failed channel=%s error=%s; asking again", channel, error or "?")
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                log.warning("case channel check failed error=%s; asking again", type(exc).__name__)
            else:
                problems = [name for name in ("is_shared", "is_ext_shared", "is_org_shared") if info.get(name)]
                if not info.get("is_private"):
                    problems.insert(0, "not private")
                if problems:
                    raise SystemExit(
                        f"the case channel {channel} must be a private channel shared with no other workspace "
                        f"or organisation; Slack says: {', '.join(problems)}"
                    )
                return
            await self._pause(max(wait, retry_after))
            wait = min(wait * 2, CHECK_AGAIN_MAX_S)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- the roster ----------------------------------------------------------------

    async def refresh_roster(self) -> bool:
        """Fetch the case channels' members (every channel of a pool) and the supervisors' group
        from Slack into Redis. On failure the last roster stays in use (and is logged); returns
        whether it worked."""
        group = self.policy.supervisor_group
        supervisors: list[str] | None = []
        try:
            members = await self.slack.channel_members()
            others = {channel: await self.slack.channel_members(channel) for channel in self.case_channels[1:]}
            if group:
                try:
                    supervisors = await self.slack.usergroup_members(group)
                except Exception as exc:  # a wrong group must not stop every control: keep the last list
                    log.warning("supervisor group lookup failed error=%s; keeping the last list", type(exc).__name__)
                    supervisors = None
            await self.store.save_roster(members, supervisors, at=time.time(), others=others)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("roster refresh failed error=%s", type(exc).__name__)
            return False
        everyone = set(members).union(*others.values())
        log.info(
            "roster refreshed members=%d channels=%d group_supervisors=%s",
            len(everyone),
            1 + len(others),
            len(supervisors or ()),
        )
        return supervisors is not None

    async def _keep_roster(self, fetched: bool) -> None:
        while not self._stopping.is_set():
            await self._pause(self.settings.BRIDGE_ROSTER_REFRESH_SECONDS if fetched else 10)
            if not self._stopping.is_set():
                fetched = await self.refresh_roster()
