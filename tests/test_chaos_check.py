"""The chaos run's verdicts (bench/relaybench/chaos_check.py): what it calls lost, doubled, out of
order and misplaced, given what the fakes received. A check that could not see these would let
the run PASS whatever the bridge did."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from relaybench.chaos_check import after_kills, judge, slow_by_fault
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


def test_what_was_in_flight_at_a_kill_is_timed_from_the_kill_with_and_without_refused_calls() -> None:
    # [child, seq, accepted at (s after t0), delivery time (s), webhook attempts]
    line_to_slack = [[0, 0, 9.0, 2.0, 1], [0, 1, 9.5, 8.0, 1], [1, 0, 19.0, 0.5, 1], [1, 1, 25.0, 1.0, 1]]
    result = {"line_to_slack": {"rows": line_to_slack}, "slack_to_line": {"rows": [[2, 0, 19.5, 4.0, 1]]}}
    events = [
        {"at_s": 10.0, "what": "worker killed and started again", "leader": True},
        {"at_s": 15.0, "what": "429 burst"},
        {"at_s": 20.0, "what": "worker killed and started again", "leader": False},
        {"at_s": 30.0, "what": "worker killed and started again", "leader": True},  # nothing in flight
    ]
    kills = after_kills(result, events, refused=frozenset({("line_to_slack", 0, 1)}))
    # kill at 10: in flight 0/0 (delivered at 11.0) and 0/1 (at 17.5, but a call carrying it was
    # refused); kill at 20: 2/0 (at 23.5); 1/0 was delivered at 19.5, before it
    assert [(k["at_s"], k["in_flight"], k["all_delivered_after_s"]) for k in kills["per_kill"]] == [
        (10.0, 2, 7.5),
        (20.0, 1, 3.5),
    ]
    assert [(k["clean_in_flight"], k["clean_delivered_after_s"]) for k in kills["per_kill"]] == [(1, 1.0), (1, 3.5)]
    assert (kills["kills"], kills["median_s"], kills["max_s"]) == (2, 7.5, 7.5)
    assert kills["clean"] == {"kills": 2, "median_s": 3.5, "max_s": 3.5}
    # without refusals known, every message counts as clean
    assert after_kills(result, events)["clean"]["max_s"] == 7.5


def test_a_message_behind_a_refused_one_in_its_conversation_is_not_clean() -> None:
    # child 0's second message waits behind its first, whose post was refused: neither is clean
    # (a refused message holds those after it, not those before: see the test above); child 1's
    # message, in flight at the same kill, is
    rows = [[0, 0, 9.0, 6.0, 1], [0, 1, 9.5, 6.0, 1], [1, 0, 9.8, 2.0, 1]]
    result = {"line_to_slack": {"rows": rows}, "slack_to_line": {"rows": [[0, 0, 9.9, 1.0, 1]]}}
    events = [{"at_s": 10.0, "what": "worker killed and started again", "leader": True}]
    (kill,) = after_kills(result, events, refused=frozenset({("line_to_slack", 0, 0)}))["per_kill"]
    # the counsellor's reply to child 0 is another conversation (its own lane): clean
    assert (kill["in_flight"], kill["clean_in_flight"], kill["clean_delivered_after_s"]) == (4, 2, 1.8)
