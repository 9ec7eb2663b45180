"""Checks that the tests guarding the README's promises fail when those promises break.

Each row below is a one-line change that breaks one promise (found by a reviewer: no test failed
on it before). The script copies the working tree to a temporary folder once per row, makes the
change there (never in the tree itself), runs the tests that name the promise against the copy,
and expects them to fail. Before that, it runs the same tests on an unchanged copy, which must
pass: a row counts only when the tests pass on the code as it is and fail on the change.

    .venv/bin/python bench/promises.py            # every row (about 3 minutes)
    .venv/bin/python bench/promises.py --row lifo # rows whose name contains "lifo"

A row whose ``before`` text is no longer in its file fails loudly: the code moved, so the row
must move with it (the promise still needs its test). Exit 0 when every row was caught.
Needs a redis-server, like the end-to-end tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    name: str
    promise: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


ROWS = (
    Row(
        "lifo-lanes",
        "order within a case (a decision's deliveries join the end of their lane)",
        "bridge/adapters/redis/commit.py",
        "elseif name == 'enqueue' then\n    redis.call('RPUSH', key, a[4])",
        "elseif name == 'enqueue' then\n    redis.call('LPUSH', key, a[4])",
        ("tests/test_guarantees_e2e.py::test_order_within_a_case_holds_under_a_real_backlog",),
    ),
    Row(
        "reversed-batch",
        "order within a case (the router decides a batch in stream order)",
        "bridge/engine/router.py",
        "batch = [(as_text(entry_id), fields) for entry_id, fields in entries]",
        "batch = [(as_text(entry_id), fields) for entry_id, fields in reversed(entries)]",
        ("tests/test_guarantees_e2e.py::test_a_backlog_recorded_while_no_worker_runs_is_routed_in_order",),
    ),
    Row(
        "flood-never-released",
        "after a flood's cool-down the deferred messages reach the thread and the flood ends",
        "bridge/engine/commit.py",
        'ops.hdel(case_key, "flood_until", "deferred_stickers", DEFERRED_STICKERS_BEFORE_RENAME)',
        'ops.hdel(case_key, "deferred_stickers", DEFERRED_STICKERS_BEFORE_RENAME)',
        ("tests/test_guarantees_e2e.py::test_after_a_flood_cool_down_the_childs_messages_reach_the_thread_again",),
    ),
    Row(
        "words-in-retry-log",
        "no child's words in logs",
        "bridge/engine/deliverer.py",
        'log.warning("delivery retry %s in=%.1fs reason=%s", fields, step.delay_s, outcome.reason)',
        'log.warning("delivery retry %s in=%.1fs reason=%s %s", fields, step.delay_s, outcome.reason,'
        ' getattr(delivery, "text", ""))',
        ("tests/test_delivery_e2e.py::test_slack_server_errors_are_retried_without_doubling",),
    ),
    Row(
        "no-platform-pause",
        "a 429 pauses every lane to that platform for Retry-After",
        "bridge/engine/deliverer.py",
        'await self.store.pause_platform(claim.lane.split(":")[0], step.pause_platform_s)',
        "pass",
        ("tests/test_guarantees_e2e.py::test_a_429_pauses_every_lane_to_that_platform",),
    ),
    Row(
        "no-lease-renewal",
        "a live worker keeps its lanes during a slow call",
        "bridge/engine/deliverer.py",
        "keeper = asyncio.create_task(self._keep_lease(claim, token, attempt_over))",
        "keeper = asyncio.create_task(asyncio.sleep(0))",
        ("tests/test_guarantees_e2e.py::test_a_call_slower_than_the_lease_keeps_its_lane",),
    ),
    Row(
        "no-heartbeat-take-over",
        "a killed worker's lane is taken over in seconds, not when its lease runs out",
        "bridge/adapters/redis/lanes.py",
        "  return beat ~= false and tonumber(beat) < now - ALIVE_MS",
        "  return false",
        ("tests/test_takeover_e2e.py::test_a_killed_workers_lane_is_taken_over_by_the_other_worker_in_seconds",),
    ),
    Row(
        "no-sigterm-grace",
        "on SIGTERM, calls in flight finish and are settled",
        "bridge/engine/worker.py",
        "timeout=self.settings.BRIDGE_HTTP_TIMEOUT_SECONDS + 2)",
        "timeout=0)",
        ("tests/test_guarantees_e2e.py::test_sigterm_lets_a_call_in_flight_finish_and_settle",),
    ),
    Row(
        "one-sided-slack-window",
        "Slack requests outside the five-minute window are refused, future ones too",
        "bridge/adapters/slack/verify.py",
        "if abs((now if now is not None else time.time()) - sent_at) > SIGNATURE_WINDOW_S:",
        "if ((now if now is not None else time.time()) - sent_at) > SIGNATURE_WINDOW_S:",
        ("tests/test_slack_verify.py",),
    ),
    Row(
        "lane-lease-without-nx",
        "one worker at a time per lane",
        "bridge/adapters/redis/lanes.py",
        "if redis.call('SET', lease_key, token, 'NX', 'PX', lease_ms) then",
        "if redis.call('SET', lease_key, token, 'PX', lease_ms) then",
        ("tests/test_store.py::test_a_leased_lane_is_not_claimed_again_even_by_a_clock_that_runs_ahead",),
    ),
    Row(
        "set-aside-kept-for-ever",
        "what was set aside for an operator is dropped after [retention] set_aside_days",
        "bridge/core/rules/retention.py",
        "        TrimSetAside(set_aside_kept_since(policy, now=now)),\n",
        "",
        ("tests/test_set_aside_e2e.py::test_the_worker_drops_what_was_set_aside_longer_than_the_policy_keeps_it",),
    ),
    Row(
        "set-aside-replayed-twice",
        "a replayed set-aside entry leaves the set-aside stream in the same step (never replayed twice)",
        "bridge/engine/commit.py",
        "        self.ops.xdel(key, entry_id)\n",
        "",
        ("tests/test_set_aside_e2e.py::test_a_childs_message_slack_refused_is_listed_without_words_and_replayed_once",),
    ),
    Row(
        "set-aside-words-listed",
        "bridge set-aside list shows a child's words only with --show-words",
        "bridge/ops/set_aside.py",
        "    if words:\n",
        "    if True:\n",
        ("tests/test_set_aside_e2e.py::test_a_childs_message_slack_refused_is_listed_without_words_and_replayed_once",),
    ),
    Row(
        "old-records-kept",
        "a closed case's record goes after case_record_days",
        "bridge/engine/standing.py",
        "records_due=records_due,",
        "records_due={},",
        ("tests/test_retention.py::test_a_long_closed_case_record_goes_and_a_recent_one_stays",),
    ),
    Row(
        "history-names-deleted-cases",
        "the child's next case names only earlier cases that still exist",
        "bridge/engine/commit.py",
        "ops.lrem(keys.history(child), str(number))",
        "ops.hdel(keys.blocked, '')",
        ("tests/test_retention.py::test_the_childs_next_case_names_only_earlier_cases_that_still_exist",),
    ),
    Row(
        "purge-keeps-history",
        "bridge purge erases everything about the child",
        "bridge/engine/commit.py",
        "ops.delete(keys.history(child))",
        "ops.hdel(keys.blocked, child)",
        (
            "tests/test_purge.py::test_a_purge_erases_every_key_about_the_child_and_nothing_else",
            "tests/test_purge_e2e.py::test_purge_erases_the_child_notes_each_thread_and_leaves_the_others",
        ),
    ),
    Row(
        "purge-note-without-its-thread",
        "bridge purge notes each of the child's threads",
        "bridge/core/rules/purge.py",
        "thread_ts=case.thread_ts,",
        "thread_ts=None,",
        ("tests/test_purge_e2e.py::test_purge_erases_the_child_notes_each_thread_and_leaves_the_others",),
    ),
    Row(
        "block-reminded-every-minute",
        "an old block is pointed out to the supervisors once per review period",
        "bridge/core/rules/block_review.py",
        "last = max(block.at, case.block_reminded_at or 0.0)",
        "last = block.at",
        ("tests/test_block_review_e2e.py::test_an_old_block_is_pointed_out_to_the_supervisors_once",),
    ),
)


def tree_files() -> list[str]:
    """The files git tracks, and the untracked ones it does not ignore (a change not yet
    committed is checked as it is)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def copy_tree(target: Path, files: list[str]) -> None:
    for name in files:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)


def run_tests(copy: Path, tests: tuple[str, ...], timeout_s: float) -> tuple[bool, float, str]:
    """Run the tests against the copy's code; returns (passed, seconds, the output's tail)."""
    env = dict(os.environ, PYTHONPATH=str(copy), REQUIRE_REDIS="1")
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", *tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - started, "timed out"
    lines = (result.stdout + result.stderr).strip().splitlines()
    # Why it failed: pytest's first "E " line (the failed assertion or error), then the summary.
    reasons = [line for line in lines if line.startswith("E ")][:1]
    return result.returncode == 0, time.monotonic() - started, "\n".join(reasons + lines[-1:])


def imports_from(copy: Path) -> bool:
    """Whether a process started with the copy on PYTHONPATH runs the copy's code."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    found = subprocess.run(
        [sys.executable, "-c", "import bridge; print(bridge.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(found).resolve().is_relative_to(copy.resolve())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", default="", help="only rows whose name contains this")
    parser.add_argument("--timeout", type=float, default=180, help="seconds for one row's tests")
    args = parser.parse_args()
    rows = [row for row in ROWS if args.row in row.name]
    if not rows:
        print(f"no row matches {args.row!r}; rows: {', '.join(row.name for row in ROWS)}")
        return 2
    files = tree_files()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="promises-") as scratch:
        unchanged = Path(scratch) / "unchanged"
        copy_tree(unchanged, files)
        if not imports_from(unchanged):
            print("a process with the copy on PYTHONPATH does not import the copy's code; nothing checked")
            return 1
        tests = tuple(dict.fromkeys(test for row in rows for test in row.tests))
        passed, seconds, tail = run_tests(unchanged, tests, args.timeout * len(rows))
        print(f"unchanged code: the {len(tests)} test(s) {'pass' if passed else 'FAIL'} ({seconds:.0f} s)")
        if not passed:
            print(tail)
            return 1
        for row in rows:
            copy = Path(scratch) / row.name
            copy_tree(copy, files)
            path = copy / row.path
            text = path.read_text(encoding="utf-8")
            if text.count(row.before) != 1:
                print(f"{row.name:24} MOVED    {row.path} no longer has the changed text once; update the row")
                failures += 1
                continue
            path.write_text(text.replace(row.before, row.after), encoding="utf-8")
            passed, seconds, tail = run_tests(copy, row.tests, args.timeout)
            verdict = "MISSED" if passed else "caught"
            print(f"{row.name:24} {verdict:8} {seconds:5.0f} s  {row.promise}")
            print("    " + tail.replace("\n", "\n    ")[:400])
            if passed:
                failures += 1
                print(f"    the change to {row.path} went unnoticed by {', '.join(row.tests)}")
            shutil.rmtree(copy)
    print(f"{len(rows) - failures} of {len(rows)} broken promises caught")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
