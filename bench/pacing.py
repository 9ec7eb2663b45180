#!/usr/bin/env python
"""Slack's per-channel limit: many consultations at once against a fake Slack that allows what
Slack documents for chat.postMessage (one message per second per channel, bursts of three, then
HTTP 429 with Retry-After).

Each of N children opens a consultation and writes one message every --interval seconds
(default 10) for --messages messages (default 3, so 30 s); the children's first messages are
spread evenly over the first interval, so together they offer N / interval messages a second.
Everything goes through the Procfile's real web and worker processes (bench/relaybench/rig.py).

Printed for each N: the time from just before a child's webhook is sent until the
chat.postMessage that carries its words into the case's thread is answered 200 (p50 / p95 /
max), lost / doubled / out of order (on what fake Slack stored), the 429s fake Slack answered,
and the posts it took.

Run:  .venv/bin/python bench/pacing.py                          # 30 and 60 consultations
      .venv/bin/python bench/pacing.py --channels 4,8           # over a pool of case channels
      .venv/bin/python bench/pacing.py --compare /tmp/base --compare-channels 1,1   # and another checkout
Exit code: 0 when every run finished (missed targets do not fail it), 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relaybench.common import (
    CHANNEL,
    MARKER_RE,
    ROOT,
    SLACK_POST,
    child_id,
    line_body,
    line_headers,
    log,
    marker,
    marker_index,
    message_text,
    pct,
)
from relaybench.rig import Rig
from relaybench.seen import Seen

# What the issue asks of a run: webhook -> thread p95 and max, in seconds.
TARGET_P95_S = 5.0
TARGET_MAX_S = 10.0
# The child's index and the message's number are both in the marker's six digits.
PER_CHILD = 100


def pool(channels: int) -> tuple[str, ...]:
    """The case channels of a run: the bench's channel, then CCONSULT2, CCONSULT3, ..."""
    return (CHANNEL, *(f"{CHANNEL}{i}" for i in range(2, channels + 1)))


def texts_of(request: Any) -> list[str]:
    """The words a chat.postMessage carried: its text and its blocks' texts."""
    body = request.json if isinstance(request.json, dict) else {}
    return [str(body.get("text") or ""), *_block_texts(body.get("blocks"))]


def _block_texts(blocks: Any) -> list[str]:
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return []
    out: list[str] = []
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and isinstance(block.get("text"), dict):
            out.append(str(block["text"].get("text") or ""))
    return out


def stored_markers(message: dict[str, Any]) -> list[str]:
    """The markers of a stored message, in the order it shows them (blocks, else its text)."""
    found = [m for text in _block_texts(message.get("blocks")) for m in MARKER_RE.findall(text)]
    return found or MARKER_RE.findall(str(message.get("text") or ""))


def run(
    *, consultations: int, channels: int, interval: float, messages: int, tree: Path, drain_limit: float, keep: bool
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bridge-pacing-"))
    rig = Rig(tmp, tree=tree)
    run_id = uuid.uuid4().hex[:6]
    names = pool(channels)
    ok = False
    try:
        settings: dict[str, dict[str, object]] = {}
        if channels > 1:
            settings["slack"] = {"case_channels": list(names)}
        # The harness turns pacing off for the tests; the bench paces as the bridge's defaults do,
        # at Slack's own limit. An older checkout ignores the variables.
        env: dict[str, str | None] = {"BRIDGE_SLACK_CHANNEL_POSTS_PER_SECOND": "1", "BRIDGE_SLACK_CHANNEL_BURST": "2"}
        # No unanswered-case alerts in the channel while the run drains: they are not its load.
        rig.start(env=env, policy=settings, timeouts={"unanswered_alert_seconds": 3600}, channels=names[1:])
        rig.slack.limit_posts_like_slack()
        seen = Seen(rig.slack, SLACK_POST, texts_of, prefix=f"bm{run_id}")
        plan = sorted(
            (c * interval / consultations + k * interval, c, k) for c in range(consultations) for k in range(messages)
        )
        scripts_before = _script_calls(rig)
        sent_at: dict[str, float] = {}
        statuses: collections.Counter[int] = collections.Counter()
        log(f"{consultations} consultations over {channels} channel(s): {len(plan)} messages in {plan[-1][0]:.0f} s")
        with httpx.Client(timeout=10) as client:
            t0 = time.monotonic()
            for offset, child, k in plan:
                delay = t0 + offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                mark = marker(run_id, "p", child * PER_CHILD + k)
                body = line_body(child_id(child), message_text(mark))
                sent_at[mark] = time.time()
                statuses[
                    client.post(rig.web_url + "/line/webhook", content=body, headers=line_headers(body)).status_code
                ] += 1
                seen.update()
        sent = time.time()
        drained = seen.wait_all(sent_at, timeout=drain_limit, what="every message in its thread", interval=0.2)
        drained_after = time.time() - sent
        deadline = time.monotonic() + 30
        while not rig.idle() and time.monotonic() < deadline:  # root updates and the like
            time.sleep(0.2)
        scripts = _script_calls(rig) - scripts_before
        at = seen.update()
        waits = [at[m] - sent_at[m] for m in sent_at if m in at]
        stored = [m for name in names for m in rig.slack.messages(name) if m["thread_ts"]]
        counts: collections.Counter[str] = collections.Counter()
        threads: dict[str, list[str]] = collections.defaultdict(list)
        for message in stored:
            for mark in stored_markers(message):
                counts[mark] += 1
                threads[f"{message['channel']}/{message['thread_ts']}"].append(mark)
        lost = sum(1 for m in sent_at if counts[m] == 0)
        doubled = sum(1 for m in sent_at if counts[m] > 1)
        out_of_order = 0
        for marks in threads.values():
            numbers = [marker_index(m) for m in marks if m in sent_at]
            out_of_order += sum(1 for a, b in itertools.pairwise(numbers) if b < a)
        posts = rig.slack.requests_to(SLACK_POST)
        per_channel = collections.Counter(
            str((r.json or {}).get("channel")) for r in posts if r.status == 200 and isinstance(r.json, dict)
        )
        thread_posts = len(stored)
        figures = {
            "consultations": consultations,
            "channels": channels,
            "messages": len(sent_at),
            "webhooks_non_200": sum(n for status, n in statuses.items() if status != 200),
            "p50_s": round(pct(waits, 50), 2),
            "p95_s": round(pct(waits, 95), 2),
            "max_s": round(max(waits), 2) if waits else float("nan"),
            "lost": lost,
            "doubled": doubled,
            "out_of_order": out_of_order,
            "drained": drained,
            "drained_after_s": round(drained_after, 1),
            "rate_limited_429": rig.slack.rate_limited(),
            "posts_200": sum(1 for r in posts if r.status == 200),
            "thread_posts": thread_posts,
            # Every script call of web and worker (a webhook's record, a commit, each claim and
            # completion): how often the deliverers looked at the lanes.
            "script_calls_per_message": round(scripts / max(1, len(sent_at)), 1),
            "posts_per_channel": dict(sorted(per_channel.items())),
            "log_problems": rig.log_problems(),
        }
        ok = True
        return figures
    finally:
        rig.stop()
        if ok and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"logs kept in {tmp}")


def _script_calls(rig: Rig) -> int:
    stats = rig.r.info("commandstats")
    return sum(int(v.get("calls", 0)) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


def row(name: str, f: dict[str, Any]) -> str:
    verdict = "PASS" if f["p95_s"] <= TARGET_P95_S and f["max_s"] <= TARGET_MAX_S else "MISS"
    if f["lost"] or f["doubled"] or f["out_of_order"] or not f["drained"]:
        verdict = "MISS"
    return (
        f"{name:<10} {f['consultations']:>4} {f['channels']:>3}"
        f"  {f['p50_s']:>6.2f} {f['p95_s']:>6.2f} {f['max_s']:>6.2f}"
        f"  {f['lost']:>4} {f['doubled']:>4} {f['out_of_order']:>4}  {f['rate_limited_429']:>5}"
        f"  {f['posts_200']:>5} {f['thread_posts']:>6}  {f['script_calls_per_message']:>11}  {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--consultations", default="30,60", help="comma-separated counts (default 30,60)")
    parser.add_argument("--channels", default="1,1", help="case channels for each count (default 1,1)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between a child's messages")
    parser.add_argument("--messages", type=int, default=3, help="messages per child")
    parser.add_argument("--drain-limit", type=float, default=400.0, help="longest wait for the last message")
    parser.add_argument("--compare", type=Path, metavar="TREE", help="also run another checkout (e.g. main)")
    parser.add_argument("--compare-channels", default="1,1", help="case channels for the other checkout")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.consultations.split(",")]
    trees: list[tuple[str, Path, list[int]]] = []
    if args.compare is not None:
        trees.append(("compared", args.compare.resolve(), [int(n) for n in args.compare_channels.split(",")]))
    trees.append(("this", ROOT, [int(n) for n in args.channels.split(",")]))
    results: list[tuple[str, dict[str, Any]]] = []
    failed = False
    for name, tree, channels in trees:
        for count, pool_size in zip(counts, channels, strict=True):
            try:
                results.append(
                    (
                        name,
                        run(
                            consultations=count,
                            channels=pool_size,
                            interval=args.interval,
                            messages=args.messages,
                            tree=tree,
                            drain_limit=args.drain_limit,
                            keep=args.keep_logs,
                        ),
                    )
                )
            except Exception as exc:
                log(f"{name} {count}: failed: {exc!r}")
                failed = True
    print(f"\nwanted: p95 <= {TARGET_P95_S:.0f} s, max <= {TARGET_MAX_S:.0f} s, 0 lost, 0 doubled, 0 out of order")
    print(
        f"{'tree':<10} {'N':>4} {'ch':>3}  {'p50':>6} {'p95':>6} {'max':>6}  {'lost':>4} {'dbl':>4} {'ooo':>4}"
        f"  {'429s':>5}  {'posts':>5} {'thread':>6}  {'scripts/msg':>11}"
    )
    for name, figures in results:
        print(row(name, figures))
        problems = {p: v["levels"] for p, v in figures["log_problems"].items() if v["levels"]}
        if problems:
            print(f"{'':<10} log warnings/errors: {problems}")
    if args.json is not None:
        args.json.write_text(json.dumps([{"tree": n, **f} for n, f in results], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
