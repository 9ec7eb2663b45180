"""Log output: BRIDGE_LOG_FORMAT=json gives one JSON object a line, in the Procfile's processes too."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from bridge.logs import JsonFormatter, configure_logging
from tests.conftest import CHANNEL, Bridge, line_text_event, line_user_id


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("bridge.test", logging.WARNING, __file__, 1, message, args, info)


def test_a_record_is_one_line_of_json_with_its_fields() -> None:
    line = JsonFormatter().format(_record("entry %s decided: %s", "1-0", "ok"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "entry 1-0 decided: ok"
    assert parsed["level"] == "WARNING" and parsed["logger"] == "bridge.test"
    assert parsed["time"].endswith("Z") and parsed["time"][10] == "T"


def test_an_exception_stays_on_the_line_with_its_type() -> None:
    line = JsonFormatter().format(_record("failed", exc=True))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["exc_type"] == "ValueError" and "boom" in parsed["traceback"]


def test_control_characters_and_lone_surrogates_cannot_break_the_line() -> None:
    line = JsonFormatter().format(_record("a\nb\x1b[31m %s", "\ud800"))
    assert "\n" not in line and "\x1b" not in line and line.isascii()
    assert json.loads(line)["message"] == "a\nb\x1b[31m \ud800"


def test_an_unknown_format_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="BRIDGE_LOG_FORMAT must be one of text, json"):
        configure_logging()


@pytest.mark.redis
def test_the_procfile_processes_log_json_lines_only(bridge_factory: Any) -> None:
    bridge: Bridge = bridge_factory(BRIDGE_LOG_FORMAT="json")
    assert bridge.line_events(line_text_event(line_user_id(7), "こんにちは")).status_code == 200
    bridge.fake_slack.wait_for(lambda: len(bridge.fake_slack.roots(CHANNEL)) == 1)
    assert bridge.line_post(b"{}", signature="bad").status_code in (400, 401, 403)  # logs a rejection
    bridge.wait_settled()
    bridge.stop_all()
    for process in bridge.processes:
        lines = [line for line in process.log().splitlines() if line.strip()]
        assert lines, f"{process.name} logged nothing"
        parsed = [json.loads(line) for line in lines]  # every line is JSON
        assert all({"time", "level", "logger", "message"} <= set(p) for p in parsed)
    messages = " ".join(p["message"] for proc in bridge.processes for p in map(json.loads, proc.log().splitlines()))
    assert "worker started" in messages and "rejected" in messages
