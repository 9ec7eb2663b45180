"""The risk matcher of the configuration layer: expressions compiled in groups (so that each RE2
DFA stays small on long messages) find and take out exactly what the one alternation of them all
would."""

from __future__ import annotations

from pathlib import Path

import pytest
import re2
from pydantic import ValidationError

from bridge.config.policy_file import load_policy
from bridge.config.safety import GROUP_SIZE, MAX_EXPRESSIONS, SafetySection, _options, compile_expressions
from bridge.core.rules.risk import normalise

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "risk_corpus.tsv"
# Expressions that match none of the texts below, to fill a group.
FILLERS = tuple(f"filler{i}" for i in range(GROUP_SIZE))
FILLERS_TOO = tuple(f"more{i}" for i in range(2 * GROUP_SIZE))


def one_alternation(expressions: tuple[str, ...]) -> re2._Regexp:
    return re2.compile("|".join(f"(?:{e})" for e in expressions).encode(), options=_options())


def corpus_texts() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[2].replace("\\n", "\n") for line in lines if line.strip() and not line.startswith("#")]


def test_a_phrase_inside_a_longer_one_of_a_later_group_is_taken_out_with_it() -> None:
    # The long phrase starts first, so the alternation takes it whole; taking out the short one
    # first (it is in an earlier group) would cut the long one in two and leave 叩かれ behind.
    expressions = ("助けてくれ", *FILLERS, "昔は[^ ]{0,20}今は安心")
    text = "昔は叩かれてたけど助けてくれて今は安心".encode()
    grouped = compile_expressions(expressions)
    assert grouped.sub(b" ", text) == one_alternation(expressions).sub(b" ", text) == b" "


def test_at_the_same_start_the_earlier_expression_wins_as_in_the_alternation() -> None:
    expressions = ("しにた", *FILLERS, "しにたい")
    grouped = compile_expressions(expressions)
    text = "しにたい".encode()
    assert grouped.sub(b"_", text) == one_alternation(expressions).sub(b"_", text) == "_い".encode()


def test_the_shipped_calm_phrases_leave_every_corpus_text_as_one_alternation_would() -> None:
    calm = load_policy(ROOT / "config" / "bridge.toml").safety
    assert calm.calm is not None and len(calm.calm_expressions) > GROUP_SIZE  # so the groups are used
    alternation = one_alternation(calm.calm_expressions)
    texts = corpus_texts()
    # Single texts, and texts run together (many calm phrases in one message).
    runs = ["".join(texts[i : i + 7]) for i in range(0, len(texts), 7)]
    different = [
        text for text in texts + runs if calm.calm.sub(b" ", b := normalise(text).encode()) != alternation.sub(b" ", b)
    ]
    assert not different, different[:3]


def test_search_finds_a_match_in_any_group() -> None:
    expressions = (*FILLERS, *FILLERS_TOO, "しにたい")
    grouped = compile_expressions(expressions)
    assert grouped.search("もうしにたい".encode()) is not None
    assert grouped.search(b"more20") is not None
    assert grouped.search("たのしい".encode()) is None


def test_a_policy_with_more_expressions_than_the_limit_is_refused() -> None:
    half = MAX_EXPRESSIONS // 2
    category = {"key": "many", "label": "多い", "level": "urgent", "expressions": [f"a{i}" for i in range(half)]}
    calm = [f"b{i}" for i in range(MAX_EXPRESSIONS - half)]
    SafetySection.model_validate({"categories": [category], "calm_expressions": calm})  # at the limit
    with pytest.raises(ValidationError, match=f"more than {MAX_EXPRESSIONS} expressions"):
        SafetySection.model_validate({"categories": [category], "calm_expressions": [*calm, "one_more"]})
