"""What the chaos run's conversations came to, judged on what fake Slack and fake LINE received.

Children's messages (LINE -> Slack), on the messages fake Slack stored in the case channel:
  a child's *case thread* is the thread holding its first message (the one that opened the
  case); a message stored in another thread, or as a top-level message, is *misplaced*.
Counsellors' replies (Slack -> LINE), on the pushes fake LINE accepted (took effect): a reply
  pushed to another child than its case's is misplaced.
Either way:
  lost: accepted by the web (answered 200) and never received;
  doubled: received more than once;
  out of order: received after a later message of the same conversation (which was sent only
  once this one had been accepted, so any inversion is the bridge's);
  never accepted: a webhook the driver gave up on (no 200 within GIVE_UP_S);
  delivery time: from the 200 that accepted the webhook to the first request that carried it
  to the fake (its arrival, RecordedRequest.at, among requests that took effect). It is
  negative when an earlier attempt that was not answered 200 (a timeout) had been recorded.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from typing import Any

from .chaos_driver import LS, SL, Driver, Message
from .common import CHANNEL, MARKER_RE, child_id, marker_index, pct
from .report import render, verdict

MAX_P95_S = 5.0
MAX_MAX_S = 15.0


def stored_in_slack(rig: Any, prefix: str, children: int) -> list[tuple[str, int, str]]:
    """(marker, child, thread ts or "" for a top-level message) of every child's message fake
    Slack stored, in the order it stored them."""
    out = []
    for msg in rig.slack.messages(CHANNEL):
        for m in MARKER_RE.findall(msg["text"]):
            if m.startswith(prefix):
                out.append((m, marker_index(m) % children, str(msg["thread_ts"] or "")))
    return out


def pushed_to_line(rig: Any, prefix: str, children: int) -> list[tuple[str, int, str]]:
    """(marker, child it belongs to, who it was pushed to) of every reply fake LINE accepted, in order."""
    out = []
    for push in rig.line.accepted_pushes():
        for message in push["messages"]:
            for m in MARKER_RE.findall(str(message.get("text") or "")):
                if m.startswith(prefix):
                    out.append((m, marker_index(m) % children, str(push["to"])))
    return out


def judge(messages: Iterable[Message], received: list[tuple[str, int, str]], *, home: dict[int, str]) -> dict[str, Any]:
    """Lost, doubled, misplaced and out of order among messages, given what was received (marker,
    conversation, where) in order and each conversation's right place (home)."""
    sent = {m.mark: m for m in messages}
    count: collections.Counter[str] = collections.Counter()
    latest: dict[int, int] = {}
    out_of_order = misplaced = 0
    for mark, conversation, where in received:
        count[mark] += 1
        if count[mark] > 1 or mark not in sent:
            continue
        if where != home.get(conversation):
            misplaced += 1
        seq = sent[mark].seq
        if seq < latest.get(conversation, -1):
            out_of_order += 1
        latest[conversation] = max(seq, latest.get(conversation, -1))
    accepted = [m for m in sent.values() if m.was_accepted]
    return {
        "sent": len(sent),
        "accepted": len(accepted),
        "never_accepted": len(sent) - len(accepted),
        "never_accepted_but_received": sum(1 for m in sent.values() if not m.was_accepted and count[m.mark]),
        "received": sum(1 for m in sent if count[m]),
        "lost": sum(1 for m in accepted if count[m.mark] == 0),
        "doubled": sum(1 for m in sent if count[m] > 1),
        "out_of_order": out_of_order,
        "misplaced": misplaced,
        "webhook_attempts": sum(m.attempts for m in sent.values()),
        "webhook_answers": dict(sum((m.answers for m in sent.values()), collections.Counter())),
    }


def seconds_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_s": math.nan, "p95_s": math.nan, "max_s": math.nan}
    return {
        "n": len(values),
        "p50_s": round(pct(values, 50), 3),
        "p95_s": round(pct(values, 95), 3),
        "max_s": round(max(values), 3),
    }


def delivery(messages: Iterable[Message], at: dict[str, float], t0: float) -> dict[str, Any]:
    """Delivery time (accepted -> received) and time from the first attempt, and the slowest."""
    rows = [
        (at[m.mark] - m.accepted, at[m.mark] - m.first_sent, m) for m in messages if m.was_accepted and m.mark in at
    ]
    slowest = sorted(rows, key=lambda r: r[0], reverse=True)[:10]
    return {
        # every message: seconds after t0 its webhook was accepted, delivery time, attempts
        "rows": [[m.child, m.seq, round(m.accepted - t0, 3), round(d, 3), m.attempts] for d, _, m in rows],
        "delivery": seconds_summary([r[0] for r in rows]),
        "from_first_attempt": seconds_summary([r[1] for r in rows]),
        "negative": sum(1 for r in rows if r[0] < 0),
        "slowest": [
            {
                "seconds": round(d, 2),
                "accepted_at_s": round(m.accepted - t0, 2),
                "mark": m.mark,
                "child": m.child,
                "seq": m.seq,
                "attempts": m.attempts,
            }
            for d, _, m in slowest
        ],
    }


def check(rig: Any, driver: Driver, at: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Both directions judged (see the module); at: direction -> marker -> when received."""
    children = driver.children
    ls_msgs = [m for m in driver.messages.values() if m.direction == LS]
    sl_msgs = [m for m in driver.messages.values() if m.direction == SL]
    slack = stored_in_slack(rig, driver.prefix(LS), children)
    first: dict[int, tuple[int, str]] = {}  # child -> (seq, thread) of its earliest message stored
    seq_of = {m.mark: m.seq for m in ls_msgs}
    for mark, child, thread in slack:
        seq = seq_of.get(mark, 1 << 30)
        if child not in first or seq < first[child][0]:
            first[child] = (seq, thread)
    threads = {child: thread for child, (_, thread) in first.items()}
    line = pushed_to_line(rig, driver.prefix(SL), children)
    out = {
        "line_to_slack": judge(ls_msgs, slack, home=threads) | delivery(ls_msgs, at[LS], driver.t0),
        "slack_to_line": judge(sl_msgs, line, home={c: child_id(c) for c in range(children)})
        | delivery(sl_msgs, at[SL], driver.t0),
        "replies_never_sent_no_thread": len(driver.never_sent),
    }
    both = [
        at[d][m.mark] - m.accepted
        for d, msgs in ((LS, ls_msgs), (SL, sl_msgs))
        for m in msgs
        if m.was_accepted and m.mark in at[d]
    ]
    out["both"] = seconds_summary(both)
    return out


def table(result: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The chaos run's rows: the targets with PASS/MISS, and the figures to read them by."""
    rows: list[tuple[str, str, str, str]] = []
    targets: list[dict[str, Any]] = []
    ls, sl, both = result["line_to_slack"], result["slack_to_line"], result["both"]

    def add(key: str, wanted: str, measured: str, ok: bool | None) -> None:
        rows.append((key, wanted, verdict(ok), measured))
        targets.append({"figure": key, "target": wanted, "measured": measured, "result": verdict(ok)})

    def info(label: str, measured: str) -> None:
        rows.append(("  " + label, "", "", measured))

    for key in ("lost", "doubled", "out_of_order", "misplaced", "never_accepted"):
        total = ls[key] + sl[key]
        add(key.replace("_", " "), "0", f"{total} (LINE->Slack {ls[key]}, Slack->LINE {sl[key]})", total == 0)
    p95, worst = both["p95_s"], both["max_s"]
    measured = f"{p95:.2f} s (p50 {both['p50_s']:.2f} s, {both['n']} messages)"
    add("delivery time p95", f"<= {MAX_P95_S:.0f} s", measured, None if both["n"] == 0 else p95 <= MAX_P95_S)
    add("delivery time max", f"<= {MAX_MAX_S:.0f} s", f"{worst:.2f} s", None if both["n"] == 0 else worst <= MAX_MAX_S)
    for label, r in (("LINE->Slack", ls), ("Slack->LINE", sl)):
        d, f = r["delivery"], r["from_first_attempt"]
        info(
            f"{label} p50 / p95 / max",
            f"{d['p50_s']:.2f} / {d['p95_s']:.2f} / {d['max_s']:.2f} s "
            f"(from the first attempt {f['p50_s']:.2f} / {f['p95_s']:.2f} / {f['max_s']:.2f} s)",
        )
        info(f"{label} sent / accepted / received", f"{r['sent']} / {r['accepted']} / {r['received']}")
        info(f"{label} webhook attempts, answers", f"{r['webhook_attempts']}, {_answers(r['webhook_answers'])}")
    if result.get("replies_never_sent_no_thread"):
        info("replies not sent (no case thread)", str(result["replies_never_sent_no_thread"]))
    return render(rows, ("chaos", "wanted", "", "measured")), targets


def _answers(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def slow_by_fault(result: dict[str, Any], events: list[dict[str, Any]], *, over_s: float = 1.0) -> dict[str, int]:
    """Messages slower than over_s, by the fault they met: the last one between 4 s before their
    webhook was accepted and their arrival (the router takes over 3-4 s after its leader died),
    or none (then it was the retries after the random 5xx)."""
    out: collections.Counter[str] = collections.Counter()
    for direction in ("line_to_slack", "slack_to_line"):
        for _, _, accepted, seconds, _ in result[direction]["rows"]:
            if seconds <= over_s:
                continue
            met = [e for e in events if accepted - 4.0 <= e["at_s"] <= accepted + seconds and "exited" not in e["what"]]
            if not met:
                out["no fault nearby: retries after 5xx"] += 1
                continue
            last = met[-1]
            if last["what"].startswith("worker killed"):
                out["router's leader killed" if last.get("leader") else "the other worker killed"] += 1
            else:
                out[str(last["what"])] += 1
    return dict(out.most_common())


def after_kills(
    result: dict[str, Any], events: list[dict[str, Any]], refused: frozenset[tuple[str, int, int]] = frozenset()
) -> dict[str, Any]:
    """How soon what was in flight at each SIGKILL reached its platform: for every kill, the
    seconds from the kill until the last message accepted before it and not yet delivered at it
    was delivered (the issue's "every message delivered within 5 s of the kill"). A message that
    also met a 5xx or a 429 counts too: the figure is an upper bound on the take-over. refused:
    (direction, child, seq) of the messages an API call carrying them was refused for (a 5xx or
    a 429, before or after taking effect). The same figures over the messages in flight that
    were not refused and had no refused message in flight ahead of them in their conversation
    (a message waits behind the one before it, so a refused one holds those after it) are the
    take-over's own ("clean")."""
    messages = [
        (accepted, accepted + seconds, (direction, child), seq, (direction, child, seq) in refused)
        for direction in ("line_to_slack", "slack_to_line")
        for child, seq, accepted, seconds, _ in result[direction]["rows"]
    ]
    per_kill = []
    for event in events:
        if not event["what"].startswith("worker killed"):
            continue
        at = event["at_s"]
        pending = [
            (delivered, talk, seq, met)
            for accepted, delivered, talk, seq, met in messages
            if accepted <= at < delivered
        ]
        if pending:
            first_refused: dict[tuple[str, int], int] = {}
            for _, talk, seq, met in pending:
                if met:
                    first_refused[talk] = min(seq, first_refused.get(talk, seq))
            clean = [d for d, talk, seq, _ in pending if seq < first_refused.get(talk, seq + 1)]
            per_kill.append(
                {
                    "at_s": at,
                    "leader": bool(event.get("leader")),
                    "in_flight": len(pending),
                    "all_delivered_after_s": round(max(d for d, _, _, _ in pending) - at, 2),
                    "clean_in_flight": len(clean),
                    "clean_delivered_after_s": round(max(clean) - at, 2) if clean else None,
                }
            )
    clean = [k["clean_delivered_after_s"] for k in per_kill if k["clean_delivered_after_s"] is not None]
    return {
        "kills": len(per_kill),
        **_spread([k["all_delivered_after_s"] for k in per_kill]),
        "clean": {"kills": len(clean), **_spread(clean)},
        "per_kill": per_kill,
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "median_s": ordered[len(ordered) // 2] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
    }
