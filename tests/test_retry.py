"""The retry rules: what follows each kind of attempt outcome. Pure functions."""

from __future__ import annotations

import pytest

from bridge.core.deliveries import Delivery, LinePush, LineReply, PostRole, Reaction, ThreadPost
from bridge.core.ids import CaseNumber, LineUserId, MessageTs
from bridge.core.parts import ChildWords
from bridge.core.retry import Action, Next, Outcome, OutcomeStatus, RetryRules, next_step, use_reply_token

RULES = RetryRules(give_up_after_s=3600, max_backoff_s=60, unanswered_wait_s=10)
PUSH = LinePush(to=LineUserId("U"), texts=("x",), retry_key="k", case=CaseNumber(1), slack_ts=MessageTs("1.1"))
CHILD_POST = ThreadPost(case=CaseNumber(1), text=(ChildWords("x"),), role=PostRole.CHILD)
NOTE = ThreadPost(case=CaseNumber(1), text=("x",), role=PostRole.NOTE)


def step(delivery: object, outcome: Outcome, *, attempts: int = 1, age_s: float = 0) -> object:
    """The attempts-th attempt of a delivery whose earlier attempts all failed."""
    return next_step(delivery, outcome, failures=attempts - 1, age_s=age_s, rules=RULES)  # type: ignore[arg-type]


def test_delivered_completes() -> None:
    assert step(PUSH, Outcome(OutcomeStatus.DELIVERED)).action is Action.COMPLETE  # type: ignore[attr-defined]


def test_an_outcome_says_whether_it_was_delivered_or_refused() -> None:
    assert Outcome(OutcomeStatus.DELIVERED).delivered and not Outcome(OutcomeStatus.DELIVERED).failed
    assert Outcome(OutcomeStatus.FAILED, "x").failed and not Outcome(OutcomeStatus.FAILED, "x").delivered
    assert not Outcome(OutcomeStatus.RETRY).failed and not Outcome(OutcomeStatus.REPLY_TOKEN_REJECTED).failed


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 0.5), (2, 0.8), (3, 1.28), (5, 3.2768), (8, 13.4217728), (11, 54.9755813888)]
)
def test_backoff_grows_by_1_6_with_each_failure(attempts: int, delay: float) -> None:
    result = step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), attempts=attempts)
    assert result.action is Action.RETRY and result.delay_s == pytest.approx(delay, rel=1e-9)  # type: ignore[attr-defined]


@pytest.mark.parametrize("attempts", [12, 13, 40, 1000])
def test_backoff_stops_growing_at_the_cap(attempts: int) -> None:
    # The eleventh failure's 0.5 x 1.6^10 = 54.98 s is still under the cap of 60; the twelfth's would be 88.
    result = step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), attempts=attempts)
    assert result.action is Action.RETRY and result.delay_s == 60  # type: ignore[attr-defined]


def test_five_failures_in_a_row_wait_under_eight_seconds_in_all() -> None:
    """What a case's next messages wait behind when its head fails five times in a row (each
    call failing one time in ten, as the chaos run's do): under 8 s, where doubling made it 15.5 s."""
    waits = attempts_in_turn(PUSH, [SERVER_ERROR] * 5)
    assert sum(w.delay_s for w in waits) == pytest.approx(7.9, abs=0.01)


def test_an_unanswered_request_waits_at_least_a_timeout() -> None:
    result = step(PUSH, Outcome(OutcomeStatus.RETRY, "timeout", ambiguous=True), attempts=1)
    assert result.delay_s == 10  # type: ignore[attr-defined]


def test_retry_after_holds_the_platform() -> None:
    result = step(CHILD_POST, Outcome(OutcomeStatus.RETRY, "429", retry_after=7))
    assert (result.action, result.delay_s, result.pause_platform_s) == (Action.RETRY, 7, 7)  # type: ignore[attr-defined]


def test_a_huge_retry_after_holds_the_platform_at_most_five_minutes() -> None:
    result = step(CHILD_POST, Outcome(OutcomeStatus.RETRY, "429", retry_after=10.0**9))
    assert (result.delay_s, result.pause_platform_s) == (300, 300)  # type: ignore[attr-defined]


def test_give_up_after_the_horizon_except_for_a_childs_words() -> None:
    assert step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), age_s=3601).action is Action.FAIL  # type: ignore[attr-defined]
    assert step(NOTE, Outcome(OutcomeStatus.RETRY, "500"), age_s=3601).action is Action.FAIL  # type: ignore[attr-defined]
    assert step(CHILD_POST, Outcome(OutcomeStatus.RETRY, "500"), age_s=10**6).action is Action.RETRY  # type: ignore[attr-defined]


def test_a_refused_childs_message_is_set_aside_not_dropped() -> None:
    assert step(CHILD_POST, Outcome(OutcomeStatus.FAILED, "bad")).action is Action.SET_ASIDE  # type: ignore[attr-defined]
    reaction = Reaction(case=CaseNumber(1), message_ts=MessageTs("1.1"), name="warning")
    assert step(reaction, Outcome(OutcomeStatus.FAILED, "bad")).action is Action.FAIL  # type: ignore[attr-defined]
    assert step(PUSH, Outcome(OutcomeStatus.FAILED, "400")).action is Action.FAIL  # type: ignore[attr-defined]


def test_a_refused_reply_token_turns_into_a_push() -> None:
    reply = LineReply(to=LineUserId("U"), reply_token="t", event_ms=0, texts=("x",), retry_key="k")
    assert step(reply, Outcome(OutcomeStatus.REPLY_TOKEN_REJECTED)).action is Action.PUSH_INSTEAD  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("token", "age_ms", "attempts", "expected"),
    [
        ("t", 1_000, 1, True),
        ("t", 49_999, 1, True),
        ("t", 50_000, 1, False),
        ("t", 1_000, 2, False),
        (None, 1_000, 1, False),
    ],
)
def test_reply_token_is_used_only_fresh_and_first(
    token: str | None, age_ms: int, attempts: int, expected: bool
) -> None:
    reply = LineReply(to=LineUserId("U"), reply_token=token, event_ms=1_000_000, texts=("x",), retry_key="k")
    assert use_reply_token(reply, now_ms=1_000_000 + age_ms, attempts=attempts) is expected


def test_only_a_refused_reply_token_turns_a_reply_into_a_push() -> None:
    reply = LineReply(to=LineUserId("U"), reply_token="t", event_ms=0, texts=("x",), retry_key="k")
    assert step(reply, Outcome(OutcomeStatus.RETRY, "500")).action is Action.RETRY  # type: ignore[attr-defined]
    assert step(reply, Outcome(OutcomeStatus.FAILED, "400")).action is Action.FAIL  # type: ignore[attr-defined]
    # A push has no token to refuse: the same outcome for it is not a reason to push again.
    assert step(PUSH, Outcome(OutcomeStatus.REPLY_TOKEN_REJECTED)).action is Action.FAIL  # type: ignore[attr-defined]


def test_give_up_exactly_at_the_horizon() -> None:
    assert step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), age_s=3599.9).action is Action.RETRY  # type: ignore[attr-defined]
    assert step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), age_s=3600).action is Action.FAIL  # type: ignore[attr-defined]


@pytest.mark.parametrize(("jitter", "delay"), [(0.5, 1.6384), (1.5, 4.9152)])
def test_jitter_scales_the_backoff(jitter: float, delay: float) -> None:
    result = next_step(PUSH, Outcome(OutcomeStatus.RETRY, "500"), failures=4, age_s=0, rules=RULES, jitter=jitter)
    assert result.action is Action.RETRY and result.delay_s == pytest.approx(delay, rel=1e-9)


RATE_LIMITED = Outcome(OutcomeStatus.RETRY, "429", retry_after=1, rate_limited=True)
SERVER_ERROR = Outcome(OutcomeStatus.RETRY, "500")


def attempts_in_turn(delivery: Delivery, outcomes: list[Outcome], *, seconds_apart: float = 1) -> list[Next]:
    """What follows each of a delivery's attempts, the failures counted as the deliverer counts
    them (Next.failed), the attempts seconds_apart."""
    failures, steps = 0, []
    for i, outcome in enumerate(outcomes):
        steps.append(next_step(delivery, outcome, failures=failures, age_s=i * seconds_apart, rules=RULES))
        failures += steps[-1].failed
    return steps


@pytest.mark.parametrize("delivery", [PUSH, CHILD_POST])
def test_a_burst_of_429s_does_not_grow_the_backoff(delivery: Delivery) -> None:
    *waits, after = attempts_in_turn(delivery, [RATE_LIMITED] * 6 + [SERVER_ERROR])
    assert [(w.action, w.delay_s, w.pause_platform_s, w.failed) for w in waits] == [(Action.RETRY, 1, 1, False)] * 6
    assert (after.action, after.delay_s, after.failed) == (Action.RETRY, 0.5, True)  # the first failure's


def test_the_backoff_grows_with_failures_only_between_429s() -> None:
    outcomes = [SERVER_ERROR, RATE_LIMITED, SERVER_ERROR, RATE_LIMITED, RATE_LIMITED, SERVER_ERROR]
    delays = [s.delay_s for s in attempts_in_turn(PUSH, outcomes) if s.failed]
    assert delays == pytest.approx([0.5, 0.8, 1.28], rel=1e-9)


@pytest.mark.parametrize(
    "outcome",
    [
        SERVER_ERROR,
        Outcome(OutcomeStatus.RETRY, "timeout", ambiguous=True),
        # LINE's 429 says nothing of when: backed off as a failure, not tried again at once
        Outcome(OutcomeStatus.RETRY, "429", rate_limited=True),
    ],
)
def test_an_attempt_without_a_time_to_come_back_is_a_failure(outcome: Outcome) -> None:
    assert step(PUSH, outcome).failed  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "outcome", [Outcome(OutcomeStatus.DELIVERED), Outcome(OutcomeStatus.FAILED, "400"), RATE_LIMITED]
)
def test_only_a_retried_failure_counts_as_one(outcome: Outcome) -> None:
    assert not step(PUSH, outcome).failed  # type: ignore[attr-defined]
    reply = LineReply(to=LineUserId("U"), reply_token="t", event_ms=0, texts=("x",), retry_key="k")
    assert not step(reply, Outcome(OutcomeStatus.REPLY_TOKEN_REJECTED)).failed  # type: ignore[attr-defined]


def test_a_429_storm_gives_up_at_the_horizon_neither_earlier_nor_never() -> None:
    """Give-up is counted in time since the delivery was enqueued, whatever its attempts were."""
    storm = attempts_in_turn(PUSH, [RATE_LIMITED] * 3602, seconds_apart=1)
    assert {s.action for s in storm[:3600]} == {Action.RETRY}  # 3,600 429s: not given up early
    assert storm[3600].action is Action.FAIL  # at the horizon, as after any other failure
    # A child's words are never given up, 429s or not.
    assert step(CHILD_POST, RATE_LIMITED, age_s=10**6).action is Action.RETRY  # type: ignore[attr-defined]
