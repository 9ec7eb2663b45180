#!/usr/bin/env python
"""How well the shipped risk expressions tell danger from calm, on the labelled corpus, and how
fast they match a long message.

Reads tests/risk_corpus.tsv (label, category, text: written for this project, see its header)
and config/bridge.toml (or --policy), and prints per category: for texts that need attention,
the share detected (recall) and the categories that caught them; for calm texts, the share
that would have alerted (false alarms), with every miss and false alarm listed under
--show. Then the time to match messages of 5,000 characters (one of them the corpus's calm texts run
together, so that the calm phrases are taken out of it), with the shipped expressions and with an
expression that would make a backtracking engine take seconds.

Targets (the issue "The safety net that does not miss"): recall at least 97%, false alarms at
most 3%, a 5,000-character message matched well under 50 ms. Exit status 1 when one is missed.

With a held-out file (--heldout, by default tests/risk_heldout.tsv when it exists: texts written
apart from the tuning and never tuned on, in the corpus's format) it also prints how many of those
are detected and how many false alarms they raise: how far the corpus figures carry over to
wording the tuning never saw. No target applies to it.

Run:  .venv/bin/python bench/risk.py [--policy PATH] [--heldout PATH] [--show]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.config.policy_file import load_policy  # noqa: E402
from bridge.config.safety import compile_expressions  # noqa: E402
from bridge.core.rules.risk import RiskCategory, Safety, normalise, risks_in  # noqa: E402

MIN_RECALL = 0.97
MAX_FALSE_ALARMS = 0.03
MAX_LONG_MESSAGE_MS = 50.0


def read_corpus(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, category, text = line.split("\t")
        rows.append((label, category, text.replace("\\n", "\n")))
    return rows


def slowest_ms(safety: Safety, texts: list[str], repeat: int = 5) -> float:
    worst = 0.0
    for text in texts:
        for _ in range(repeat):
            start = time.perf_counter()
            risks_in(text, safety)
            worst = max(worst, (time.perf_counter() - start) * 1000)
    return worst


def table(
    totals: dict[tuple[str, str], list[int]],
    label: str,
    title: str,
    column: str,
    caught_by: dict[str, collections.Counter[str]] | None,
) -> tuple[int, int]:
    """Print the share hit per category of one label, and the total; returns (texts, hit)."""
    print(f"{title:<18} {'texts':>6} {column:>9}" + ("   caught by" if caught_by is not None else ""))
    all_n = all_hit = 0
    for (kind, category), (n, hit) in sorted(totals.items()):
        if kind != label:
            continue
        all_n, all_hit = all_n + n, all_hit + hit
        by = ", ".join(f"{k} {v}" for k, v in caught_by[category].most_common(3)) if caught_by is not None else ""
        print(f"{category:<18} {n:>6} {hit / n:>8.1%}" + (f"   {by}" if by else ""))
    print(f"{'all':<18} {all_n:>6} {all_hit / max(1, all_n):>8.1%}\n")
    return all_n, all_hit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--policy", type=Path, default=ROOT / "config" / "bridge.toml")
    parser.add_argument("--corpus", type=Path, default=ROOT / "tests" / "risk_corpus.tsv")
    parser.add_argument(
        "--heldout",
        type=Path,
        default=ROOT / "tests" / "risk_heldout.tsv",
        help="texts never tuned on, in the corpus's format (skipped when the file does not exist)",
    )
    parser.add_argument("--show", action="store_true", help="list every miss and false alarm")
    args = parser.parse_args(argv)
    safety = load_policy(args.policy).safety
    rows = read_corpus(args.corpus)
    found: dict[str, tuple[RiskCategory, ...]] = {text: risks_in(text, safety) for _, _, text in rows}

    totals: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    caught_by: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    wrong: list[tuple[str, str, str, str]] = []
    for label, category, text in rows:
        hit = bool(found[text])
        counts = totals[(label, category)]
        counts[0] += 1
        counts[1] += hit
        for c in found[text]:
            caught_by[category][c.key] += 1
        if hit != (label == "risk"):
            matched = ", ".join(c.key for c in found[text]) or "-"
            wrong.append((label, category, matched, normalise(text)))

    print(f"corpus: {args.corpus} ({len(rows)} texts); policy: {args.policy}\n")
    risk_n, risk_hit = table(totals, "risk", "needs attention", "detected", caught_by)
    calm_n, calm_hit = table(totals, "calm", "calm", "alarms", None)
    recall = risk_hit / max(1, risk_n)
    false_alarms = calm_hit / max(1, calm_n)

    # The held-out set: written after the expressions were tuned on the corpus, never tuned on.
    # How far the corpus figures carry over to wording the tuning never saw; no target.
    if args.heldout.exists():
        held = read_corpus(args.heldout)
        held_risk = [text for label, _, text in held if label == "risk"]
        held_calm = [text for label, _, text in held if label == "calm"]
        caught = sum(1 for text in held_risk if risks_in(text, safety))
        alarms = sum(1 for text in held_calm if risks_in(text, safety))
        print(
            f"held out ({args.heldout.name}, never tuned on): detected {caught}/{len(held_risk)} "
            f"({caught / max(1, len(held_risk)):.1%}), false alarms {alarms}/{len(held_calm)} "
            f"({alarms / max(1, len(held_calm)):.1%})\n"
        )
        for label, category, text in held:
            held_found = risks_in(text, safety)
            if bool(held_found) != (label == "risk"):
                matched = ", ".join(c.key for c in held_found) or "-"
                wrong.append((f"held-out {label}", category, matched, normalise(text)))

    # Long messages: the shipped expressions, and one that takes a backtracking engine seconds. The
    # calm texts of the corpus run together, ending in a risk word, make the calm phrases be taken
    # out of 5,000 characters (they are looked for only once a category matched).
    calm_run = "".join(text for label, _, text in rows if label == "calm")[:4996] + "しにたい"
    long_texts = ["し" * 5000, "死に" * 2500, ("あいうえお" * 999) + "しにたい", "a" * 5000, calm_run]
    shipped_ms = slowest_ms(safety, long_texts)
    nested = compile_expressions(("(し+)+にたい",))
    hostile = Safety(categories=(RiskCategory("nested", "nested", safety.categories[0].level, (), nested),))
    hostile_ms = slowest_ms(hostile, ["し" * 5000 + "x", "し" * 28])
    print(f"5,000 characters, shipped expressions: slowest {shipped_ms:.2f} ms")
    print(f"5,000 characters, (し+)+にたい: slowest {hostile_ms:.2f} ms (a backtracking engine: seconds)\n")

    verdicts = [
        ("recall", f">= {MIN_RECALL:.0%}", f"{recall:.1%}", recall >= MIN_RECALL),
        ("false alarms", f"<= {MAX_FALSE_ALARMS:.0%}", f"{false_alarms:.1%}", false_alarms <= MAX_FALSE_ALARMS),
        (
            "5,000-character message",
            f"< {MAX_LONG_MESSAGE_MS:.0f} ms",
            f"{max(shipped_ms, hostile_ms):.2f} ms",
            max(shipped_ms, hostile_ms) < MAX_LONG_MESSAGE_MS,
        ),
    ]
    for name, target, measured, ok in verdicts:
        print(f"{name:<26} {target:<10} {'PASS' if ok else 'MISS'}  {measured}")
    if args.show and wrong:
        print("\nmisses and false alarms (normalised text):")
        for label, category, matched, text in wrong:
            print(f"  {label}/{category} [{matched}] {text}")
    return 0 if all(ok for *_, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
