"""The chaos run's verdicts (bench/relaybench/chaos_check.py): what it calls lost, doubled, out of
order and misplaced, given what the fakes received. A check that could not see these would let
the run PASS whatever the bridge did."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from relaybench.chaos_check import judge, slow_by_fault
from relaybench.chaos_driver import LS, Message


def sent(child: int, seq: int, *, accepted: bool = True) -> Message:
    msg = Message(f"m{child}-{seq}", LS, child, seq, first_sent=1.0)
    if accepted:
        msg.accepted_sent, msg.accepted = 1.0, 1.1
    return msg


MESSAGES = [sent(0, 0), sent(0, 1), sent(0, 2), sent(1, 0), sent(1, 1)]
HOME = {0: "T0", 1: "T1"}


def test_everything_once_in_order_in_its_place_is_clean() -> None:
    received = [("m0-0", 0, "T0"), ("m1-0", 1, "T1"), ("m0-1", 0, "T0"), ("m1-1", 1, "T1"), ("m0-2", 0, "T0")]
    verdict = judge(MESSAGES, received, home=HOME)
    assert {k: verdict[k] for k in ("lost", "doubled", "out_of_order", "misplaced", "never_accepted")} == dict.fromkeys(
        ("lost", "doubled", "out_of_order", "misplaced", "never_accepted"), 0
    )
    assert (verdict["sent"], verdict["accepted"], verdict["received"]) == (5, 5, 5)


def test_lost_doubled_out_of_order_and_misplaced_are_each_counted() -> None:
    received = [
        ("m0-0", 0, "T0"),
        ("m0-2", 0, "T0"),  # before m0-1: m0-1 is out of order
        ("m0-1", 0, "T0"),
        ("m0-2", 0, "T0"),  # again: doubled (counted once, and not as out of order)
        ("m1-0", 1, "T0"),  # in child 0's thread: misplaced
    ]  # m1-1 never arrives: lost
    verdict = judge(MESSAGES, received, home=HOME)
    assert (verdict["lost"], verdict["doubled"], verdict["out_of_order"], verdict["misplaced"]) == (1, 1, 1, 1)


def test_a_webhook_never_accepted_is_not_lost_but_counted_apart() -> None:
    refused = sent(1, 1, accepted=False)
    verdict = judge([*MESSAGES[:4], refused], [("m0-0", 0, "T0"), ("m0-1", 0, "T0"), ("m0-2", 0, "T0")], home=HOME)
    assert (verdict["lost"], verdict["never_accepted"], verdict["never_accepted_but_received"]) == (1, 1, 0)


def test_slow_messages_are_put_down_to_the_last_fault_they_met() -> None:
    rows = {"line_to_slack": {"rows": [[0, 0, 10.0, 3.5, 1], [0, 1, 30.0, 2.0, 1], [0, 2, 50.0, 0.2, 1]]}}
    result = rows | {"slack_to_line": {"rows": []}}
    events = [
        {"at_s": 9.0, "what": "worker killed and started again", "leader": True},
        {"at_s": 11.0, "what": "429 burst"},
        {"at_s": 12.0, "what": "worker exited by itself"},
    ]
    assert slow_by_fault(result, events) == {"429 burst": 1, "no fault nearby: retries after 5xx": 1}
