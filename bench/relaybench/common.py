"""What every part of the benchmark shares: credentials, synthetic messages, figures, waits.

Every message the bench sends is synthetic: children are ``Ube0c<number in hex>`` (LINE's form of
a user ID) and every text is "benchmark message <marker> please ignore", where the marker names
the run, the phase and the message's index. Only markers and counts are ever printed.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge.adapters.line import webhook as line_side  # noqa: E402
from bridge.adapters.slack import verify as slack_side  # noqa: E402
from bridge.fakes.harness import Credentials  # noqa: E402

CREDENTIALS = Credentials(
    line_secret="bench-line-channel-secret",
    line_token="bench-line-access-token",
    slack_token="xoxb-bench-bot-token",
    slack_signing="bench-slack-signing-secret",
    pseudonym_key="be9c" * 16,
)
CHANNEL = CREDENTIALS.channel
COUNSELLOR = "UCOUNSEL1"
HOST = "127.0.0.1"

SLACK_POST = "/api/chat.postMessage"
LINE_PUSH = "/v2/bot/message/push"
MARKER_RE = re.compile(r"bm[0-9a-f]{6}[a-z]+\d{6}")


@dataclass(frozen=True)
class Plan:
    """Sizes of the phase run (``bench/relay.py`` without ``--targets``)."""

    load_rate: float = 200.0  # webhooks/s, open loop
    load_seconds: float = 10.0
    load_children: int = 50
    relay_count: int = 200  # per direction
    relay_rate: float = 20.0  # messages/s
    relay_children: int = 20
    throughput_n: int = 2000
    throughput_concurrency: int = 20
    throughput_children: int = 50
    redis_messages: int = 100
    redis_idle_seconds: float = 3.0
    paused_load_seconds: float = 5.0


FULL = Plan()
QUICK = Plan(
    load_seconds=3.0,
    relay_count=50,
    throughput_n=400,
    redis_messages=30,
    redis_idle_seconds=1.0,
    paused_load_seconds=1.5,
)


class Stop(Exception):
    """Raised when a bounded wait runs out."""


def pct(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, min(len(data), int(-(-p * len(data) // 100))))
    return data[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds if s == s]  # NaN (never answered) left out
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p90_ms": round(pct(ms, 90), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def child_id(i: int) -> str:
    """A synthetic LINE user ID of LINE's form, U and 32 lowercase hex digits (never a real one)."""
    return f"Ube0c{i:028x}"


def marker(run: str, phase: str, i: int) -> str:
    return f"bm{run}{phase}{i:06d}"


def marker_index(mark: str) -> int:
    return int(mark[-6:])


def message_text(mark: str) -> str:
    return f"benchmark message {mark} please ignore"


def line_body(user: str, text: str) -> bytes:
    """A LINE webhook body with one text message event."""
    event = {
        "type": "message",
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": "01J" + uuid.uuid4().hex[:23].upper(),
        "deliveryContext": {"isRedelivery": False},
        "replyToken": uuid.uuid4().hex,
        "message": {"id": str(uuid.uuid4().int)[:18], "type": "text", "quoteToken": "q", "text": text},
    }
    return json.dumps({"destination": "Ubot", "events": [event]}, ensure_ascii=False).encode()


def line_headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Line-Signature": line_side.sign(CREDENTIALS.line_secret, body),
    }


def slack_event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "token": "legacy",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


def slack_headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type, **slack_side.sign(CREDENTIALS.slack_signing, body)}


def counsellor_event(text: str, ts: str, thread_ts: str) -> dict[str, Any]:
    """The Events API message event of a counsellor's reply in a case thread."""
    return {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "group",
        "user": COUNSELLOR,
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
    }


def slack_texts(r: Any) -> list[str]:
    body = r.json if isinstance(r.json, dict) else {}
    return [str(body.get("text") or "")]


def line_texts(r: Any) -> list[str]:
    body = r.json if isinstance(r.json, dict) else {}
    return [str(m.get("text") or "") for m in body.get("messages") or [] if isinstance(m, dict)]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise Stop(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt_map(values: dict[str, Any]) -> str:
    return " ".join(f"{k} {v}" for k, v in values.items())
