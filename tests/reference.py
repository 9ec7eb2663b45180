"""LINE's published reference material (../shared/reference beside the repository).

The files are not copied into the project. A test that reads one skips with a reason when the
folder is absent (a checkout on its own), and fails instead when ``REQUIRE_REFERENCE=1`` (CI),
so a check against LINE's own specs never goes quietly missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"


def reference_file(relative: str) -> Path:
    """The path of one reference file; skips (or, with REQUIRE_REFERENCE=1, fails) without it."""
    path = REFERENCE / relative
    if not path.is_file():
        message = f"LINE reference file {relative} not found under {REFERENCE}"
        if os.environ.get("REQUIRE_REFERENCE") == "1":
            pytest.fail(f"REQUIRE_REFERENCE=1 but {message}")
        pytest.skip(f"{message} (REQUIRE_REFERENCE=1 makes this fail)")
    return path
