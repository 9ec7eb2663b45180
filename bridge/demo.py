"""bridge demo: the real web app and worker, in one process, against an embedded fake Redis
and local fake LINE and Slack servers. Plays a short consultation and prints both sides."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import fakeredis
import httpx
import uvicorn
from fakeredis import aioredis

from bridge.adapters.line import webhook as line_side
from bridge.adapters.slack import verify as slack_side
from bridge.app import create_app
from bridge.config.policy_file import load_policy
from bridge.config.settings import load_settings
from bridge.core.schedule.days import WEEKDAYS
from bridge.core.schedule.model import Schedule
from bridge.engine.worker import Worker
from bridge.fakes.line import FakeLine
from bridge.fakes.slack import FakeSlack

CHANNEL = "CDEMOCASES"
SUPERVISORS = "CDEMOSUPERVISORS"
CHILD = "Ude" + "0" * 30  # LINE's form of a user ID: U and 32 lowercase hex digits
COUNSELLOR = "UCOUNSELLOR"
_CONFIG = Path(__file__).resolve().parent.parent / "config" / "bridge.toml"


def _say(side: str, text: str) -> None:
    label = {"line": "LINE  (child)     ", "slack": "Slack (counsellor)", "demo": "demo              "}[side]
    lines = text.splitlines() or [""]
    print(f"{label} | {lines[0]}")
    for more in lines[1:]:
        print(f"{' ' * len(label)} | {more}")


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the demo waited too long for the bridge")
        await asyncio.sleep(0.02)


async def run_demo() -> int:
    """Run the scripted consultation; returns 0 if every step was seen on the fakes."""
    fake_line = FakeLine(access_token="demo-line-token").start()
    fake_slack = FakeSlack(bot_token="xoxb-demo-token").start()
    fake_slack.set_members(CHANNEL, [COUNSELLOR])  # who may use the case controls
    server = fakeredis.FakeServer()
    settings = load_settings(
        LINE_CHANNEL_SECRET="demo-line-channel-secret",
        LINE_CHANNEL_ACCESS_TOKEN="demo-line-token",
        SLACK_BOT_TOKEN="xoxb-demo-token",
        SLACK_SIGNING_SECRET="demo-slack-signing-secret",
        # A key of its own each run: the demo's Redis is new and empty each run too.
        BRIDGE_PSEUDONYM_KEY=secrets.token_hex(32),
        SLACK_CHANNEL_ID=CHANNEL,
        SLACK_SUPERVISOR_CHANNEL_ID=SUPERVISORS,
        BRIDGE_CONFIG=str(_CONFIG if _CONFIG.exists() else "config/bridge.toml"),
        LINE_API_BASE_URL=fake_line.url,
        LINE_DATA_API_BASE_URL=fake_line.url,
        SLACK_API_BASE_URL=fake_slack.url + "/api/",
    )
    # The demo plays a consultation in opening hours whatever the time: same policy, open all week.
    shipped = load_policy(settings.BRIDGE_CONFIG)
    always = {day: ["00:00-24:00"] for day in WEEKDAYS}
    policy = dataclasses.replace(shipped, schedule=Schedule.from_config(always, shipped.timezone))

    def new_redis() -> aioredis.FakeRedis:
        return aioredis.FakeRedis(server=server)

    app = create_app(settings, redis_factory=new_redis)
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    web_task = asyncio.create_task(web.serve())
    worker_redis = new_redis()
    worker = Worker.build(settings, policy, worker_redis)
    worker_task = asyncio.create_task(worker.run())
    try:
        await _until(lambda: web.started)
        port = web.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _play(
                client,
                settings.LINE_CHANNEL_SECRET.get_secret_value(),
                settings.SLACK_SIGNING_SECRET.get_secret_value(),
                fake_line,
                fake_slack,
            )
        print("\nThe LINE user ID never reached Slack:", CHILD not in _all_bodies(fake_slack))
        return 0
    except TimeoutError as exc:
        print(f"demo failed: {exc}")
        return 1
    finally:
        worker.stop()
        await worker_task
        await worker.close()
        await worker_redis.aclose()
        web.should_exit = True
        with contextlib.suppress(Exception):
            await web_task
        fake_line.stop()
        fake_slack.stop()


def _all_bodies(fake_slack: FakeSlack) -> str:
    return "\n".join(r.body.decode("utf-8", "replace") for r in fake_slack.requests)


async def _play(
    client: httpx.AsyncClient, line_secret: str, slack_secret: str, fake_line: FakeLine, fake_slack: FakeSlack
) -> None:
    async def from_child(event: dict[str, Any]) -> None:
        event = {
            "mode": "active",
            "timestamp": int(time.time() * 1000),
            "source": {"type": "user", "userId": CHILD},
            "webhookEventId": uuid.uuid4().hex,
            "deliveryContext": {"isRedelivery": False},
            **event,
        }
        body = json.dumps({"destination": "Ubot", "events": [event]}, ensure_ascii=False).encode()
        response = await client.post(
            "/line/webhook", content=body, headers={"X-Line-Signature": line_side.sign(line_secret, body)}
        )
        response.raise_for_status()

    # Every request from Slack names the app and workspace (the fake's), or the bridge refuses it.
    ours = {"team_id": fake_slack.team_id, "api_app_id": fake_slack.app_id}

    async def from_counsellor(thread_ts: str, text: str) -> str:
        ts = str(fake_slack.add_message(CHANNEL, text, user=COUNSELLOR, thread_ts=thread_ts)["ts"])
        event = {
            "type": "message",
            "channel": CHANNEL,
            "user": COUNSELLOR,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
        }
        delivery = {"type": "event_callback", "event_id": "Ev" + uuid.uuid4().hex[:12], **ours, "event": event}
        body = json.dumps(delivery).encode()
        headers = {"Content-Type": "application/json", **slack_side.sign(slack_secret, body)}
        (await client.post("/slack/events", content=body, headers=headers)).raise_for_status()
        return ts

    def bot_thread(root_ts: str) -> list[dict[str, Any]]:
        return [m for m in fake_slack.thread(CHANNEL, root_ts) if m.get("bot_id")]

    _say("demo", "A child adds the account as a friend.")
    await from_child({"type": "follow", "replyToken": uuid.uuid4().hex, "follow": {"isUnblocked": False}})
    await _until(lambda: bool(fake_line.accepted_replies()))
    _say("line", "bridge → " + fake_line.accepted_replies()[0]["messages"][0]["text"])

    print()
    _say("demo", "The child writes.")
    child_text = "こんにちは。クラスの子に無視されていて、学校に行くのがつらいです。"
    _say("line", "child → " + child_text)
    await from_child(
        {
            "type": "message",
            "replyToken": uuid.uuid4().hex,
            "message": {"id": "1", "type": "text", "quoteToken": "q", "text": child_text},
        }
    )
    await _until(lambda: bool(fake_slack.roots(CHANNEL)) and bool(bot_thread(fake_slack.roots(CHANNEL)[0]["ts"])))
    root = fake_slack.roots(CHANNEL)[0]
    _say("slack", "root:   " + root["text"])
    _say("slack", "thread: " + bot_thread(root["ts"])[0]["text"])

    print()
    _say("demo", "A counsellor answers in the thread, and leaves an internal note.")
    reply = "話してくれてありがとう。つらかったね :pensive: いつ頃から続いているか、教えてもらえるかな？"
    note = "// 学校名が出たら担任への連絡を検討（本人の同意を確認）"
    note_ts = await from_counsellor(root["ts"], note)
    reply_ts = await from_counsellor(root["ts"], reply)
    _say("slack", "counsellor: " + note)
    _say("slack", "counsellor: " + reply)
    await _until(lambda: "white_check_mark" in fake_slack.reactions_on(reply_ts))
    for text in fake_line.texts_to(CHILD):
        _say("line", "bridge → " + text)
    _say(
        "slack",
        f"reactions on the reply: {fake_slack.reactions_on(reply_ts)}; on the note: "
        f"{fake_slack.reactions_on(note_ts)} (notes stay in Slack)",
    )

    print()
    _say("demo", "The child tries to ping the whole channel; it is shown, not obeyed.")
    tricky = "<!channel> 先月からです"
    _say("line", "child → " + tricky)
    await from_child(
        {
            "type": "message",
            "replyToken": uuid.uuid4().hex,
            "message": {"id": "2", "type": "text", "quoteToken": "q", "text": tricky},
        }
    )
    await from_child(
        {
            "type": "message",
            "replyToken": uuid.uuid4().hex,
            "message": {
                "id": "3",
                "type": "sticker",
                "packageId": "1",
                "stickerId": "2",
                "stickerResourceType": "STATIC",
                "keywords": ["sad"],
            },
        }
    )
    # The two may arrive as two posts or, when the second waited for the channel's pace, as one
    # post carrying both (each under the child's label): wait for the sticker's line either way.
    await _until(lambda: any("スタンプ" in m["text"] for m in bot_thread(root["ts"])[1:]))
    for message in bot_thread(root["ts"])[1:]:
        for line in message["text"].splitlines():
            _say("slack", "thread: " + line)

    async def command(name: str, text: str) -> None:
        form = {"command": name, "text": text, "user_id": COUNSELLOR, "channel_id": CHANNEL, **ours}
        body = urlencode({**form, "trigger_id": uuid.uuid4().hex}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_side.sign(slack_secret, body)}
        (await client.post("/slack/events", content=body, headers=headers)).raise_for_status()

    print()
    _say("demo", "The counsellor is worried and alerts the supervisors (the child is told nothing).")
    _say("slack", "counsellor: /escalate 1 学校に行けない日が続いている。保護者と連携したい")
    await command("/escalate", "1 学校に行けない日が続いている。保護者と連携したい")
    await _until(lambda: bool(fake_slack.roots(SUPERVISORS)))
    _say("slack", "supervisors' channel: " + fake_slack.roots(SUPERVISORS)[0]["text"].replace("\n", " / "))
    await _until(lambda: any("緊急時の確認" in m["text"] for m in bot_thread(root["ts"])))
    checklist = next(m["text"] for m in bot_thread(root["ts"]) if "緊急時の確認" in m["text"])
    _say("slack", "thread: " + checklist.splitlines()[0] + " (110 / 119 / 189 / the free dial / the city office)")

    print()
    _say("demo", "The counsellor ends the consultation.")
    _say("slack", "counsellor: /close 1 明日また連絡をくれる約束")
    await command("/close", "1 明日また連絡をくれる約束")
    await _until(lambda: len(fake_line.accepted_pushes()) >= 2)
    _say("line", "bridge → " + fake_line.accepted_pushes()[-1]["messages"][0]["text"])
    await _until(lambda: "が終了" in (fake_slack.updates_of(root["ts"]) or [root])[-1]["text"])
    _say("slack", "root:   " + fake_slack.updates_of(root["ts"])[-1]["text"])
