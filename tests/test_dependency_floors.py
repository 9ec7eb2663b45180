"""The dependencies that parse hostile input are declared, and installed, past their known
vulnerabilities (README "Dependencies"). CI's `pip check` holds the install to pyproject's floors;
this holds the floors to the fixes, so a floor lowered by mistake fails here."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

# The release that fixed the latest known vulnerability of each, spelled out here so that the
# test states what must hold rather than reading it back from pyproject.toml.
FIXED_IN = {
    "aiohttp": "3.14.4",  # CVE-2026-111750 (and the earlier ones, README)
    "starlette": "1.3.1",  # CVE-2026-54283; 1.0.1 CVE-2026-48710; 0.40.0 CVE-2024-47874
    "h11": "0.16.0",  # CVE-2025-43859
    "httptools": "0.6.3",  # CVE-2024-27982
    "fastapi": "0.133.0",  # not a fix: the first release that allows starlette 1.x
}


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = (Requirement(line) for line in project["dependencies"])
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


@pytest.mark.parametrize(("name", "fixed"), FIXED_IN.items())
def test_the_runtime_floor_is_past_the_fix(name: str, fixed: str) -> None:
    requirement = declared().get(name)
    assert requirement is not None, f"{name} has no floor of its own in [project] dependencies"
    floors = [Version(spec.version) for spec in requirement.specifier if spec.operator in (">=", "==", "~=", ">")]
    assert floors and max(floors) >= Version(fixed), f"{requirement} admits releases before {fixed}"


@pytest.mark.parametrize(("name", "fixed"), FIXED_IN.items())
def test_the_installed_release_is_past_the_fix(name: str, fixed: str) -> None:
    assert Version(importlib.metadata.version(name)) >= Version(fixed)
