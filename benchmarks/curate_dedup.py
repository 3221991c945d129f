"""Benchmark: `curate dedup`: precision on distinct problems, recall on planted copies, speed.

Precision: `deepvision data synth --n 5000 --seed 11` problems, distinct by construction:
templated K12 figures (same question text, similar drawings, other numbers). Counted: problems
dropped, and dropped problems whose answer (a lettered choice read as its option's text)
differs from the problem kept in their place (goal: 0).

Recall and speed: N problems with images (default 103,000, the size of DeepVision-103K):
distinct figures (lines and circles, 320x240 PNG) and K12-style questions with answers, with
20% exact copies and 5% near copies (reworded question, the same figure, the answer spelled
another way: 49/4 for 12.25) mixed in. Counted: planted copies found (goal >= 99.9%), distinct
problems dropped, wall time and peak RSS of a child process running run_stage(DedupStage).

Baseline, measured in the same run: the naive approach, every pair of questions compared by
shingle-set Jaccard and images by dHash (answers not looked at), on the first `--baseline-n`
rows of each set; its time grows with N^2 and is extrapolated to N.

    python benchmarks/curate_dedup.py [--n 103000] [--synth-n 5000] [--baseline-n 2000]
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

from _common import machine
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


def answer(i: int, respelled: bool = False) -> str:
    """Problem i's answer, k/4; `respelled` writes it as a fraction (12.25 -> 49/4)."""
    k = i % 997 + 1
    return f"\\frac{{{k}}}{{4}}" if respelled else f"{k / 4:g}"


def _rows(lo: int, hi: int, n_base: int) -> list[Problem]:
    out = []
    for i in range(lo, hi):
        rng = random.Random(10_000_000 + i)
        kind = rng.random()
        if i >= n_base and kind < 0.8:  # exact copy of an earlier problem
            j = rng.randrange(n_base)
            q, a, img, pid = question(j), answer(j), figure(j), f"c{i}"
        elif i >= n_base:  # near copy: reworded, the answer written another way
            j = rng.randrange(n_base)
            q = question(j).replace("As shown in the figure, in", "In the figure,")
            a, img, pid = answer(j, respelled=True), figure(j), f"n{i}"
        else:
            q, a, img, pid = question(i), answer(i), figure(i), f"b{i}"
        out.append(Problem(id=pid, question=q, answer=a, images=[ProblemImage(img, None)]))
    return out


def make_input(path: Path, n: int) -> None:
    from deepvision.data.writer import ProblemWriter

    n_base = int(n * 0.75)
    step = 4096
    with ProblemWriter(path) as w, ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        futs = [pool.submit(_rows, lo, min(n, lo + step), n_base) for lo in range(0, n, step)]
        for f in futs:
            w.write(f.result())


def make_synth(path: Path, n: int, seed: int) -> None:
    from deepvision.data.synth import generate
    from deepvision.data.writer import ProblemWriter

    with ProblemWriter(path) as w:
        w.write(list(generate(n, seed=seed)))


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
                "conflicts": rep.extra.get("conflicts", 0),
            }
        )
    )


def run_ours(inp: Path, out: Path) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", str(inp), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = json.loads(res.stdout.strip().splitlines()[-1])
    drops = out.with_name(out.stem + ".drops.jsonl").read_text(encoding="utf-8").splitlines()
    # (dropped id, the id kept in its place)
    ours["pairs"] = [(d["id"], d["detail"].rsplit(" of ", 1)[1]) for d in map(json.loads, drops)]
    return ours


def value(p: Problem) -> str:
    """The answer itself: a lettered choice is its option's text; numbers as numbers."""
    from deepvision.verify.normalize import to_number

    text = p.options["ABCDEFGHIJ".index(p.answer)] if p.options else p.answer
    num = to_number(text)
    return str(num.value) if num is not None else text


def other_answer(pairs: list[tuple[str, str]], problems: dict[str, Problem]) -> int:
    """Dropped problems whose answer differs from the one kept in their place."""
    return sum(value(problems[a]) != value(problems[b]) for a, b in pairs)


def baseline(problems: list[Problem]) -> tuple[float, list[tuple[str, str]]]:
    """Pairwise: every pair's question shingle sets compared; images hashed once; a row is a
    duplicate of the first earlier row that matches (answers not looked at)."""
    from deepvision.curate.hashing import dhash
    from deepvision.records import normalize_question

    t0 = time.perf_counter()
    sh = []
    for p in problems:
        t = normalize_question(p.question)
        sh.append({t[k : k + 5] for k in range(max(1, len(t) - 4))})
    hs = [dhash(p.images[0].bytes) for p in problems]
    pairs = []
    for i in range(len(problems)):
        for j in range(i):
            a, b = sh[i], sh[j]
            if len(a & b) / len(a | b) >= 0.8 and (hs[i] ^ hs[j]).bit_count() <= 4:
                pairs.append((problems[i].id, problems[j].id))
                break
    return time.perf_counter() - t0, pairs


def read(path: Path) -> dict[str, Problem]:
    from deepvision.data.reader import iter_problems

    return {p.id: p for p in iter_problems([path])}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=103_000)
    ap.add_argument("--synth-n", type=int, default=5000)
    ap.add_argument("--synth-seed", type=int, default=11)
    ap.add_argument("--baseline-n", type=int, default=2000)
    args = ap.parse_args()
    bn = args.baseline_n
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        make_synth(d / "synth.parquet", args.synth_n, args.synth_seed)
        synth = read(d / "synth.parquet")
        s_ours = run_ours(d / "synth.parquet", d / "synth-out.parquet")
        s_base_s, s_base = baseline(list(synth.values())[:bn])
        s_sub = set(list(synth)[:bn])
        # ours on the baseline's subset: the drops among those rows (kept ones may lie after)
        s_ours_sub = [(a, b) for a, b in s_ours["pairs"] if a in s_sub]
        t0 = time.perf_counter()
        make_input(d / "in.parquet", args.n)
        gen = time.perf_counter() - t0
        ours = run_ours(d / "in.parquet", d / "out.parquet")
        planted = read(d / "in.parquet")
        subset = _rows(0, bn, int(bn * 0.75))
        base_s, base_pairs = baseline(subset)
    copies = sum(not pid.startswith("b") for pid in planted)
    found = sum(not a.startswith("b") for a, _ in ours["pairs"])
    wrong = sum(a.startswith("b") for a, _ in ours["pairs"])
    sub_copies = sum(not p.id.startswith("b") for p in subset)
    base_found = sum(not a.startswith("b") for a, _ in base_pairs)
    base_ext = base_s * (args.n / bn) ** 2
    print(f"machine: {machine()}; input of {args.n} rows generated in {gen:.0f} s")
    print(f"| measure | ours | baseline (pairwise, question + image, {bn} rows) | ratio |")
    print("|---|---:|---:|---:|")
    sn = args.synth_n
    print(
        f"| synth {sn} (distinct): dropped | {len(s_ours['pairs'])} | - | - |\n"
        f"| synth {sn}: dropped with another answer than the kept one | "
        f"{other_answer(s_ours['pairs'], synth)} | - | - |\n"
        f"| synth, first {bn}: dropped | {len(s_ours_sub)} | {len(s_base)} | - |\n"
        f"| synth, first {bn}: dropped with another answer | "
        f"{other_answer(s_ours_sub, synth)} | {other_answer(s_base, synth)} | - |\n"
        f"| synth {sn}: conflicts listed (same question + image, other answer) | "
        f"{s_ours['conflicts']} | - | - |\n"
        f"| synth {sn}: wall time | {s_ours['wall']:.1f} s | "
        f"{s_base_s * (sn / bn) ** 2:.0f} s (extrapolated N^2 from {s_base_s:.1f} s) | "
        f"{s_base_s * (sn / bn) ** 2 / s_ours['wall']:.0f}x |"
    )
    print(
        f"| planted copies found, {args.n} rows | {found} / {copies} "
        f"({100 * found / copies:.2f}%) | {base_found} / {sub_copies} "
        f"({100 * base_found / sub_copies:.2f}%) | - |\n"
        f"| distinct problems dropped, {args.n} rows | {wrong} | "
        f"{sum(a.startswith('b') for a, _ in base_pairs)} | - |\n"
        f"| dropped with another answer, {args.n} rows | "
        f"{other_answer(ours['pairs'], planted)} | - | - |\n"
        f"| wall time, {args.n} rows | {ours['wall']:.0f} s | {base_ext:.0f} s "
        f"(extrapolated N^2 from {base_s:.1f} s) | {base_ext / ours['wall']:.0f}x |\n"
        f"| throughput | {args.n / ours['wall']:.0f} rows/s | {args.n / base_ext:.1f} rows/s "
        f"| - |\n"
        f"| peak RSS | {ours['rss_mb']:.0f} MB | - | - |"
    )
    print(
        f"dedup: synth {sn}: {other_answer(s_ours['pairs'], synth)} dropped with another "
        f"answer (goal 0); planted copies found {100 * found / copies:.2f}% (goal >= 99.9%); "
        f"{args.n} rows in {ours['wall']:.0f} s (goal < 300 s), peak RSS "
        f"{ours['rss_mb']:.0f} MB (goal < 2048 MB)"
    )


if __name__ == "__main__":
    main()
