"""The layout's promises that a reviewer would otherwise check by hand: the core is pure and
platform-neutral, and every module stays small enough to read."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

BRIDGE = Path(__file__).resolve().parent.parent / "bridge"
CORE_FILES = sorted((BRIDGE / "core").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(BRIDGE)))
def test_the_core_imports_only_the_standard_library_and_itself(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        if top == "bridge":
            assert name == "bridge.core" or name.startswith("bridge.core."), f"{name} outside the core"
        else:
            assert top in sys.stdlib_module_names, f"{name} is not the standard library"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(BRIDGE)))
def test_the_core_writes_no_slack_syntax(path: Path) -> None:
    """Mentions, broadcasts and thread links are typed parts; the Slack adapter renders them."""
    source = path.read_text(encoding="utf-8")
    for syntax in ("<@", "<!", "<#", "slack.com/archives", "&lt;", "&gt;", "&amp;"):
        assert syntax not in source, f"{syntax!r} in {path.name}"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in BRIDGE.rglob("*.py") if "__pycache__" not in p.parts),
    ids=lambda p: str(p.relative_to(BRIDGE)),
)
def test_every_module_is_under_400_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) < 400


def test_the_policy_file_sets_every_field_of_the_policy() -> None:
    """A field added to the core's Policy with a default must also be read from the policy file,
    or every deployment would silently run on the default."""
    import dataclasses

    from bridge.core.policy import Policy

    tree = ast.parse((BRIDGE / "config" / "policy_file.py").read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Policy"
    ]
    assert len(calls) == 1, "the policy file builds the Policy in one place"
    assert {keyword.arg for keyword in calls[0].keywords} == {field.name for field in dataclasses.fields(Policy)}
