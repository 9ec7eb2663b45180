"""The web process: verify, record, answer. It never waits on Slack or LINE.

create_app(settings) is the one composition root; clients are made in the lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bridge.adapters.line import webhook as line
from bridge.adapters.redis.store import Store
from bridge.adapters.slack import verify
from bridge.adapters.slack.listeners import build_bolt_app
from bridge.config.policy_file import load_policy
from bridge.config.settings import Settings, load_settings
from bridge.logs import configure_logging

log = logging.getLogger("bridge.web")


class BodyTooLarge(Exception):
    pass


@dataclass
class WebState:
    redis: Redis
    store: Store
    bolt: AsyncApp
    slack_web: AsyncWebClient


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than limit bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _redis_for_web(settings: Settings) -> Redis:
    """A client whose pool makes a burst of requests wait for a connection (up to 5 s) rather
    than fail: redis-py's default pool refuses the 101st request in flight."""
    pool = BlockingConnectionPool.from_url(
        settings.REDIS_URL.get_secret_value(),
        max_connections=settings.BRIDGE_WEB_REDIS_CONNECTIONS,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    return Redis(connection_pool=pool)


def create_app(settings: Settings, *, redis_factory: Callable[[], Redis] | None = None) -> FastAPI:
    """Build the web app for these settings. Safe to call many times (tests do).

    redis_factory replaces the client built from REDIS_URL (the demo passes a fake Redis).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_factory() if redis_factory else _redis_for_web(settings)
        store = Store(redis)
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
            cases_channel=settings.SLACK_CHANNEL_ID,
        )
        app.state.bridge = WebState(redis=redis, store=store, bolt=bolt, slack_web=web)
        log.info("web started")
        try:
            yield
        finally:
            await redis.aclose()
            log.info("web stopped")

    policy = load_policy(settings.BRIDGE_CONFIG)  # a bad policy file stops start-up here
    app = FastAPI(title="LINE–Slack consultation bridge", lifespan=lifespan, docs_url=None, redoc_url=None)
    limit = settings.BRIDGE_MAX_BODY_BYTES

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

    @app.post("/line/webhook")
    async def line_webhook(request: Request) -> Response:
        state: WebState = request.app.state.bridge
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            log.warning("line webhook rejected: body over %d bytes", limit)
            return _error(413, "body too large")
        if not line.signature_is_valid(
            settings.LINE_CHANNEL_SECRET.get_secret_value(), body, request.headers.get("x-line-signature")
        ):
            log.warning("line webhook rejected: bad signature")
            return _error(401, "invalid signature")
        try:
            events = line.split_webhook_body(body)
        except line.WebhookBodyError as exc:
            log.warning("line webhook rejected: %s", exc)
            return _error(400, str(exc))
        try:
            recorded = await state.store.record_events("line", events)
        except (RedisError, OSError) as exc:
            # LINE redelivers what we did not take (with redelivery on), so say so honestly.
            log.error("line webhook: recording failed events=%d error=%s", len(events), type(exc).__name__)
            return _error(503, "could not record events")
        log.info("line webhook events=%d new=%d", len(events), recorded)
        return JSONResponse({})

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        state: WebState = request.app.state.bridge
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            log.warning("slack request rejected: body over %d bytes", limit)
            return _error(413, "body too large")
        if not verify.signature_is_valid(
            settings.SLACK_SIGNING_SECRET.get_secret_value(),
            body,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
        ):
            log.warning("slack request rejected: bad or stale signature")
            return _error(401, "invalid signature")
        if not verify.body_is_well_formed(body, request.headers.get("content-type")):
            log.warning("slack request rejected: malformed body")
            return _error(400, "malformed body")
        try:
            response = await state.bolt.async_dispatch(to_async_bolt_request(request, body))
        except (RedisError, OSError):
            log.error("slack request not recorded: Redis unavailable")
            return _error(503, "redis unreachable")
        except Exception as exc:  # Bolt itself assumes fields a malformed payload may lack
            if b'"event_callback"' in body:  # an Events API delivery: let Slack retry it
                log.error("slack event not recorded error=%s", type(exc).__name__)
                return _error(503, "not recorded")
            log.warning("slack request rejected: unreadable payload error=%s", type(exc).__name__)
            return _error(400, "malformed body")
        if response.status == 404 and b'"event_callback"' in body:
            # An Events API delivery no listener takes (one without an event type): Slack must
            # still hear 200, or it retries and in the end turns the app's subscriptions off.
            return JSONResponse({})
        return to_starlette_response(response)

    return app


def create_app_from_env() -> FastAPI:
    """uvicorn --factory entry point: settings from the environment."""
    configure_logging()
    return create_app(load_settings())
