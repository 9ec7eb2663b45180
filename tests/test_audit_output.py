"""`bridge audit` prints what counsellors typed; nothing in it may act on the operator's terminal."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis as redis_sync

from bridge.adapters.redis.keys import Keys
from bridge.cli import format_audit, visible
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
TOKYO = ZoneInfo("Asia/Tokyo")
HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}

# A reason as a hostile counsellor might type it: clear the screen, return over the line and
# overwrite it, then reverse what follows so "txt.exe" reads "exe.txt".
HOSTILE_REASON = "学校と連携\x1b[2J\x1b[H\rall clear \u202etxt.exe\u200b"


def hidden_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in HIDDEN]


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\x00", "\\x00"),
        ("\x07", "\\x07"),  # BEL
        ("\x08", "\\x08"),  # backspace
        ("\t", "\\t"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\x1b", "\\x1b"),  # ESC
        ("\x7f", "\\x7f"),  # DEL
        ("\x85", "\\x85"),  # NEL (C1)
        ("\x9b", "\\x9b"),  # CSI (C1): a one-byte ESC [
        ("\xad", "\\xad"),  # soft hyphen
        ("\u061c", "\\u061c"),  # Arabic letter mark
        ("\u200b", "\\u200b"),  # zero-width space
        ("\u200c", "\\u200c"),  # zero-width non-joiner
        ("\u200d", "\\u200d"),  # zero-width joiner
        ("\u200e", "\\u200e"),  # left-to-right mark
        ("\u2028", "\\u2028"),  # line separator
        ("\u2029", "\\u2029"),  # paragraph separator
        ("\u202a", "\\u202a"),  # left-to-right embedding
        ("\u202e", "\\u202e"),  # right-to-left override
        ("\u2060", "\\u2060"),  # word joiner
        ("\u2066", "\\u2066"),  # left-to-right isolate
        ("\u2069", "\\u2069"),  # pop directional isolate
        ("\ufeff", "\\ufeff"),  # zero-width no-break space (BOM)
        ("\U000e0041", "\\U000e0041"),  # tag character
        ("\udc9b", "\\udc9b"),  # a lone surrogate (undecodable bytes)
        ("\\", "\\\\"),  # a typed backslash is doubled, so "\x1b" typed is not taken for an escape
    ],
)
def test_visible_escapes_what_a_terminal_would_act_on_or_hide(char: str, shown: str) -> None:
    assert visible(f"a{char}b") == f"a{shown}b"


def test_visible_leaves_ordinary_text_alone() -> None:
    text = "学校と連携予定。ｼﾆﾀｲ 😀 #12 U012ABCDEF (command) 100%\u3000全角スペース"
    assert visible(text) == text


def test_a_typed_escape_stays_distinguishable_from_a_real_one() -> None:
    assert visible("\\x1b") != visible("\x1b")


def test_every_field_of_an_audit_line_is_escaped() -> None:
    record = {
        "at": "1764565512.0",
        "case": "12\x1b[31m",
        "action": "close\r",
        "actor": "U012\u202eABCDEF",
        "via": "command\x1b]0;pwned\x07",
        "reason": HOSTILE_REASON,
    }
    line = format_audit(record, TOKYO)
    assert hidden_in(line) == []
    assert "\\x1b[2J\\x1b[H\\rall clear \\u202etxt.exe\\u200b" in line
    assert "学校と連携" in line  # the reason's own words are still there to read
    assert "#12\\x1b[31m" in line
    assert "close\\r" in line
    assert "U012\\u202eABCDEF" in line
    assert "(command\\x1b]0;pwned\\x07)" in line
    assert line.startswith("2025-12-01 14:05:12")


def test_an_ordinary_audit_line_reads_as_before() -> None:
    record = {
        "at": "1764565512.0",
        "case": "12",
        "action": "close",
        "actor": "U012ABCDEF",
        "via": "command",
        "reason": "学校と連携予定",
    }
    assert format_audit(record, TOKYO) == (
        "2025-12-01 14:05:12     #12  close              U012ABCDEF (command)  学校と連携予定"
    )


@pytest.mark.redis
def test_bridge_audit_prints_a_hostile_record_escaped(redis_db: redis_sync.Redis) -> None:
    """The command itself, against records in a real Redis as the router writes them."""
    redis_db.xadd(
        Keys().audit,
        {
            "at": f"{time.time():.3f}",
            "case": "7",
            "actor": "U0HOSTILE\x1b[8m",
            "action": "close",
            "reason": HOSTILE_REASON,
            "via": "command",
        },
    )
    port = redis_db.connection_pool.connection_kwargs["port"]
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "BRIDGE_CONFIG": str(ROOT / "config/bridge.toml")}
    result = run_cli("audit", "--case", "7", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # the CR and the separators did not split or rewrite the line
    assert hidden_in(result.stdout.rstrip("\n")) == []
    assert "\\x1b[2J\\x1b[H\\rall clear \\u202etxt.exe\\u200b" in lines[0]
    assert "U0HOSTILE\\x1b[8m" in lines[0]
