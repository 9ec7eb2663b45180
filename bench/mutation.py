"""Mutation testing of the pure core with mutmut, within a time budget, then a summary.

    .venv/bin/python bench/mutation.py                              # the whole core (bridge/core/)
    .venv/bin/python bench/mutation.py --module bridge/core/retry.py   # one file
    .venv/bin/python bench/mutation.py --no-run                     # summarise the last results again
    .venv/bin/python bench/mutation.py --target engine              # worker.py and store.py (see README)

mutmut copies bridge/ into mutants/ and mutates the copy; the tree is never changed. Each mutant
runs only the unit tests that call the function it changes (pyproject's [tool.mutmut] lists the
core's pure test files; the e2e tests are never run). Every run checks all the selected mutants
again against the current tests and code, so the figures never come from an earlier run.

Prints, per module, mutants total / killed / survived / timed out, then every survivor (file:line,
the mutation, and its mutmut name for `mutmut show NAME`). Exit code: 0 when the tool ran, even
with survivors or when the budget ran out (the summary says how many were not checked); 1 when the
tool failed or the run was interrupted.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MINUTES = 20.0
GRACE_S = 60.0  # after the budget: time mutmut gets to stop its worker and save, before SIGKILL
PROGRESS_EVERY_S = 30.0
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

# The engine's settings, swapped into a copy of pyproject's [tool.mutmut] and run in a scratch
# directory of its own (so its results never mix with the core's). Its tests use fakeredis, in
# process: no redis-server, no subprocess. The e2e tests, which really exercise it, are not run.
ENGINE_DIR = ROOT / ".mutmut-engine"
ENGINE_ONLY_MUTATE = [
    "bridge/engine/router.py",
    "bridge/engine/decide.py",
    "bridge/engine/commit.py",
    "bridge/adapters/redis/commit.py",
    "bridge/adapters/redis/store.py",
    "bridge/adapters/redis/lanes.py",
    "bridge/adapters/redis/inbound.py",
]
ENGINE_TESTS = ["tests/test_store.py", "tests/test_router.py", "tests/test_commit.py", "tests/test_dispatch.py"]
ENGINE_TYPE_CHECK = ["mypy", "--strict", "--no-warn-unused-ignores", "--output", "json", *ENGINE_ONLY_MUTATE]

# mutmut's exit codes of a checked mutant, grouped as the summary reports them (mutmut.stats).
KILLED = "killed"
SURVIVED = "survived"
TIMEOUT = "timeout"
NO_TESTS = "no tests"  # no selected test calls the function
TYPE_CHECK = "type check"  # mypy --strict rejects it (CI runs mypy, so it could never land)
NOT_CHECKED = "not checked"
OTHER = "other"  # suspicious, segfault, interrupted


def status_of(exit_code: int | None) -> str:
    if exit_code is None:
        return NOT_CHECKED
    if exit_code in (1, 3):
        return KILLED
    if exit_code == 0:
        return SURVIVED
    if exit_code in (36, 24, -24, 152, 255):
        return TIMEOUT
    if exit_code in (5, 33):
        return NO_TESTS
    if exit_code == 37:
        return TYPE_CHECK
    return OTHER


@dataclass(frozen=True)
class Target:
    name: str
    workdir: Path  # where mutmut runs: its pyproject.toml is read and mutants/ written there
    only_mutate: list[str]
    tests: list[str]
    type_check: list[str]

    def modules(self) -> list[str]:
        """The source files this target mutates, as paths relative to the repository."""
        found = {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / "bridge").rglob("*.py")
            if "__pycache__" not in path.parts
        }
        return sorted(p for p in found if any(fnmatch.fnmatch(p, pattern) for pattern in self.only_mutate))


def mutmut_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, Any] = tomllib.load(f).get("tool", {}).get("mutmut", {})
    if not table:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    return table


def core_target() -> Target:
    table = mutmut_config()
    return Target(
        "core",
        ROOT,
        list(table["only_mutate"]),
        list(table["pytest_add_cli_args_test_selection"]),
        list(table.get("type_check_command", [])),
    )


def engine_target() -> Target:
    return Target("engine", ENGINE_DIR, ENGINE_ONLY_MUTATE, ENGINE_TESTS, ENGINE_TYPE_CHECK)


def prepare_engine_dir(target: Target) -> None:
    """A scratch tree: links to bridge/, tests/ and config/, and pyproject.toml with the
    engine's [tool.mutmut] settings in place of the core's."""
    target.workdir.mkdir(exist_ok=True)
    for name in ("bridge", "tests", "config"):
        link = target.workdir / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name, target_is_directory=True)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # Drop the core's table (up to the next table header), then append the engine's.
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    table = {
        **mutmut_config(),
        "only_mutate": target.only_mutate,
        "pytest_add_cli_args_test_selection": target.tests,
        "type_check_command": target.type_check,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    (target.workdir / "pyproject.toml").write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")


def has_functions(module: str) -> bool:
    """mutmut mutates inside functions and methods only: a module of plain dataclasses has no mutants
    (and naming it alone would make mutmut stop with "nothing matches")."""
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) for node in ast.walk(tree))


def mutant_glob(module: str) -> str:
    """bridge/core/retry.py -> bridge.core.retry.* (mutmut's names: module.x_function__mutmut_N)."""
    return module.removesuffix(".py").replace("/", ".") + ".*"


# --------------------------------------------------------------------------- running mutmut


@dataclass
class RunResult:
    returncode: int | None
    out_of_budget: bool
    seconds: float
    log: Path
    last_status: str = ""


class Interrupted(Exception):
    pass


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def mutmut_executable() -> str:
    beside = Path(sys.executable).parent / "mutmut"
    if beside.exists():
        return str(beside)
    found = shutil.which("mutmut")
    if found is None:
        raise SystemExit("mutmut is not installed: .venv/bin/pip install -e '.[dev]'")
    return found


def run_mutmut(target: Target, modules: Sequence[str], *, minutes: float, max_children: int) -> RunResult:
    """Run `mutmut run` for the given mutant names until it ends or the budget runs out.

    The budget covers the whole run (making the mutants, mapping tests to functions, the
    mutants themselves). When it runs out, mutmut gets SIGINT (it stops its worker and keeps
    what it checked), then SIGKILL for its whole process group after GRACE_S.
    """
    mutants_dir = target.workdir / "mutants"
    mutants_dir.mkdir(exist_ok=True)
    # Which tests call which function is kept between runs and only extended for new tests;
    # an edited test could then be missed for a function it now calls. Map it afresh.
    (mutants_dir / "mutmut-stats.json").unlink(missing_ok=True)
    # The selected modules' mutants are made again, so a mutant the budget leaves unchecked
    # shows as such instead of with an earlier run's result.
    for module in modules:
        for suffix in ("", ".meta", ".spans"):
            (mutants_dir / (module + suffix)).unlink(missing_ok=True)
    log = mutants_dir / "mutation-run.log"
    globs = [mutant_glob(m) for m in modules if has_functions(m)]  # named, mutmut checks each one again
    command = [mutmut_executable(), "run", "--max-children", str(max_children), *globs]
    print(f"running: {' '.join(command[1:])}  (in {target.workdir}, budget {minutes:g} min, log {log})", flush=True)
    # mutmut runs the type checker by its bare name (it reads mypy's output only then): find
    # the one beside this interpreter, as an activated venv would.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env["PYTHONUNBUFFERED"] = "1"  # its progress reaches the log (and this script) as it happens
    started = time.monotonic()
    deadline = started + minutes * 60
    last_status = [""]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=target.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert process.stdout is not None
        reader = threading.Thread(target=_copy_output, args=(process.stdout, log_file, last_status), daemon=True)
        reader.start()
        out_of_budget = False
        try:
            next_progress = started + PROGRESS_EVERY_S
            while process.poll() is None:
                now = time.monotonic()
                if now >= deadline and not out_of_budget:
                    out_of_budget = True
                    print(f"budget of {minutes:g} min ran out: stopping mutmut", flush=True)
                    process.send_signal(signal.SIGINT)
                    deadline = now + GRACE_S
                elif now >= deadline:
                    print("mutmut did not stop in time: killing it", flush=True)
                    _kill_group(process)
                    break
                if now >= next_progress:  # mutmut's own line: a phase, or its tally over every module it knows
                    print(f"  [{_clock(now - started)}] {last_status[0]}", flush=True)
                    next_progress = now + PROGRESS_EVERY_S
                time.sleep(0.5)
        finally:
            if process.poll() is None:
                _kill_group(process)
            process.wait(30)
            reader.join(10)
    return RunResult(process.returncode, out_of_budget, time.monotonic() - started, log, last_status[0])


def _copy_output(stream: Any, log_file: Any, last_status: list[str]) -> None:
    """Copy mutmut's output to the log; keep its latest progress line (it redraws it with \\r)."""
    pending = b""
    while chunk := stream.read1(65536):
        log_file.write(chunk)
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in lines:
            # The spinner's line: a phase ("Running stats") or the tally ("1200/3451  🎉 1004 ...").
            text = line.decode("utf-8", "replace").strip()
            if text and text[0] in SPINNER:
                last_status[0] = text.lstrip(SPINNER + " ")
    log_file.flush()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60:02d}:{int(seconds) % 60:02d}"


# --------------------------------------------------------------------------- results


@dataclass
class Survivor:
    name: str  # mutmut's name, for `mutmut show`
    module: str
    line: int
    function: str
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass
class ModuleResult:
    module: str
    counts: Counter[str]
    survivors: list[Survivor]


def load_results(target: Target, modules: Sequence[str]) -> list[ModuleResult] | None:
    """The recorded outcome of every mutant of the modules, or None if mutmut left none."""
    results = []
    found_any = False
    for module in modules:
        meta = target.workdir / "mutants" / (module + ".meta")
        if not meta.exists():
            results.append(ModuleResult(module, Counter(), []))
            continue
        found_any = True
        exit_codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        counts = Counter(status_of(code) for code in exit_codes.values())
        counts["total"] = len(exit_codes)
        survived = sorted((name for name, code in exit_codes.items() if status_of(code) == SURVIVED), key=_name_order)
        results.append(ModuleResult(module, counts, [describe_survivor(target, module, name) for name in survived]))
    return results if found_any else None


def _name_order(name: str) -> tuple[str, int]:
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def describe_survivor(target: Target, module: str, name: str) -> Survivor:
    """Where a surviving mutant is in the source and what it changed, from mutmut's own diff."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    function, class_name = orig_function_and_class_names_from_key(name)
    qualified = f"{class_name}.{function}" if class_name else function
    survivor = Survivor(name, module, 0, qualified)
    try:
        with _cwd(target.workdir):
            diff = get_diff_for_mutant(name, path=module)
    except Exception as error:  # a summary must not fail on one unreadable mutant
        survivor.before = [f"(no diff: {type(error).__name__}: {error})"]
        return survivor
    relative_line = offset = 0
    for line in diff.splitlines():
        hunk = re.match(r"^@@ -(\d+)", line)
        if hunk:
            offset = int(hunk[1])
            continue
        if line.startswith(("---", "+++")) or not line:
            continue
        if line.startswith("-"):
            survivor.before.append(line[1:])
            relative_line = relative_line or offset
        elif line.startswith("+"):
            survivor.after.append(line[1:])
            relative_line = relative_line or offset
        if not line.startswith("+"):
            offset += 1
    survivor.line = _source_line(ROOT / module, class_name, function, relative_line, survivor.before)
    return survivor


def _source_line(path: Path, class_name: str | None, function: str, relative_line: int, before: list[str]) -> int:
    """The line in the source file of a change that is relative_line into the function's
    text as mutmut prints it. That text may start at a comment above the def, so the line
    is confirmed by finding the removed text near where it should be."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    body: Sequence[ast.stmt] = ast.parse(source).body
    if class_name is not None:
        body = next((n.body for n in body if isinstance(n, ast.ClassDef) and n.name == class_name), [])
    node = next((n for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function), None)
    if node is None:
        return 0
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    expected = first + max(relative_line, 1) - 1
    if not before:
        return expected
    end = node.end_lineno or len(lines)
    matches = [n for n in range(max(1, first - 5), end + 1) if lines[n - 1] == before[0]]
    return min(matches, key=lambda n: abs(n - expected)) if matches else expected


# --------------------------------------------------------------------------- output


COLUMNS = (KILLED, TYPE_CHECK, SURVIVED, TIMEOUT, NO_TESTS, OTHER, NOT_CHECKED)


def print_summary(results: Sequence[ModuleResult]) -> None:
    width = max(len("module"), *(len(r.module) for r in results))
    header = f"{'module':<{width}}  {'total':>6}" + "".join(f"  {c:>11}" for c in COLUMNS) + "  score"
    print()
    print(header)
    print("-" * len(header))
    total: Counter[str] = Counter()
    for result in results:
        print(_row(result.module, result.counts, width))
        total.update(result.counts)
    print("-" * len(header))
    print(_row("all", total, width))
    print(
        f"\n{NO_TESTS}: no selected test calls the function. {OTHER}: suspicious, segfault, interrupted. "
        f"{NOT_CHECKED}: the budget ran out first.\n{TYPE_CHECK}: mypy --strict rejects it (CI runs mypy). "
        "score: killed, type check and timed out, of those checked."
    )
    survivors = [s for r in results for s in r.survivors]
    print(f"\nsurvivors ({len(survivors)}):")
    for s in survivors:
        print(f"  {s.module}:{s.line}  {s.function}  [{s.name.rpartition('.')[2]}]")
        for text in s.before[:3]:
            print(f"      - {text.strip()}")
        for text in s.after[:3]:
            print(f"      + {text.strip()}")
        if not s.before and not s.after:
            print("      (no change shown: see mutmut show)")
    if survivors:
        print("\n`mutmut show NAME` (from the directory it ran in) prints the whole diff of one mutant.")


def _row(label: str, counts: Counter[str], width: int) -> str:
    checked = counts["total"] - counts[NOT_CHECKED]
    caught = counts[KILLED] + counts[TYPE_CHECK] + counts[TIMEOUT]
    score = f"{100 * caught / checked:5.1f}%" if checked else "    -"
    return f"{label:<{width}}  {counts['total']:>6}" + "".join(f"  {counts[c]:>11}" for c in COLUMNS) + f"  {score}"


def write_json(path: Path, results: Sequence[ModuleResult], run: RunResult | None) -> None:
    data = {
        "run": None
        if run is None
        else {"seconds": round(run.seconds, 1), "returncode": run.returncode, "out_of_budget": run.out_of_budget},
        "modules": {
            r.module: {
                **{key: r.counts[key] for key in ("total", *COLUMNS)},
                "survivors": [
                    {"name": s.name, "line": s.line, "function": s.function, "before": s.before, "after": s.after}
                    for s in r.survivors
                ],
            }
            for r in results
        },
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--target", choices=("core", "engine"), default="core", help="what to mutate (default core)")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="PATH",
        help="mutate only this file of the target, e.g. bridge/core/retry.py (repeatable)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help=f"time budget for the whole run (default {DEFAULT_MINUTES:g}; the full core takes about 15)",
    )
    parser.add_argument("--max-children", type=int, default=1, help="mutants checked at once (default 1)")
    parser.add_argument("--no-run", action="store_true", help="only summarise the results of the last run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures and survivors as JSON")
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    if args.max_children < 1:
        parser.error("--max-children must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    target = core_target() if args.target == "core" else engine_target()
    modules = target.modules()
    if args.module:
        wanted = [Path(m).as_posix().removeprefix("./") for m in args.module]
        unknown = [m for m in wanted if m not in modules]
        if unknown:
            print(f"not a module of the {target.name} target: {', '.join(unknown)} (it has: {', '.join(modules)})")
            return 1
        modules = wanted
    run: RunResult | None = None
    if not args.no_run and not any(has_functions(m) for m in modules):
        print(f"nothing to mutate: no functions in {', '.join(modules)}")
        return 0
    if not args.no_run:
        if target.name == "engine":
            prepare_engine_dir(target)
        signal.signal(signal.SIGTERM, _raise_interrupted)
        try:
            run = run_mutmut(target, modules, minutes=args.minutes, max_children=args.max_children)
        except (Interrupted, KeyboardInterrupt):
            print("interrupted: mutmut stopped; the results so far are in mutants/")
            return 1
        print(f"mutmut finished in {_clock(run.seconds)} (exit code {run.returncode})", flush=True)
        if not run.out_of_budget and run.returncode != 0:
            print(f"mutmut failed (exit code {run.returncode}); the end of its log:")
            _print_log_tail(run.log)
            return 1
    results = load_results(target, modules)
    if results is None:
        print("mutmut recorded no results")
        if run is not None:
            _print_log_tail(run.log)
        return 1
    print_summary(results)
    if args.json:
        write_json(args.json, results, run)
    if run is not None and run.out_of_budget:
        not_checked = sum(r.counts[NOT_CHECKED] for r in results)
        print(f"\nthe budget ran out: {not_checked} mutants not checked (give more --minutes, or one --module)")
    return 0


def _print_log_tail(log: Path, lines: int = 40) -> None:
    text = log.read_bytes().decode("utf-8", "replace").replace("\r", "\n")
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    print("\n".join(f"  | {line}" for line in tail))


if __name__ == "__main__":
    sys.exit(main())
