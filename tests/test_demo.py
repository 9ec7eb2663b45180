"""`bridge demo` runs the real app and worker against embedded fakes and tells the story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bridge import demo

ROOT = Path(__file__).resolve().parent.parent


def test_demo_plays_a_consultation_from_both_sides() -> None:
    bridge = Path(sys.executable).parent / "bridge"
    # --verbose: the bridge's INFO log lines go to stderr, so the privacy check below has them all.
    command = [str(bridge), "demo", "--verbose"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
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
    # The story on stdout quotes the child on purpose; the bridge's own log lines never do.
    assert "bridge.worker" in result.stderr and "case opened" in result.stderr
    for private in (demo.CHILD, "クラスの子に無視されていて", "先月からです", "demo-line-token", "xoxb-demo-token"):
        assert private not in result.stderr, f"{private!r} reached the demo's log"
