"""Phase 3b: signed /escalate commands and escalate-button presses (which open a window with
views.open before the answer): how fast each is acknowledged, and how soon a command's alert
reaches the supervisors' channel."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from .common import CHANNEL, COUNSELLOR, CREDENTIALS, Plan, log, marker, slack_headers, summary_ms, wait_until
from .latency import paced
from .rig import Rig

FORM = "application/x-www-form-urlencoded"


def phase_controls(rig: Rig, plan: Plan, run: str) -> dict[str, Any]:
    cases = len(rig.slack.roots(CHANNEL)[: plan.relay_children])
    n = plan.relay_count
    log(f"phase 3b: controls, {n} /escalate commands and {n} escalate buttons at {plan.relay_rate:.0f}/s")
    sent_at: dict[str, float] = {}
    command_acks: list[float] = []
    button_acks: list[float] = []
    statuses: list[int] = []
    views_before = len(rig.slack.views())

    async def main() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:

            async def post(form: dict[str, str], acks: list[float]) -> None:
                body = urlencode(form).encode()
                start = time.perf_counter()
                response = await client.post(
                    rig.web_url + "/slack/events", content=body, headers=slack_headers(body, FORM)
                )
                acks.append(time.perf_counter() - start)
                statuses.append(response.status_code)

            async def command(i: int) -> None:
                mark = marker(run, "esc", i)
                sent_at[mark] = time.time()
                form = {
                    "command": "/escalate",
                    "text": f"{i % cases + 1} {mark}",
                    "user_id": COUNSELLOR,
                    "channel_id": CHANNEL,
                    "team_id": "T0001",
                    "api_app_id": "A0001",
                    "trigger_id": f"trig-{run}-c{i}",
                }
                await post(form, command_acks)

            async def button(i: int) -> None:
                action = {"action_id": "escalate_case", "value": str(i % cases + 1), "action_ts": f"{time.time()}"}
                payload = {
                    "type": "block_actions",
                    "api_app_id": "A0001",
                    "user": {"id": COUNSELLOR},
                    "team": {"id": "T0001"},
                    "channel": {"id": CHANNEL},
                    "trigger_id": f"trig-{run}-b{i}",
                    "actions": [action],
                }
                await post({"payload": json.dumps(payload)}, button_acks)

            await paced(n, plan.relay_rate, command)
            await paced(n, plan.relay_rate, button)

    asyncio.run(asyncio.wait_for(main(), timeout=2 * n / plan.relay_rate + 60))

    def alerts() -> dict[str, float]:
        seen: dict[str, float] = {}
        for message in rig.slack.messages(CREDENTIALS.supervisors):
            for mark in sent_at:
                if mark in message["text"] and mark not in seen:
                    seen[mark] = float(message["ts"])
        return seen

    wait_until(lambda: len(alerts()) == len(sent_at), timeout=60, what="escalation alerts", interval=0.2)
    wait_until(rig.idle, timeout=60, what="the bridge to go idle (escalation notes)")
    at = alerts()
    out: dict[str, Any] = {
        "command_ack": summary_ms(command_acks),
        "button_ack_with_views_open": summary_ms(button_acks),
        "escalation_alert": summary_ms([at[m] - t for m, t in sent_at.items()]),
        "views_opened": len(rig.slack.views()) - views_before,
        "non_200": sum(1 for s in statuses if s != 200),
    }
    log(
        f"  command ack p99={out['command_ack']['p99_ms']} ms, button ack p99="
        f"{out['button_ack_with_views_open']['p99_ms']} ms, alert p50={out['escalation_alert']['p50_ms']} ms"
    )
    return out
