"""Benchmark: synthetic problem generation, problems per second on one core.

Ours: `deepvision.data.synth.generate` (PIL drawing, 2x supersampled, PNG encoded, every
annotation filled). Baseline, same run: the usual way to draw such a figure, a matplotlib chart
per problem saved to PNG (figure only, no annotations), also on one core.

    python benchmarks/synth_speed.py --n 600
"""

from __future__ import annotations

import argparse
import io
import random
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import machine
from deepvision.data.synth import FAMILIES, generate


def baseline_problem(rng: random.Random) -> bytes:
    values = [rng.randint(1, 9) for _ in range(5)]
    fig, ax = plt.subplots(figsize=(5.6, 4.2), dpi=100)
    ax.bar(list("ABCDE"), values, color="#4c72b0")
    ax.set_title("Books read")
    for i, v in enumerate(values):
        ax.text(i, v + 0.1, str(v), ha="center")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    ours = list(generate(args.n, seed=0))
    ours_s = time.perf_counter() - t0
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(args.n):
        baseline_problem(rng)
    base_s = time.perf_counter() - t0
    per_family = {f: sum(p.id.startswith(f"synth-{f}-") for p in ours) for f in FAMILIES}
    print(f"families drawn: {per_family}")
    print("| generator | problems | wall s | problems/s (1 core) |")
    print("|---|---|---|---|")
    print(f"| deepvision synth | {args.n} | {ours_s:.1f} | {args.n / ours_s:.0f} |")
    print(f"| matplotlib baseline | {args.n} | {base_s:.1f} | {args.n / base_s:.0f} |")


if __name__ == "__main__":
    main()
