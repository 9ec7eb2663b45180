"""The phase run's table: one row per figure, with the phase run's own targets as PASS/MISS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .common import fmt_map

TARGET_WEBHOOK_P99_MS = 25.0
TARGET_RELAY_P50_MS = 30.0
TARGET_WEBHOOK_ROUND_TRIPS = 3.0
TARGET_CONTROL_ACK_MS = 3000.0  # Slack gives a command or button three seconds


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def render(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    width = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(r[i].ljust(width[i]) for i in range(len(header))).rstrip() for r in rows]
    head = "  ".join(h.ljust(width[i]) for i, h in enumerate(header)).rstrip()
    return "\n".join([head, "-" * len(head), *lines])


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.targets: list[dict[str, Any]] = []

    def add(self, label: str, value: str, target: str = "", ok: bool | None = None, key: str | None = None) -> None:
        self.rows.append((label, value, target, verdict(ok) if target else ""))
        if target:
            self.targets.append({"figure": key or label, "value": value, "target": target, "result": verdict(ok)})


def _load_rows(t: Table, results: dict[str, Any]) -> None:
    load = results.get("webhook_load")
    if load:
        a = load["answer"]
        t.add(f"webhook answer p50 @{load['rate_per_s']:.0f}/s", f"{a['p50_ms']:.1f} ms")
        p99_ok = a["p99_ms"] < TARGET_WEBHOOK_P99_MS
        t.add(
            f"webhook answer p99 @{load['rate_per_s']:.0f}/s", f"{a['p99_ms']:.1f} ms", "< 25 ms", p99_ok, "webhook_p99"
        )
        t.add("webhook answer max", f"{a['max_ms']:.1f} ms")
        t.add("webhook non-200 answers", f"{load['non_200']} / {load['requests']}")
        lag = f"{load['sender_lag']['p99_ms']:.1f} ms / {load['achieved_rate_per_s']}/s"
        t.add("  (sender lag p99 / achieved rate)", lag)
        t.add("  (load fully relayed to Slack after)", f"{load['all_relayed_after_s']} s")
        t.add("  (CPU cores busy during load)", fmt_map(load["cpu_cores_during_load"]))
    paused = results.get("webhook_load_worker_paused")
    if paused:
        a = paused["answer"]
        t.add(
            "  diag: worker paused, answer p50/p99/max",
            f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} / {a['max_ms']:.1f} ms (non-200 {paused['non_200']})",
        )
        t.add("  diag: worker paused, CPU cores", fmt_map(paused["cpu_cores_during_load"]))


def _relay_rows(t: Table, results: dict[str, Any]) -> None:
    for key, label in (("line_to_slack", "LINE->Slack"), ("slack_to_line", "Slack->LINE")):
        phase = results.get(key)
        if not phase:
            continue
        r = phase["relay"]
        ok = r["p50_ms"] < TARGET_RELAY_P50_MS
        t.add(f"{label} relay p50", f"{r['p50_ms']:.1f} ms", "< 30 ms", ok, f"{key}_p50_ms")
        t.add(f"{label} relay p99", f"{r['p99_ms']:.1f} ms")
        if key == "slack_to_line":
            a = phase["slack_event_answer"]
            t.add("  (Slack event answer p50 / p99)", f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} ms")
    ct = results.get("controls")
    if ct:
        for key, label in (("command_ack", "/escalate ack"), ("button_ack_with_views_open", "button ack (views.open)")):
            a = ct[key]
            t.add(
                f"{label} p99",
                f"{a['p99_ms']:.1f} ms (p50 {a['p50_ms']:.1f}, max {a['max_ms']:.1f})",
                "< 3000 ms",
                a["max_ms"] < TARGET_CONTROL_ACK_MS,
                f"{key}_ms",
            )
        e = ct["escalation_alert"]
        t.add("/escalate -> supervisors' channel p50 / p99", f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f} ms")
        t.add("  (windows opened / non-200)", f"{ct['views_opened']} / {ct['non_200']}")


def _throughput_rows(t: Table, results: dict[str, Any]) -> None:
    tp = results.get("throughput")
    if not tp:
        return
    t.add("throughput end to end", f"{tp['end_to_end_per_s']} msg/s ({tp['messages']} in {tp['end_to_end_seconds']} s)")
    t.add("  (webhook accept rate, 20 senders)", f"{tp['webhook_accept_rate_per_s']}/s")
    t.add("  (CPU ms per message)", fmt_map(tp["cpu_ms_per_message"]))
    if tp.get("cpu_cores"):
        t.add("  (CPU cores busy)", fmt_map(tp["cpu_cores"]))
    t.add(
        "exactly once in Slack",
        f"lost {tp['lost']}, doubled {tp['doubled']}, non-200 {tp['webhook_non_200']}",
        "0 lost, 0 doubled",
        tp["exactly_once"],
        "exactly_once",
    )
    t.add(
        "  (out of order, per child)",
        f"{tp['out_of_order']} ({tp['lanes_checked']} children; "
        f"{tp['reordered_while_overlapping']} swapped while both were in flight)",
    )


def _redis_rows(t: Table, results: dict[str, Any]) -> None:
    rd = results.get("redis")
    if not rd:
        return
    rt = rd["round_trips_per_message"]
    cmds, script = rd["commands_per_message"], rd["script_commands_per_message"]
    web_rt = rt["web"] if rt else cmds["web"]  # without ss, commands are the upper bound
    t.add(
        "webhook path Redis round trips/request",
        f"{web_rt:.2f} ({cmds['web']:.2f} cmds)" + ("" if rt else " [no ss: commands]"),
        "<= 3",
        web_rt <= TARGET_WEBHOOK_ROUND_TRIPS,
        "webhook_redis_round_trips",
    )
    worker_rt = f"{rt['worker']:.1f} round trips, " if rt else ""
    t.add(
        "worker Redis per relayed message",
        f"{worker_rt}{cmds['worker']:.1f} cmds (+{script['worker']:.1f} in scripts)",
    )
    if rt:
        t.add("  (worker idle round trips)", f"{rd['round_trips_idle_per_s']['worker']}/s")
    t.add("  (CPU ms per message, one at a time)", fmt_map(rd["cpu_ms_per_message"]))
    b = rd["line_to_slack_breakdown"]
    t.add("L->S breakdown p50 (under MONITOR):", f"relay {rd['relay_under_monitor']['p50_ms']:.1f} ms =")
    labels = {
        "web_recorded": "sent -> web recorded it (XADD)",
        "router_enqueued": "-> router enqueued it (RPUSH)",
        "deliverer_claimed": "-> a deliverer claimed it",
        "slack_call_started": "-> chat.postMessage arrives",
    }
    for name, label in labels.items():
        t.add(f"  {label}", f"{b[name]['p50_ms']:.1f} ms (p99 {b[name]['p99_ms']:.1f})")


def build_table(results: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    t = Table()
    _load_rows(t, results)
    _relay_rows(t, results)
    _throughput_rows(t, results)
    _redis_rows(t, results)
    return render(t.rows, ("figure", "value", "target", "")), t.targets


def redis_notes(results: dict[str, Any]) -> list[str]:
    """Lines printed under the table: how Redis was counted, and the commands each process sent."""
    rd = results.get("redis")
    if not rd:
        return []
    out = ["Redis counting: " + rd["counting"]]
    for who in ("web", "worker"):
        cmds = rd["commands_by_name_per_message"].get(who, {})
        out.append(
            f"  {who} commands per message (raw, incl. idle polling): " + ", ".join(f"{c} {k}" for c, k in cmds.items())
        )
    return out
