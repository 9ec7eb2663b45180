"""The policy file's [safety] section: the risk categories and the calm phrases, compiled with RE2.

RE2 matches in time linear in the message whatever the expression (an expression with nested
repetition such as `(し+)+にたい` cannot stall the router as a backtracking engine would), and it
refuses at load time what it cannot run that way (backreferences, lookaround): the policy file
is then refused, naming the expression, by `bridge check-config` and at start-up alike.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.core.rules.risk import Matcher, RiskCategory, RiskLevel, Safety

# Limits that keep a policy file (a hostile one too) from making the matcher large. 500, not 400:
# expressions that generalise name a concept pair in both orders and in its spellings, a few
# expressions per family (the shipped file has about 400); the groups below keep matching them
# fast, and a file at the limit still compiles in well under a second.
MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSIONS = 500
# RE2 runs an expression with a DFA built within a memory budget. One alternation of many
# expressions with windows ({0,n}) outgrows it on a long message, and RE2 falls back to a
# slower engine: taking the calm phrases out of a 5,000-character message took 50-90 ms as one
# expression, under 1 ms in groups of this many.
GROUP_SIZE = 12
# What the flat list of older policy files becomes: one urgent category.
LEGACY_KEY = "risk"
LEGACY_LABEL = "命や身体の危険"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error is raised (and names the expression); RE2 need not print it
    options.max_mem = 16 << 20
    # Only whether (and where) an expression matches is asked for, never a group: without
    # captures RE2 answers with its DFA alone, several times faster than with them.
    options.never_capture = True
    return options


class _Match(Protocol):
    def start(self) -> int: ...

    def span(self) -> tuple[int, int]: ...


class _Compiled(Protocol):
    """What RE2 compiles an expression to, as the groups use it."""

    def search(self, text: bytes, pos: int = 0, /) -> _Match | None: ...

    def sub(self, replacement: bytes, text: bytes, /) -> bytes: ...


class _Groups:
    """Expressions compiled in groups, matched as the one alternation of them all: `search` finds a
    match of any group; `sub` replaces, from left to right, the match that starts first (at a tie,
    that of the earlier group, as the alternation prefers its earlier expression), and goes on
    after it: the same text as one expression would leave."""

    def __init__(self, groups: tuple[_Compiled, ...]) -> None:
        self._groups = groups

    def search(self, text: bytes, /) -> object | None:
        for group in self._groups:
            match = group.search(text)
            if match is not None:
                return match
        return None

    def sub(self, replacement: bytes, text: bytes, /) -> bytes:
        pieces: list[bytes] = []
        done = 0
        # The next match of each group at or after `done` (kept while it still starts there).
        ahead = [group.search(text, 0) for group in self._groups]
        while True:
            first: _Match | None = None
            for match in ahead:  # the earliest start; at a tie, the earlier group
                if match is not None and (first is None or match.start() < first.start()):
                    first = match
            if first is None:
                break
            start, end = first.span()
            pieces += [text[done:start], replacement]
            done = end
            ahead = [
                group.search(text, done) if match is not None and match.start() < done else match
                for group, match in zip(self._groups, ahead, strict=True)
            ]
        pieces.append(text[done:])
        return b"".join(pieces)


def compile_expressions(expressions: tuple[str, ...]) -> Matcher:
    """One matcher for any of the expressions (each checked on its own first, so an error names
    the expression), compiled in groups of GROUP_SIZE. Raises ValueError."""
    for expression in expressions:
        if len(expression) > MAX_EXPRESSION_CHARS:
            raise ValueError(f"{expression[:40]!r}… is longer than {MAX_EXPRESSION_CHARS} characters")
        try:
            compiled = re2.compile(expression.encode(), options=_options())
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(
                f"{expression!r} cannot be matched in linear time or is not a valid expression ({reason})"
            ) from None
        if compiled.fullmatch(b"") is not None:
            raise ValueError(f"{expression!r} matches an empty message")
    groups: list[_Compiled] = []
    for start in range(0, len(expressions), GROUP_SIZE):
        group = expressions[start : start + GROUP_SIZE]
        try:
            # Compiled from UTF-8, matched against UTF-8 (risks_in encodes a message once).
            groups.append(re2.compile("|".join(f"(?:{e})" for e in group).encode(), options=_options()))
        except re2.error:
            raise ValueError("the expressions together are too large to match") from None
    return groups[0] if len(groups) == 1 else _Groups(tuple(groups))


class CategorySection(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")  # kept on each case it was found in
    label: str = Field(min_length=1, max_length=40)  # what supervisors see
    level: Literal["urgent", "watch"]
    expressions: tuple[str, ...] = Field(min_length=1)

    @field_validator("expressions")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        compile_expressions(value)
        return value

    @field_validator("label")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if re.search(r"[\x00-\x1f\x7f<>&]", value):
            raise ValueError("must be one line of plain text (no control characters, <, > or &)")
        return value


class SafetySection(_Strict):
    # Older policy files: one list of expressions, read as one urgent category.
    risk_expressions: tuple[str, ...] = ()
    # Phrases that are no risk (死ぬほど笑った, ゲームで殺された), taken out before matching.
    calm_expressions: tuple[str, ...] = ()
    categories: tuple[CategorySection, ...] = ()

    @field_validator("risk_expressions", "calm_expressions")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:
            compile_expressions(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SafetySection:
        keys = [c.key for c in self.categories] + ([LEGACY_KEY] if self.risk_expressions else [])
        if len(set(keys)) != len(keys):
            raise ValueError("two risk categories have the same key")
        count = sum(len(c.expressions) for c in self.categories) + len(self.risk_expressions)
        if count + len(self.calm_expressions) > MAX_EXPRESSIONS:
            raise ValueError(f"more than {MAX_EXPRESSIONS} expressions")
        return self


def build_safety(section: SafetySection) -> Safety:
    """The core's Safety: each category with its compiled matcher."""
    categories = [
        RiskCategory(
            key=c.key,
            label=c.label,
            level=RiskLevel(c.level),
            expressions=c.expressions,
            matcher=compile_expressions(c.expressions),
        )
        for c in section.categories
    ]
    if section.risk_expressions:
        categories.append(
            RiskCategory(
                key=LEGACY_KEY,
                label=LEGACY_LABEL,
                level=RiskLevel.URGENT,
                expressions=section.risk_expressions,
                matcher=compile_expressions(section.risk_expressions),
            )
        )
    calm = compile_expressions(section.calm_expressions) if section.calm_expressions else None
    return Safety(categories=tuple(categories), calm_expressions=section.calm_expressions, calm=calm)
