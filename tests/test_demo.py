"""`bridge demo` runs the real app and worker against embedded fakes and tells the story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_plays_a_consultation_from_both_sides() -> None:
    bridge = Path(sys.executable).parent / "bridge"
    result = subprocess.run([str(bridge), "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "0120-967-866" in out  # the welcome reached the child
    assert "相談 #1" in out  # a case thread opened in Slack
    assert "bridge → 話してくれてありがとう。つらかったね 😔" in out  # the reply reached LINE, emoji converted
    assert "&lt;!channel&gt;" in out  # the child's ping was escaped
    assert "supervisors' channel: :rotating_light:" in out and "緊急時の確認" in out  # the escalation
    assert "今回の相談はここで終わりにします" in out and "UCOUNSELLOR> が終了" in out  # /close
    assert "The LINE user ID never reached Slack: True" in out
    assert "Traceback" not in result.stderr
