"""The web process: verify, record, answer. It never waits on Slack or LINE.

create_app(settings) is the one composition root; clients are made in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import ClientDisconnect

from bridge.adapters.line import webhook as line
from bridge.adapters.redis.connect import RedisClient, open_redis
from bridge.adapters.redis.partitions import PartitionsRefused, check_partition_count
from bridge.adapters.redis.store import Store
from bridge.adapters.slack import identity, verify
from bridge.adapters.slack.listeners import build_bolt_app
from bridge.config.policy_file import case_channels_for, load_policy
from bridge.config.settings import Settings, load_settings
from bridge.config.startup import EXIT_CODE, STARTUP_ERRORS, startup_error_line
from bridge.logs import configure_logging
from bridge.metrics.labels import Source, WebhookOutcome
from bridge.metrics.registry import TEXT_FORMAT
from bridge.metrics.web import WebMetrics

log = logging.getLogger("bridge.web")


class BodyTooLarge(Exception):
    pass


class BodyTimedOut(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived."""

    def __init__(self, received: int) -> None:
        super().__init__(received)
        self.received = received


async def _partitions_checked(store: Store) -> bool:
    """Check the partition count against the deployment's (partitions.py). False: Redis did not
    answer or no worker recorded one yet (asked again later). A different count stops start-up."""
    try:
        return await check_partition_count(store.redis, store.keys, store.partitions, record=False)
    except PartitionsRefused as exc:
        raise SystemExit(str(exc)) from None
    except (RedisError, OSError) as exc:
        log.warning("partition count not checked yet: redis unreachable (%s)", type(exc).__name__)
        return False


async def _keep_checking_partitions(store: Store) -> None:
    """Until Redis answers the check and a worker has recorded the count; a refused count then
    stops this process (SIGTERM to itself, so uvicorn shuts down as it does for a deployment)."""
    while True:
        await asyncio.sleep(1)
        try:
            if await check_partition_count(store.redis, store.keys, store.partitions, record=False):
                return
        except PartitionsRefused as exc:
            log.error("stopping: %s", exc)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except (RedisError, OSError):
            continue


@dataclass
class WebState:
    redis: RedisClient
    store: Store
    bolt: AsyncApp
    slack_web: AsyncWebClient
    slack_identity: identity.IdentityLearner


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, refusing more than limit bytes before reading them all, and a body that has
    not arrived in full within timeout seconds (however it trickles in: the time is for the whole
    body). Raises BodyTooLarge, BodyTimedOut or ClientGone."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimedOut from None
    except ClientDisconnect:
        raise ClientGone(size) from None
    return b"".join(chunks)


def _error(status: int, message: str, *, close: bool = False) -> JSONResponse:
    # close: the body was not read to its end, so the connection cannot carry another request.
    return JSONResponse({"error": message}, status_code=status, headers={"Connection": "close"} if close else None)


# A webhook's answer and its outcome, as the metrics count it.
Answer = tuple[WebhookOutcome, Response]


async def _body_or_refusal(request: Request, settings: Settings, what: str) -> bytes | Answer:
    """The request's body, or the answer to a body that is too large, too slow or cut off. No
    signature has been checked yet, so the log says how the body failed and nothing of it."""
    limit, timeout = settings.BRIDGE_MAX_BODY_BYTES, settings.BRIDGE_BODY_TIMEOUT_SECONDS
    try:
        return await read_body(request, limit, timeout)
    except BodyTooLarge:
        log.warning("%s rejected: body over %d bytes", what, limit)
        return WebhookOutcome.TOO_LARGE, _error(413, "body too large", close=True)
    except BodyTimedOut:
        log.warning("%s rejected: body not received within %g s", what, timeout)
        return WebhookOutcome.TIMED_OUT, _error(408, "body not received in time", close=True)
    except ClientGone as gone:
        declared = request.headers.get("content-length")
        log.warning("%s dropped: client disconnected after %d of %s bytes", what, gone.received, _digits(declared))
        return WebhookOutcome.CLIENT_GONE, _error(400, "client disconnected", close=True)  # nobody is left to read it


def _digits(value: str | None) -> str:
    return value if value and value.isdigit() and len(value) <= 20 else "?"


def _redis_for_web(settings: Settings) -> RedisClient:
    """A client whose pool makes a burst of requests wait for a connection (up to 5 s) rather
    than fail: redis-py's default pool refuses the 101st request in flight. (Not on a cluster,
    where redis-py's client has no waiting pool: see connect.open_redis.)"""
    return open_redis(settings.redis_target, socket_timeout=5, max_connections=settings.BRIDGE_WEB_REDIS_CONNECTIONS)


def _unbound(learner: identity.IdentityLearner, payload: dict[str, Any], is_event: bool) -> Answer | None:
    """The answer to a Slack request that does not name this app and workspace, or None.

    Before Slack has said who the bot token is: 503 (an Events API delivery is retried by Slack,
    and so reaches the bridge once it knows). Another app's or workspace's: 403, but 200 with
    nothing done for an Events API delivery, since Slack retries a refused one in vain and turns
    off the subscriptions of an app whose deliveries keep failing (for every workspace it is in).
    """
    if identity.is_handshake(payload):
        return None
    ours = learner.identity
    if ours is None:
        log.warning("slack request refused: this app and workspace are not yet learned from Slack")
        return WebhookOutcome.NOT_READY, _error(503, "not ready: this app and workspace are not yet learned from Slack")
    reason = identity.mismatch(payload, ours)
    if reason is None:
        return None
    log.warning("slack request refused: %s", reason)
    if is_event:
        return WebhookOutcome.OTHER_APP, JSONResponse({"ignored": "not for this app and workspace"})
    return WebhookOutcome.OTHER_APP, _error(403, "not for this app and workspace")


def create_app(settings: Settings, *, redis_factory: Callable[[], RedisClient] | None = None) -> FastAPI:
    """Build the web app for these settings. Safe to call many times (tests do).

    redis_factory replaces the client built from REDIS_URL (the demo passes a fake Redis).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_factory() if redis_factory else _redis_for_web(settings)
        store = Store(redis, partitions=settings.BRIDGE_ROUTER_PARTITIONS)
        # A web with another partition count than the deployment's would record events into
        # streams no router reads: it refuses to start, or stops once Redis answers and says so.
        checking = None if await _partitions_checked(store) else asyncio.create_task(_keep_checking_partitions(store))
        # Used only for views.open, whose trigger lapses after three seconds: a short timeout.
        web = AsyncWebClient(
            token=settings.SLACK_BOT_TOKEN.get_secret_value(),
            base_url=settings.SLACK_API_BASE_URL,
            retry_handlers=[],
            timeout=2,
        )
        bolt = build_bolt_app(
            signing_secret=settings.SLACK_SIGNING_SECRET.get_secret_value(),
            client=web,
            store=store,
            policy=policy,
            case_channels=case_channels,
        )
        # Which app and workspace Slack requests must name: asked once here (a web process that
        # cannot reach Slack starts anyway, for LINE, and keeps asking while it refuses Slack).
        learner = identity.IdentityLearner(web)
        learning = None if await learner.learn() else asyncio.create_task(learner.keep_learning())
        app.state.bridge = WebState(redis=redis, store=store, bolt=bolt, slack_web=web, slack_identity=learner)
        log.info("web started")
        try:
            yield
        finally:
            for task in (learning, checking):
                if task is not None:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
            await redis.aclose()
            log.info("web stopped")

    policy = load_policy(settings.BRIDGE_CONFIG)  # a bad policy file stops start-up here
    # Every channel cases open in; a pool that does not start with SLACK_CHANNEL_ID stops start-up.
    case_channels = case_channels_for(policy, settings.SLACK_CHANNEL_ID)
    metrics = WebMetrics()  # this app's own registry: tests build several apps in one process
    # No schema and no docs pages: the endpoints are for LINE and Slack, who need no map of them.
    app = FastAPI(
        title="LINE–Slack consultation bridge", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        state: WebState = request.app.state.bridge
        try:
            await state.redis.ping()
        except (RedisError, OSError):
            return _error(503, "redis unreachable")
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> Response:
        state: WebState = request.app.state.bridge
        scraped = await metrics.scrape(state.redis, state.store.keys, partitions=state.store.partitions)
        return Response(scraped, media_type=TEXT_FORMAT)

    async def line_answer(request: Request) -> Answer:
        state: WebState = request.app.state.bridge
        body = await _body_or_refusal(request, settings, "line webhook")
        if isinstance(body, tuple):
            return body
        if not line.signature_is_valid(
            settings.LINE_CHANNEL_SECRET.get_secret_value(), body, request.headers.get("x-line-signature")
        ):
            log.warning("line webhook rejected: bad signature")
            return WebhookOutcome.BAD_SIGNATURE, _error(401, "invalid signature")
        try:
            routed = line.split_webhook_events(body)
        except line.WebhookBodyError as exc:
            log.warning("line webhook rejected: %s", exc)
            return WebhookOutcome.BAD_BODY, _error(400, str(exc))
        try:
            events = [(event_id, encoded) for event_id, encoded, _ in routed]
            recorded = await state.store.record_events("line", events, children=[user for *_, user in routed])
        except (RedisError, OSError) as exc:
            # LINE redelivers what we did not take (with redelivery on), so say so honestly.
            log.error("line webhook: recording failed events=%d error=%s", len(events), type(exc).__name__)
            return WebhookOutcome.UNAVAILABLE, _error(503, "could not record events")
        log.info("line webhook events=%d new=%d", len(events), recorded)
        metrics.line_events(recorded=recorded, duplicates=len(events) - recorded)
        duplicate = bool(events) and recorded == 0  # all of it seen before: LINE redelivered it
        return WebhookOutcome.DUPLICATE if duplicate else WebhookOutcome.ACCEPTED, JSONResponse({})

    async def slack_answer(request: Request) -> Answer:
        state: WebState = request.app.state.bridge
        body = await _body_or_refusal(request, settings, "slack request")
        if isinstance(body, tuple):
            return body
        if not verify.signature_is_valid(
            settings.SLACK_SIGNING_SECRET.get_secret_value(),
            body,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
        ):
            log.warning("slack request rejected: bad or stale signature")
            return WebhookOutcome.BAD_SIGNATURE, _error(401, "invalid signature")
        try:
            payload = verify.payload_of(body, request.headers.get("content-type"))
        except verify.MalformedBody as exc:
            log.warning("slack request rejected: %s", exc)
            return WebhookOutcome.BAD_BODY, _error(400, str(exc))
        is_event = payload.get("type") == "event_callback"  # an Events API delivery
        refusal = _unbound(state.slack_identity, payload, is_event)
        if refusal is not None:
            return refusal
        try:
            response = await state.bolt.async_dispatch(to_async_bolt_request(request, body))
        except (RedisError, OSError):
            log.error("slack request not recorded: Redis unavailable")
            return WebhookOutcome.UNAVAILABLE, _error(503, "redis unreachable")
        except Exception as exc:  # Bolt itself assumes fields a malformed payload may lack
            if is_event:  # let Slack retry it
                log.error("slack event not recorded error=%s", type(exc).__name__)
                return WebhookOutcome.UNAVAILABLE, _error(503, "not recorded")
            log.warning("slack request rejected: unreadable payload error=%s", type(exc).__name__)
            return WebhookOutcome.BAD_BODY, _error(400, "malformed body")
        if response.status == 404 and is_event:
            # An Events API delivery no listener takes (one without an event type): Slack must
            # still hear 200, or it retries and in the end turns the app's subscriptions off.
            return WebhookOutcome.ACCEPTED, JSONResponse({})
        outcome = WebhookOutcome.ACCEPTED if response.status < 400 else WebhookOutcome.UNHANDLED
        return outcome, to_starlette_response(response)

    @app.post("/line/webhook")
    async def line_webhook(request: Request) -> Response:
        started = time.perf_counter()
        outcome, response = await line_answer(request)
        metrics.answered(Source.LINE, outcome, time.perf_counter() - started)
        return response

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        outcome, response = await slack_answer(request)
        metrics.answered(Source.SLACK, outcome, time.perf_counter() - started)
        return response

    return app


def create_app_from_env() -> FastAPI:
    """uvicorn --factory entry point: settings from the environment. A bad environment or policy
    file prints the line `bridge serve` prints and exits with its code, not uvicorn's traceback."""
    configure_logging()
    try:
        return create_app(load_settings())
    except STARTUP_ERRORS as exc:
        print(startup_error_line(exc), file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None
