"""A worker built in this process, on fakeredis, against the fake LINE and Slack servers (real
HTTP): for the tests that drive the router or the deliverers directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakeredis import aioredis

from bridge.adapters.redis.store import Store
from bridge.config.policy_file import load_policy
from bridge.config.settings import load_settings
from bridge.core.policy import Policy
from bridge.engine.worker import Worker
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
LINE_TOKEN = "line-token"
SLACK_TOKEN = "xoxb-1"


async def in_process_worker(
    line: FakeLine, slack: FakeSlack, *, policy: Policy | None = None, **settings: Any
) -> Worker:
    """A worker with the shipped policy (or policy), case channel CCASES and supervisors' channel
    CSUP, its store's pseudonyms keyed by a fixed secret, and its router group made. The caller
    closes it (worker.close()) and its Redis (worker.redis.aclose())."""
    redis = aioredis.FakeRedis()
    made = Worker.build(
        load_settings(
            LINE_CHANNEL_SECRET="s3cret-line",
            LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN,
            SLACK_BOT_TOKEN=SLACK_TOKEN,
            SLACK_SIGNING_SECRET="s3cret-slack",
            BRIDGE_PSEUDONYM_KEY="ab" * 32,
            SLACK_CHANNEL_ID="CCASES",
            SLACK_SUPERVISOR_CHANNEL_ID="CSUP",
            LINE_API_BASE_URL=line.url,
            LINE_DATA_API_BASE_URL=line.url,
            SLACK_API_BASE_URL=slack.url + "/api/",
            **settings,
        ),
        policy or load_policy(ROOT / "config" / "bridge.toml"),
        redis,
    )
    made.store = Store(redis, child_key_secret=b"k")
    await made.store.ensure_router_group()
    return made
