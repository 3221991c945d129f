"""Benchmark: answer verification speed and correctness against the per-call math-verify
baseline (math_metric built for every item, gold wrapped in \\boxed{}, one process).

1. 10,000 realistic responses (step-by-step reasoning ending in a boxed answer, the K12 mix of
   answer kinds); the labeled dev set (tests/verify/devset.jsonl) is part of them, and both
   confusion matrices on it are printed.
2. An RL reward batch: 512 prompts x 16 rollouts (answers repeat within a group), through
   `compute_score_batch`.
3. Worst-case latency over pathological answers with a 2 s limit.

    python benchmarks/verify_speed.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

from _common import machine
from deepvision.verify import SymbolicPool, check, verify_batch
from deepvision.verify.rewards import compute_score_batch

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT / "tests" / "verify" / "devset.jsonl"


def _kinds(r: random.Random) -> list[tuple[str, list[str], list[str]]]:
    """(gold, right answers, wrong answers) for each answer kind, with fresh random values."""
    n, m, k = r.randint(2, 999), r.randint(2, 97), r.randint(2, 12)
    a, b = r.randint(1, 40), r.randint(41, 90)
    letters = "ABCD"
    L = r.choice(letters)
    L2 = "".join(sorted(r.sample(letters, 2)))
    return [
        (L, [L, f"({L})", f"{L}."], [x for x in letters if x != L][:2]),
        (L2, [L2, ", ".join(L2)], [L2[0], "ABC" if L2 != "ABC" else "ABD"]),
        (str(n), [str(n), f"{n}.0"], [str(n + 1), str(-n)]),
        (f"{n}.25", [f"{n}.25", f"\\frac{{{4 * n + 1}}}{{4}}"], [f"{n}.2", f"{n}.52"]),
        (
            f"\\frac{{{m}}}{{{m + 1}}}",
            [f"\\frac{{{2 * m}}}{{{2 * m + 2}}}", f"{m}/{m + 1}"],
            [f"\\frac{{{m + 1}}}{{{m}}}", f"{m}/{m + 2}"],
        ),
        (
            f"{k}\\sqrt{{3}}",
            [f"{k}\\sqrt{{3}}", f"\\sqrt{{{3 * k * k}}}"],
            [f"{k}\\sqrt{{2}}", f"\\sqrt{{{3 * k}}}"],
        ),
        (f"{k}\\pi", [f"{k}\\pi", f"{k}π"], [f"{k + 1}\\pi", f"{3.14 * k:.2f}"]),
        (f"({a},{b})", [f"({a},{b})", f"({a}, {b})"], [f"({b},{a})", f"({a},{b + 1})"]),
        (f"({a},{b})", [f"{a}<x<{b}"], [f"[{a},{b}]", f"({a},{b - 1})"]),
        (f"y={k}x+{a}", [f"y={k}x+{a}", f"{k}x-y+{a}=0"], [f"y={k}x-{a}", f"y={k + 1}x+{a}"]),
        (f"{a}:{b}", [f"{a}:{b}", f"{2 * a}:{2 * b}"], [f"{b}:{a}", f"{a}:{b + 1}"]),
        (f"{n}cm", [str(n), f"{n} \\text{{cm}}"], [f"{n}m", str(n + 1)]),
        (f"{a}^\\circ", [f"{a}°", str(a)], [f"{b}°", f"{a + 1}^\\circ"]),
        (f"{a}\\%", [f"{a}%", f"{a / 100}"], [f"{a + 5}%", f"{a / 10}"]),
        (f"x^2-{k * k}", [f"(x-{k})(x+{k})", f"x^2-{k * k}"], [f"x^2+{k * k}", f"(x-{k})^2"]),
        ("rectangle", ["Rectangle", "\\text{rectangle}"], ["square", "rhombus"]),
    ]


def reasoning(rng: random.Random, answer: str) -> str:
    steps = []
    for k in range(rng.randint(6, 14)):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        steps.append(
            f"Step {k + 1}: from the figure, the segment is {a} and the angle is {b}^\\circ, "
            f"so we compute ${a} \\times {b} = {a * b}$ and check it against the diagram again."
        )
    return "\n".join(steps) + f"\nTherefore the final answer is $\\boxed{{{answer}}}$."


def make_items(n: int, seed: int = 0) -> tuple[list[dict], int]:
    rng = random.Random(seed)
    items = []
    labeled = 0
    if DEVSET.exists():
        for line in DEVSET.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            items.append(
                {
                    "gold": d["gold"],
                    "pred": d["pred"],
                    "expected": d["expected"],
                    "equivalents": d.get("equivalents") or [],
                    "options": d.get("options"),
                    "response": reasoning(rng, d["pred"]),
                }
            )
        labeled = len(items)
    while len(items) < n:
        kinds = _kinds(rng)
        gold, right, wrong = kinds[rng.randrange(len(kinds))]
        ok = rng.random() < 0.6
        pred = rng.choice(right if ok else wrong)
        items.append(
            {
                "gold": gold,
                "pred": pred,
                "expected": ok,
                "equivalents": [],
                "options": None,
                "response": reasoning(rng, pred),
            }
        )
    return items[:n], labeled


def baseline(items: list[dict]) -> list[bool]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig
    from math_verify.metric import math_metric

    out = []
    for it in items:
        metric = math_metric(
            gold_extraction_target=(LatexExtractionConfig(),),
            pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig()),
        )
        ok = False
        for gold in [it["gold"], *it["equivalents"]]:
            try:
                score, _ = metric([f"\\boxed{{{gold}}}"], [it["response"]])
            except Exception:
                score = 0.0
            if score > 0:
                ok = True
                break
        out.append(ok)
    return out


def confusion(expected: list[bool], got: list[bool]) -> dict[str, int]:
    pairs = list(zip(expected, got, strict=True))
    return {
        "true accept": sum(e and g for e, g in pairs),
        "false reject": sum(e and not g for e, g in pairs),
        "false accept": sum(not e and g for e, g in pairs),
        "true reject": sum(not e and not g for e, g in pairs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--baseline-n", type=int, default=0, help="Baseline on the first N (0: all).")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print(f"machine: {machine()}")
    items, labeled = make_items(args.n)
    distinct = len({(it["gold"], it["pred"]) for it in items})
    print(f"{len(items)} responses, {distinct} distinct (reference, answer) pairs")

    pool = SymbolicPool(timeout=3.0)
    pool.start()  # start the workers (process start is not per-item work)
    t = time.perf_counter()
    ours = verify_batch(
        [
            {
                "pred": it["response"],
                "gold": it["gold"],
                "equivalents": it["equivalents"],
                "options": it["options"],
                "extract": True,
            }
            for it in items
        ],
        pool=pool,
    )
    ours_s = time.perf_counter() - t
    base_items = items[: args.baseline_n] if args.baseline_n else items
    t = time.perf_counter()
    base = baseline(base_items)
    base_s = time.perf_counter() - t
    our_rate, base_rate = len(items) / ours_s, len(base_items) / base_s
    print("\n| verifier | items | wall s | items/s | speed-up |\n|---|---|---|---|---|")
    print(
        f"| deepvision verify_batch (2 workers) | {len(items)} | {ours_s:.1f} | {our_rate:.0f} "
        f"| {our_rate / base_rate:.1f}x |"
    )
    print(
        f"| math-verify per call (1 process) | {len(base_items)} | {base_s:.1f} | "
        f"{base_rate:.0f} | 1.0x |"
    )
    exp = [it["expected"] for it in items]
    for name, m in (("labeled dev set", labeled), ("all items", len(items))):
        n = min(m, len(base_items))
        ours_cm = confusion(exp[:n], [v.correct for v in ours[:n]])
        base_cm = confusion(exp[:n], base[:n])
        print(
            f"\n{name} ({n} items): deepvision {ours_cm}\n{' ' * len(name)}   baseline   {base_cm}"
        )
    worse = [
        (it["gold"], it["pred"])
        for it, v, b in zip(items[:labeled], ours, base, strict=False)
        if b == it["expected"] and v.correct != it["expected"]
    ]
    print(f"labeled items the baseline gets right and we get wrong: {len(worse)} {worse[:10]}")

    # RL reward batch: 512 prompts x 16 rollouts, a few distinct answers per group.
    rng = random.Random(1)
    sols, gts = [], []
    for _ in range(512):
        kinds = _kinds(rng)
        gold, right, wrong = kinds[rng.randrange(len(kinds))]
        group = [rng.choice(right + wrong) for _ in range(3)]
        texts = {a: reasoning(rng, a) for a in group}
        for _ in range(16):
            sols.append(texts[rng.choice(group)])
            gts.append(gold)
    t = time.perf_counter()
    scores = compute_score_batch(["deepvision"] * len(sols), sols, gts, None)
    reward_s = time.perf_counter() - t
    print(
        f"\nreward batch: {len(sols)} responses (512 x 16) in {reward_s:.2f} s "
        f"(mean score {sum(s['score'] for s in scores) / len(scores):.2f})"
    )

    # Worst case over pathological answers, 2 s limit.
    bad = [
        "10^{10^{10}}",
        "{" * 1000 + "1" + "}" * 1000,
        "x" * 1_000_000,
        "\\frac{1}{",
        "2^{2^{2^{2^{2^{2^{2}}}}}}",
        "9999999999!",
        "a\x00b",
        "😀∑∫",
        "(" * 1000 + ")" * 1000,
    ]
    worst = 0.0
    slow = SymbolicPool(workers=2, timeout=2.0)
    slow.start()
    for b in bad:
        for gold, pred in ((b, "1"), ("1", b), (b, b + "+1")):
            t = time.perf_counter()
            check(pred, gold, pool=slow)
            worst = max(worst, time.perf_counter() - t)
    print(
        f"worst-case latency over {3 * len(bad)} pathological checks, limit 2 s: {worst:.2f} s "
        f"({slow.replaced} workers replaced)"
    )
    slow.close()
    pool.close()


if __name__ == "__main__":
    main()
