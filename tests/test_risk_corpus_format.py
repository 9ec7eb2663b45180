"""The risk corpus (tests/risk_corpus.tsv) is well formed and large enough: every example line is
label<TAB>category<TAB>text with a known label and a category of that label, no text is empty or repeated,
and every category holds at least its minimum number of examples."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "risk_corpus.tsv"

CATEGORIES: dict[str, frozenset[str]] = {
    "risk": frozenset(
        {"suicidal", "self_harm", "overdose", "abuse", "sexual", "danger_now", "school_violence", "harm_others"}
    ),
    "calm": frozenset({"hyperbole", "media", "lyrics", "news", "everyday", "negated"}),
}
MIN_PER_CATEGORY: dict[str, int] = {"risk": 60, "calm": 50}
MIN_PER_LABEL: dict[str, int] = {"risk": 480, "calm": 480}


@dataclass(frozen=True)
class Line:
    """A line of the file that is neither a comment nor empty, as it stands."""

    number: int
    raw: str

    def fields(self) -> list[str]:
        return self.raw.split("\t")


@dataclass(frozen=True)
class Example:
    number: int
    label: str
    category: str
    text: str


def read_text() -> str:
    # Strict decoding: a byte that is not UTF-8 fails here rather than turning into U+FFFD.
    return CORPUS.read_bytes().decode("utf-8")


def example_lines() -> list[Line]:
    lines: list[Line] = []
    for number, raw in enumerate(read_text().split("\n"), start=1):
        if raw.strip() and not raw.startswith("#"):
            lines.append(Line(number, raw))
    return lines


def examples() -> list[Example]:
    """The example lines that have three fields (the others fail test_every_example_has_three_fields)."""
    parsed: list[Example] = []
    for line in example_lines():
        fields = line.fields()
        if len(fields) == 3:
            label, category, text = fields
            parsed.append(Example(line.number, label, category, text))
    return parsed


def test_the_file_is_utf8_with_a_header_and_unix_line_ends() -> None:
    text = read_text()
    assert "\r" not in text, "line ends are \\n only"
    assert text.endswith("\n"), "the last line ends with a newline"
    assert text.startswith("#"), "the file opens with its comment header"


def test_every_example_has_three_fields() -> None:
    bad = [f"line {line.number}: {len(line.fields())} fields" for line in example_lines() if len(line.fields()) != 3]
    assert not bad, "\n".join(bad)


def test_every_label_is_known() -> None:
    bad = [f"line {e.number}: label {e.label!r}" for e in examples() if e.label not in CATEGORIES]
    assert not bad, "\n".join(bad)


def test_every_category_belongs_to_its_label() -> None:
    bad = [
        f"line {e.number}: category {e.category!r} is not a {e.label} category"
        for e in examples()
        if e.category not in CATEGORIES.get(e.label, frozenset())
    ]
    assert not bad, "\n".join(bad)


def test_no_text_is_empty_padded_or_holds_a_control_character() -> None:
    bad: list[str] = []
    for e in examples():
        if not e.text.strip():
            bad.append(f"line {e.number}: empty text")
        elif e.text != e.text.strip():
            bad.append(f"line {e.number}: whitespace around the text")
        elif any(unicodedata.category(char) == "Cc" for char in e.text):
            bad.append(f"line {e.number}: a control character in the text (a line break is written \\n)")
    assert not bad, "\n".join(bad)


def test_no_text_is_repeated() -> None:
    first: dict[str, int] = {}
    bad: list[str] = []
    for e in examples():
        if e.text in first:
            bad.append(f"line {e.number} repeats line {first[e.text]}: {e.text}")
        else:
            first[e.text] = e.number
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("label", "category"),
    sorted((label, category) for label, categories in CATEGORIES.items() for category in categories),
)
def test_every_category_has_its_minimum_count(label: str, category: str) -> None:
    count = Counter((e.label, e.category) for e in examples())[(label, category)]
    assert count >= MIN_PER_CATEGORY[label], f"{label}/{category}: {count} < {MIN_PER_CATEGORY[label]}"


@pytest.mark.parametrize("label", sorted(CATEGORIES))
def test_every_label_has_its_minimum_count(label: str) -> None:
    count = Counter(e.label for e in examples())[label]
    assert count >= MIN_PER_LABEL[label], f"{label}: {count} < {MIN_PER_LABEL[label]}"
