"""Benchmark: verifier fidelity on the labelled dev set (tests/verify/data/devset.jsonl), ours
against the release's own reward function (math-verify with its normalisation), run side by
side on the same responses.

Each pair becomes a short response ending in `\\boxed{prediction}`. Ours: `check(...,
extract=True)` with the pair's options and equivalent answers. The release:
`compute_score(response, gold, equivalent_answers)` from
`../shared/baselines/deepvision-103k/verl-fork/verl/utils/reward_score/`, imported at run time
(never copied): `math_verify_eq_mcq.py` (math-verify plus its option-letter normalisation)
and `math_verify.py` (what its dispatcher calls for `math-77k`). Printed: the share of right
answers accepted and of wrong answers accepted, overall (also without the pairs drawn with
seeded values) and per class, then every pair we get wrong.

    python benchmarks/verify_fidelity.py [--devset PATH] [--baselines DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import time
from pathlib import Path
from types import ModuleType

from _common import machine
from deepvision.verify import SymbolicPool, check

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT / "tests" / "verify" / "data" / "devset.jsonl"
BASELINES = ROOT.parent / "shared" / "baselines" / "deepvision-103k"
REWARD_DIR = Path("verl-fork") / "verl" / "utils" / "reward_score"
RELEASE = ("math_verify_eq_mcq", "math_verify")  # the first is the baseline of the goals
OURS = "deepvision check"
SEEDED = "values drawn with a fixed seed"  # in the `source` of the generated pairs

Counts = tuple[int, int, int, int]  # right accepted, right, wrong accepted, wrong


def release_module(baselines: Path, name: str) -> ModuleType:
    """The release's reward module `name`, loaded from its file (its package __init__ imports
    verl, which this benchmark does not need)."""
    path = baselines / REWARD_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"release_{name}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SystemExit(f"cannot load the release's reward code from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def response(pred: str) -> str:
    """A model response whose final answer is `pred`, as a reward function receives it."""
    return f"Reading the figure and working step by step, we get the result.\n\\boxed{{{pred}}}"


def ours(pairs: list[dict]) -> list[bool]:
    pool = SymbolicPool(timeout=3.0).start()
    try:
        return [
            check(
                response(p["pred"]),
                p["gold"],
                equivalents=p.get("equivalents") or (),
                options=p.get("options"),
                extract=True,
                pool=pool,
            ).correct
            for p in pairs
        ]
    finally:
        pool.close()


def release(module: ModuleType, pairs: list[dict]) -> list[bool]:
    return [
        module.compute_score(response(p["pred"]), p["gold"], p.get("equivalents")) > 0
        for p in pairs
    ]


def counts(pairs: list[dict], accepted: list[bool], keep=lambda p: True) -> Counts:
    ra = rt = wa = wt = 0
    for p, ok in zip(pairs, accepted, strict=True):
        if not keep(p):
            continue
        if p["label"]:
            ra, rt = ra + ok, rt + 1
        else:
            wa, wt = wa + ok, wt + 1
    return ra, rt, wa, wt


def by_class(pairs: list[dict], accepted: list[bool]) -> dict[str, Counts]:
    classes = sorted({p["class"] for p in pairs})
    return {c: counts(pairs, accepted, lambda p, c=c: p["class"] == c) for c in classes}


def pct(hit: int, total: int) -> str:
    return f"{100 * hit / total:.1f}% ({hit}/{total})" if total else "-"


def print_overall(pairs: list[dict], results: dict[str, list[bool]], timing: dict) -> None:
    print("\n| verifier | pairs | right accepted | wrong accepted | wall s |")
    print("|---|---|---|---|---|")
    for name, acc in results.items():
        for label, keep in (
            ("all", lambda p: True),
            ("hand-built", lambda p: SEEDED not in p["source"]),
        ):
            ra, rt, wa, wt = counts(pairs, acc, keep)
            wall = f"{timing[name]:.1f}" if label == "all" else ""
            print(f"| {name} | {label} | {pct(ra, rt)} | {pct(wa, wt)} | {wall} |")


def print_classes(pairs: list[dict], results: dict[str, list[bool]], base: str) -> None:
    mine, theirs = by_class(pairs, results[OURS]), by_class(pairs, results[base])
    print(f"\nper class, ours vs {base}:")
    print("\n| class | right accepted: ours | release | wrong accepted: ours | release |")
    print("|---|---|---|---|---|")
    for cls, o in mine.items():
        b = theirs[cls]
        cells = (pct(o[0], o[1]), pct(b[0], b[1]), pct(o[2], o[3]), pct(b[2], b[3]))
        print(f"| {cls} | {' | '.join(cells)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devset", type=Path, default=DEVSET)
    ap.add_argument("--baselines", type=Path, default=BASELINES)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    lines = args.devset.read_text(encoding="utf-8").splitlines()
    pairs = [json.loads(line) for line in lines if line]
    print(f"machine: {machine()}")
    print(f"{len(pairs)} pairs ({sum(not p['label'] for p in pairs)} wrong) from {args.devset}")

    results: dict[str, list[bool]] = {}
    timing: dict[str, float] = {}
    runs = [(OURS, lambda: ours(pairs))]
    for name in RELEASE:
        module = release_module(args.baselines, name)
        runs.append((f"release {name}.py", lambda m=module: release(m, pairs)))
    for name, run in runs:
        t = time.perf_counter()
        results[name] = run()
        timing[name] = time.perf_counter() - t

    base = f"release {RELEASE[0]}.py"
    print_overall(pairs, results, timing)
    print_classes(pairs, results, base)
    for what, label in (("wrong answers we accept", False), ("right answers we reject", True)):
        rows = [
            (p["class"], p["gold"], p["pred"])
            for p, ok in zip(pairs, results[OURS], strict=True)
            if p["label"] is label and ok is not label
        ]
        print(f"\n{what}: {len(rows)}")
        for row in rows:
            print("  ", row)

    o, b = counts(pairs, results[OURS]), counts(pairs, results[base])
    mine, theirs = by_class(pairs, results[OURS]), by_class(pairs, results[base])
    over = [c for c in mine if mine[c][2] > theirs[c][2]]
    print(
        f"\nsummary: right accepted {100 * o[0] / o[1]:.1f}% vs {100 * b[0] / b[1]:.1f}% "
        f"({100 * (o[0] - b[0]) / o[1]:+.1f} points), wrong accepted {100 * o[2] / o[3]:.1f}% "
        f"vs {100 * b[2] / b[3]:.1f}% ({base}); classes where we accept more wrong answers: "
        f"{', '.join(over) or 'none'}"
    )


if __name__ == "__main__":
    main()
