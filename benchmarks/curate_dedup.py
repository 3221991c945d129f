"""Benchmark: `curate dedup` on N problems with images (default 103,000, the size of
DeepVision-103K): wall time and peak RSS of a child process running run_stage(DedupStage).

The data: distinct figures (lines and circles, 320x240 PNG) and K12-style questions, with
20% exact copies and 5% near copies (reworded question, same figure) mixed in.
Baseline, measured in the same run: the naive approach, every pair of questions compared by
shingle-set Jaccard (and images by dHash), on a subset; its time grows with N^2 and is
extrapolated to N.

    python benchmarks/curate_dedup.py [--n 103000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw

from deepvision.records import Problem, ProblemImage


def figure(seed: int) -> bytes:
    rng = random.Random(seed)
    im = Image.new("RGB", (320, 240), "white")
    d = ImageDraw.Draw(im)
    for _ in range(8):
        pts = [(rng.randrange(320), rng.randrange(240)) for _ in range(2)]
        d.line(pts, fill="black", width=2)
    for _ in range(3):
        x, y, r = rng.randrange(280), rng.randrange(200), rng.randrange(10, 40)
        d.ellipse((x, y, x + r, y + r), outline="blue", width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def question(i: int) -> str:
    rng = random.Random(i)
    a, b, c = rng.randrange(2, 99), rng.randrange(2, 99), rng.randrange(10, 170)
    shape = rng.choice(["triangle ABC", "rectangle ABCD", "circle O", "trapezoid ABCD"])
    ask = rng.choice(["the area", "the perimeter", "the length of AC", "the angle x"])
    return (
        f"As shown in the figure, in {shape}, AB = {a}, BC = {b} and the marked angle is "
        f"{c} degrees. Find {ask}, giving the answer to two decimal places. (id {i})"
    )


def _rows(lo: int, hi: int, n_base: int) -> list[Problem]:
    out = []
    for i in range(lo, hi):
        rng = random.Random(10_000_000 + i)
        kind = rng.random()
        if i >= n_base and kind < 0.8:  # exact copy of an earlier problem
            j = rng.randrange(n_base)
            out.append(
                Problem(
                    id=f"c{i}",
                    question=question(j),
                    answer="1",
                    images=[ProblemImage(figure(j), None)],
                )
            )
        elif i >= n_base:  # near copy: reworded
            j = rng.randrange(n_base)
            q = question(j).replace("As shown in the figure, in", "In the figure,")
            out.append(
                Problem(id=f"n{i}", question=q, answer="1", images=[ProblemImage(figure(j), None)])
            )
        else:
            out.append(
                Problem(
                    id=f"b{i}",
                    question=question(i),
                    answer="1",
                    images=[ProblemImage(figure(i), None)],
                )
            )
    return out


def make_input(path: Path, n: int) -> None:
    from deepvision.data.writer import ProblemWriter

    n_base = int(n * 0.75)
    step = 4096
    with ProblemWriter(path) as w, ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        futs = [pool.submit(_rows, lo, min(n, lo + step), n_base) for lo in range(0, n, step)]
        for f in futs:
            w.write(f.result())


def child(inp: str, out: str) -> None:
    from deepvision.curate.dedup import DedupStage
    from deepvision.curate.stage import run_stage

    t0 = time.perf_counter()
    rep = run_stage(DedupStage(), [inp], out, chunk_size=4096)
    wall = time.perf_counter() - t0
    # the hashing workers are children: count the largest of them too
    rss = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    print(
        json.dumps(
            {
                "wall": wall,
                "rss_mb": rss,
                "kept": rep.kept,
                "rows": rep.rows_in,
                "dropped": dict(rep.dropped),
            }
        )
    )


def baseline(problems: list[Problem]) -> tuple[float, int]:
    """Pairwise: every pair's question shingle sets compared; images hashed once."""
    from deepvision.curate.hashing import dhash
    from deepvision.records import normalize_question

    t0 = time.perf_counter()
    sh = []
    for p in problems:
        t = normalize_question(p.question)
        sh.append({t[k : k + 5] for k in range(max(1, len(t) - 4))})
    hs = [dhash(p.images[0].bytes) for p in problems]
    dup = 0
    for i in range(len(problems)):
        for j in range(i):
            a, b = sh[i], sh[j]
            if len(a & b) / len(a | b) >= 0.8 and (hs[i] ^ hs[j]).bit_count() <= 4:
                dup += 1
                break
    return time.perf_counter() - t0, dup


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=103_000)
    ap.add_argument("--baseline-n", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        inp, out = Path(d) / "in.parquet", Path(d) / "out.parquet"
        t0 = time.perf_counter()
        make_input(inp, args.n)
        gen = time.perf_counter() - t0
        res = subprocess.run(
            [sys.executable, __file__, "--child", str(inp), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        ours = json.loads(res.stdout.strip().splitlines()[-1])
        subset = _rows(0, args.baseline_n, int(args.baseline_n * 0.75))
        base_s, _ = baseline(subset)
    base_ext = base_s * (args.n / args.baseline_n) ** 2
    print(f"(input generated in {gen:.0f} s: {args.n} rows, {ours['dropped']} found)")
    print(f"| measure | ours | baseline (pairwise, {args.baseline_n} rows measured) | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| wall time, {args.n} rows | {ours['wall']:.0f} s | {base_ext:.0f} s "
        f"(extrapolated N^2 from {base_s:.1f} s) | {base_ext / ours['wall']:.0f}x |"
    )
    print(f"| peak RSS | {ours['rss_mb']:.0f} MB | - | - |")
    print(
        f"dedup: {args.n} rows in {ours['wall']:.0f} s (goal < 300 s), peak RSS "
        f"{ours['rss_mb']:.0f} MB (goal < 2048 MB); kept {ours['kept']}"
    )


if __name__ == "__main__":
    main()
