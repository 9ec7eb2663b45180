"""The policy file's [safety] section: the risk categories and the calm phrases, compiled with RE2.

RE2 matches in time linear in the message whatever the expression (an expression with nested
repetition such as `(し+)+にたい` cannot stall the router as a backtracking engine would), and it
refuses at load time what it cannot run that way (backreferences, lookaround): the policy file
is then refused, naming the expression, by `bridge check-config` and at start-up alike.
"""

from __future__ import annotations

import re
from typing import Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.core.rules.risk import Matcher, RiskCategory, RiskLevel, Safety

# Limits that keep a policy file (a hostile one too) from making the matcher large.
MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSIONS = 400
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


def compile_expressions(expressions: tuple[str, ...]) -> Matcher:
    """One matcher for any of the expressions (each checked on its own first, so an error names
    the expression). Raises ValueError."""
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
    try:
        # Compiled from UTF-8, matched against UTF-8 (risks_in encodes a message once).
        matcher: Matcher = re2.compile("|".join(f"(?:{e})" for e in expressions).encode(), options=_options())
    except re2.error:
        raise ValueError("the expressions together are too large to match") from None
    return matcher


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
