"""The fakes are a test and demo tool: production code never imports them, nor what only they need.

pyproject.toml keeps fakeredis (with lupa) and httpx in the `demo` extra, out of a production
install; these tests fail if a module of the web or worker process starts importing one of them,
and check that `bridge demo` without the extra says how to install it instead of a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Spelled out here, not taken from bridge.cli: the test states what production must leave out.
EXTRA_ONLY = ("fakeredis", "lupa", "httpx")
DEMO_ONLY = ("bridge.demo", "bridge.fakes")


def production_modules() -> list[str]:
    """Every module of the bridge package except the demo and the fakes, found on disk."""
    names = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == demo or name.startswith(demo + ".") for demo in DEMO_ONLY):
            names.append(name)
    return names


def test_production_modules_do_not_import_the_demo_extra() -> None:
    modules = production_modules()
    assert {"bridge.app", "bridge.cli", "bridge.engine.worker", "bridge.adapters.redis.store"} <= set(modules)
    assert {"bridge.adapters.line.client", "bridge.adapters.slack.listeners"} <= set(modules)
    # In a fresh interpreter: import every production module and the servers the Procfile runs,
    # run the commands that need no Redis, then report everything that was imported.
    script = (
        "import contextlib, importlib, io, json, sys\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "import uvicorn, uvloop\n"
        "from bridge.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    codes = [main(['check-config', 'config/bridge.toml'])]\n"
        "    codes.append(main(['hours', '--config', 'config/bridge.toml']))\n"
        "assert codes == [0, 0], codes\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *modules], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    imported: list[str] = json.loads(result.stdout)
    assert "bridge.engine.worker" in imported and "slack_bolt" in imported
    leaked = sorted(
        {name.split(".")[0] for name in imported if name.split(".")[0] in EXTRA_ONLY}
        | {demo for demo in DEMO_ONLY for name in imported if name == demo or name.startswith(demo + ".")}
    )
    assert leaked == [], f"production code imports what only the demo and the tests need: {leaked}"


def test_the_demo_extra_stays_out_of_the_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = " ".join(project["dependencies"])
    assert not [name for name in EXTRA_ONLY if name in runtime], runtime
    extras = project["optional-dependencies"]
    demo = " ".join(extras["demo"])
    assert "fakeredis[lua]" in demo and "httpx" in demo
    # The tests need everything the demo needs.
    assert f"{project['name']}[demo]" in extras["dev"] or set(extras["demo"]) <= set(extras["dev"])


# Run in a fresh interpreter: the named top-level modules cannot be imported, as in an install
# without the demo extra.
WITHOUT = (
    "import sys\n"
    "class Missing:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in sys.argv[1:]:\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "        return None\n"
    "sys.meta_path.insert(0, Missing())\n"
    "from bridge.cli import main\n"
    "sys.exit(main(['demo']))\n"
)


@pytest.mark.parametrize("missing", [["fakeredis", "lupa", "httpx"], ["fakeredis"], ["lupa"], ["httpx"]])
def test_demo_without_the_extra_says_how_to_install_it(missing: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, *missing], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "demo extra" in lines[0] and "pip install -e '.[demo]'" in lines[0]
    assert f"missing: {', '.join(missing)})" in lines[0]
