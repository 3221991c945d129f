"""Benchmark: `curate difficulty` orchestration, N problems x 8 rollouts against an instant
local fake server (the pipeline, not the model, is measured).

Ours: run_stage(DifficultyStage) (chunked, continuous batching, verify_batch, resumable files)
in a child process, for N and N/4 problems (peak RSS must stay flat in N).
Baseline: the reference style, one request at a time (httpx, sequential) + check() per
rollout, on a subset, measured in the same run.

    python benchmarks/curate_difficulty.py [--n 20000]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from deepvision.llm.fake_server import FakeServer
from deepvision.records import Problem, ProblemImage


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def make_input(path: Path, n: int) -> None:
    from deepvision.data.writer import ProblemWriter

    img = _png()
    with ProblemWriter(path) as w:
        batch = []
        for i in range(n):
            batch.append(
                Problem(
                    id=f"p{i}",
                    question=f"Problem {i}: find x.",
                    answer="3",
                    images=[ProblemImage(img, None)],
                )
            )
            if len(batch) == 2048:
                w.write(batch)
                batch = []
        w.write(batch)


def child(inp: str, out: str, url: str) -> None:
    from deepvision.curate.difficulty import DifficultyStage
    from deepvision.curate.modelcall import ModelConfig
    from deepvision.curate.stage import run_stage

    cfg = ModelConfig([url], "fake", concurrency=64, max_tokens=16)
    t0 = time.perf_counter()
    rep = run_stage(DifficultyStage(cfg, n=8), [inp], out, chunk_size=2048)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "rss_mb": rss, "kept": rep.kept, "rows": rep.rows_in}))


def ours(n: int, url: str, tmp: Path) -> dict:
    inp, out = tmp / f"in{n}.parquet", tmp / f"out{n}.parquet"
    make_input(inp, n)
    res = subprocess.run(
        [sys.executable, __file__, "--child", str(inp), str(out), url],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def baseline(n: int, url: str) -> float:
    from deepvision.verify import check

    t0 = time.perf_counter()
    with httpx.Client() as client:
        for i in range(n):
            for _ in range(8):  # one request per rollout, as the reference scripts do
                r = client.post(
                    url + "/chat/completions",
                    json={
                        "model": "fake",
                        "messages": [{"role": "user", "content": f"Problem {i}"}],
                        "max_tokens": 16,
                    },
                )
                check(r.json()["choices"][0]["message"]["content"], "3", extract=True)
    return time.perf_counter() - t0


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--baseline-n", type=int, default=300)
    args = ap.parse_args()
    server = FakeServer().start()
    with tempfile.TemporaryDirectory() as d:
        small = ours(args.n // 4, server.url, Path(d))
        big = ours(args.n, server.url, Path(d))
    base_s = baseline(args.baseline_n, server.url)
    server.stop()
    our_ps = big["rows"] / big["wall"]
    base_ps = args.baseline_n / base_s
    print(f"| measure | ours | baseline (sequential, {args.baseline_n} problems) | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| problems/s ({args.n} x 8 rollouts) | {our_ps:.0f} | {base_ps:.1f} | "
        f"{our_ps / base_ps:.1f}x |"
    )
    print(
        f"| wall time for {args.n} problems | {big['wall']:.1f} s | "
        f"{args.n / base_ps:.0f} s (extrapolated) | {args.n / base_ps / big['wall']:.1f}x |"
    )
    print(f"| peak RSS, {args.n // 4} problems | {small['rss_mb']:.0f} MB | - | - |")
    print(
        f"| peak RSS, {args.n} problems | {big['rss_mb']:.0f} MB | - | "
        f"{big['rss_mb'] / small['rss_mb']:.2f}x of N/4 |"
    )
    print(
        f"difficulty: {our_ps:.0f} problems/s (goal >= 300), peak RSS {big['rss_mb']:.0f} MB "
        f"at N={args.n} vs {small['rss_mb']:.0f} MB at N/4; baseline {base_ps:.1f} problems/s"
    )


if __name__ == "__main__":
    main()
