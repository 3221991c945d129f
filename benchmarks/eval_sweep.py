"""Benchmark: judging and metrics for a full evaluation sweep, the seven reference benchmarks
at their reference sizes x n = 8 (87,712 responses of step-by-step reasoning ending in a boxed
answer), against the reference-style sequential judge (math-verify's metric built per
response, gold in \\boxed{}, one process) in the same run.

Ours: for each benchmark, `judge_outputs` (rules; the benchmark's own extraction) and the
metrics of `deepvision eval run` on an inference output file, as the run does after inference.
The baseline is timed on a random sample of the responses (it costs the same per response
whatever the sample) and its full-sweep time extrapolated; `--baseline-sample 0` runs it all.

    python benchmarks/eval_sweep.py [--n 8] [--baseline-sample 4000]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from pathlib import Path

from _common import machine
from deepvision.eval import get_benchmark
from deepvision.eval.metrics import collect_items, compute_metrics
from deepvision.eval.registry import REFERENCE_SUITE
from deepvision.records import JudgeFiles
from deepvision.verify.judge import judge_outputs
from verify_speed import _kinds, baseline, reasoning

OUT = Path(__file__).resolve().parent / "out" / "eval_sweep"


def write_outputs(folder: Path, n: int, seed: int = 0) -> tuple[dict[str, Path], list[dict]]:
    """One inference output file per benchmark; returns them and every (response, gold)."""
    rng = random.Random(seed)
    files, flat = {}, []
    for name in REFERENCE_SUITE:
        bench = get_benchmark(name)
        path = folder / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for i in range(bench.size):
                kinds = _kinds(rng)
                gold, right, wrong = kinds[rng.randrange(len(kinds))]
                p_right = rng.random()  # item difficulty: answers repeat within the item
                texts = []
                for _ in range(n):
                    pred = rng.choice(right if rng.random() < p_right else wrong)
                    texts.append(reasoning(rng, pred))
                    flat.append({"gold": gold, "equivalents": [], "response": texts[-1]})
                line = {
                    "id": f"{name}-{i}",
                    "answer": gold,
                    "options": None,
                    "categories": {"subject": f"s{i % 7}"},
                    "model_responses": texts,
                    "finish_reasons": ["stop"] * n,
                    "usage": {"prompt_tokens": 300, "completion_tokens": 420 * n},
                }
                fh.write(json.dumps(line) + "\n")
        files[name] = path
    return files, flat


def ours(files: dict[str, Path], n: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    accs = []
    for name, path in files.items():
        bench = get_benchmark(name)
        judge_outputs(path, extract=bench.extract)
        items = collect_items(path, JudgeFiles.for_responses(path).verdicts)
        accs.append(compute_metrics(bench, items, n)["accuracy"]["value"])
    return time.perf_counter() - t0, sum(accs) / len(accs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--baseline-sample", type=int, default=4000, help="0: the whole sweep")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    t0 = time.perf_counter()
    files, flat = write_outputs(OUT, args.n)
    total = len(flat)
    mb = sum(p.stat().st_size for p in files.values()) / 1e6
    print(f"{machine()}; {total} responses in 7 files ({mb:.0f} MB), "
          f"written in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    wall, avg_acc = ours(files, args.n)
    sample = flat
    if args.baseline_sample and args.baseline_sample < total:
        sample = random.Random(1).sample(flat, args.baseline_sample)
    t0 = time.perf_counter()
    baseline(sample)
    base_s = time.perf_counter() - t0
    base_rate = len(sample) / base_s
    base_full = total / base_rate
    measured = "measured" if len(sample) == total else f"extrapolated from {len(sample)}"

    print()
    print("| judge + metrics | responses | wall s | responses/s | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| deepvision (eval run's judging and metrics) | {total} | {wall:.1f} | "
          f"{total / wall:.0f} | {base_full / wall:.1f}x |")  # fmt: skip
    print(f"| reference-style sequential judge | {total} | {base_full:.1f} ({measured}) | "
          f"{base_rate:.0f} | 1.0x |")  # fmt: skip
    print()
    goal = "met" if base_full / wall >= 10 and wall < 300 else "NOT met"
    print(f"summary: {total} responses judged and scored in {wall:.1f} s "
          f"({base_full / wall:.1f}x the baseline; goal >= 10x and < 300 s: {goal}); "
          f"mean accuracy {100 * avg_acc:.2f}%")  # fmt: skip


if __name__ == "__main__":
    main()
