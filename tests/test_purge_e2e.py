"""`bridge purge` end to end: the command against a running web and worker (real Redis, fake
LINE and Slack), as an operator runs it on a guardian's or the office's request. After it, Redis
holds nothing about the child (no pseudonym, no LINE user ID, none of their words), the audit
says who erased which cases and when, each of the child's threads has a note, the child heard
nothing, and the other children's cases go on; an unknown case is refused and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess

import pytest

from bridge.config.settings import pseudonym_key_bytes
from tests.conftest import CHANNEL, Bridge, everything_in_redis, line_user_id, run_cli, slash_command
from tests.test_controls_e2e import COUNSELLOR, audit, ephemerals_to, wait_ephemeral
from tests.test_controls_e2e import controlled as controlled  # the fixture
from tests.test_relay_e2e import bot_thread, open_case, roots

pytestmark = pytest.mark.redis

A = line_user_id(0x91)
B = line_user_id(0x92)
A_WORDS = ("はじめてのそうだんです", "ないしょのはなしがあります", "またきました")


def purge(bridge: Bridge, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"REDIS_URL": bridge.env["REDIS_URL"], "BRIDGE_CONFIG": bridge.env["BRIDGE_CONFIG"]}
    return run_cli("purge", *args, env=env, stdin=stdin)


def pseudonym(bridge: Bridge, line_id: str) -> bytes:
    """The child's pseudonym, as the bridge derives it (keyed by BRIDGE_PSEUDONYM_KEY)."""
    key = pseudonym_key_bytes(bridge.env["BRIDGE_PSEUDONYM_KEY"])
    return hmac.new(key, line_id.encode(), hashlib.sha256).hexdigest()[:32].encode()


def holds(blob: bytes, text: str) -> bool:
    """The blob holds the text as written or JSON-escaped (as lane items keep it)."""
    return text.encode() in blob or json.dumps(text)[1:-1].encode() in blob


def test_purge_erases_the_child_notes_each_thread_and_leaves_the_others(controlled: Bridge) -> None:
    bridge = controlled
    first = open_case(bridge, A, A_WORDS[0])  # case 1
    bridge.counsellor_reply(first, "きいてるよ")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(A) == ["きいてるよ"])
    slash_command(bridge, "/close", "1 学校と連携予定")
    wait_ephemeral(bridge, COUNSELLOR, "#1 を終了しました")
    second = open_case(bridge, A, A_WORDS[1])  # case 2, open
    other = open_case(bridge, B, "べつのこどもです")  # case 3
    bridge.wait_settled()
    heard = list(bridge.fake_line.texts_to(A))
    stored = everything_in_redis(bridge.redis)
    assert pseudonym(bridge, A) in stored and A.encode() in stored and holds(stored, "学校と連携予定")

    done = purge(bridge, "--case", "#2", "--operator", "yamada", "--yes")

    assert done.returncode == 0, done.stderr
    assert "erased: case(s) #1, #2" in done.stdout
    bridge.wait_settled()
    stored = everything_in_redis(bridge.redis)
    assert pseudonym(bridge, A) not in stored and A.encode() not in stored
    for words in (*A_WORDS[:2], "学校と連携予定"):
        assert not holds(stored, words), words
    for thread in (first, second):
        assert any("記録をブリッジから消去しました" in text for text in bot_thread(bridge, thread))
    assert not any("消去" in text for text in bot_thread(bridge, other))
    assert bridge.fake_line.texts_to(A) == heard  # the child is told nothing
    printed = audit(bridge, "--case", "2")
    assert "purge" in printed.stdout and "operator:yamada" in printed.stdout
    assert "学校と連携予定" not in audit(bridge).stdout
    # A reply in an erased thread goes nowhere, as in a thread that is no case; B's case goes on.
    told = len(ephemerals_to(bridge, COUNSELLOR))
    bridge.counsellor_reply(second, "まだいますか")
    bridge.counsellor_reply(other, "こんにちは")
    bridge.fake_line.wait_for(lambda: bridge.fake_line.texts_to(B) == ["こんにちは"])
    bridge.wait_settled()
    assert bridge.fake_line.texts_to(A) == heard and len(ephemerals_to(bridge, COUNSELLOR)) == told
    # The child's next message is a new case that names no earlier one.
    later = open_case(bridge, A, A_WORDS[2])
    root = next(r for r in roots(bridge) if r["ts"] == later)
    assert "#4" in root["text"] and "以前の相談" not in root["text"]


def test_an_unknown_case_or_a_bad_request_is_refused_and_changes_nothing(controlled: Bridge) -> None:
    bridge = controlled
    open_case(bridge, A, A_WORDS[0])
    bridge.wait_settled()
    before = everything_in_redis(bridge.redis)
    refused = purge(bridge, "--case", "99", "--operator", "yamada", "--yes")
    assert refused.returncode == 1 and "case #99 is not known" in refused.stderr and "nothing changed" in refused.stderr
    for args, message in (
        (("--case", "いち", "--operator", "yamada", "--yes"), "is not a case number"),
        (("--case", "1", "--operator", "rm -rf", "--yes"), "--operator is your name"),
        (("--case", "1", "--operator", "yamada"), "confirm with --yes"),  # no terminal to ask at
    ):
        bad = purge(bridge, *args, stdin="1\n")
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    bridge.wait_settled()
    assert everything_in_redis(bridge.redis) == before
    assert [m for m in bridge.fake_slack.messages(CHANNEL) if "消去" in m.get("text", "")] == []
