"""Benchmark: the inference client against an instant local OpenAI-compatible server
(`deepvision.llm.fake_server` in its own process), problems with one ~60 KB image each.

Ours: `deepvision infer problems.jsonl` (lazy prompt building, continuous batching).
Baseline, same run: the reference-style client (baseline_infer.py): encode every image to a data
URI first, then dispatch with a fixed number of requests in flight, append results.
Fault run: 20,000 requests with 10 % HTTP 500, 2 % connection resets and one server restart
mid-run; checks that every key is present exactly once.

    python benchmarks/infer_client.py --sizes 5000 50000
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from _common import machine, run_measured
from deepvision.llm import Endpoint, InferConfig, Request, infer

HERE = Path(__file__).resolve().parent
OURS = str(Path(sys.executable).with_name("deepvision"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, *flags: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepvision.cli.fake_server", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "listening on ..."
    return proc


def noise_png(rng: random.Random, kb: int = 60) -> bytes:
    """A PNG of about `kb` KB (noise does not compress)."""
    side = int((kb * 1000 / 3) ** 0.5)
    im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_input(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    images = folder / "images"
    images.mkdir(exist_ok=True)
    rng = random.Random(0)
    names = []
    for k in range(100):  # 100 distinct images, reused
        name = f"img{k}.png"
        (images / name).write_bytes(noise_png(rng))
        names.append(f"images/{name}")
    path = folder / f"problems-{n}.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "answer": str(i % 10),
                        "images": [names[i % 100]],
                        "messages": [{"role": "user", "content": f"<image>Problem {i}: find x."}],
                    }
                )
                + "\n"
            )
    return path


def fault_run(folder: Path, n: int = 20000) -> str:
    port = free_port()
    flags = ("--fail-rate", "0.1", "--reset-rate", "0.02", "--seed", "5")
    server = start_server(port, *flags)
    out = folder / "fault-run.jsonl"
    out.unlink(missing_ok=True)

    def restart() -> None:
        nonlocal server
        time.sleep(3.0)
        server.kill()
        server.wait()
        time.sleep(1.0)
        server = start_server(port, *flags)

    threading.Thread(target=restart, daemon=True).start()
    reqs = (Request(f"k{i}", {}, [{"role": "user", "content": f"q{i}"}]) for i in range(n))
    endpoint = Endpoint(
        (f"http://127.0.0.1:{port}/v1",), "m", concurrency=64, attempts=30, backoff=0.2
    )
    cfg = InferConfig(endpoint, bench_after=10**6)
    s = asyncio.run(infer(reqs, out, cfg))
    server.kill()
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    ok = len(ids) == n and len(set(ids)) == n
    return (
        f"fault run: {n} requests, 10 % 500s + 2 % resets + 1 restart: {len(set(ids))} keys, "
        f"{len(ids) - len(set(ids))} duplicates, {s.retries} retries, {s.wall_s:.1f} s -> "
        f"{'every key exactly once' if ok else 'FAILED'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--out", type=Path, default=HERE / "out" / "infer")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    rows = [
        "| problems | client | wall s | first request s | peak RSS MB | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        src = make_input(args.out, n)
        walls = {}
        for name in ("deepvision", "reference-style baseline"):
            port = free_port()
            server = start_server(port)
            out = args.out / f"{name.split()[0]}-{n}.jsonl"
            out.unlink(missing_ok=True)
            url = f"http://127.0.0.1:{port}/v1"
            if name == "deepvision":
                cmd = [
                    OURS,
                    "-q",
                    "infer",
                    str(src),
                    "--endpoint",
                    url,
                    "--model",
                    "m",
                    "--out",
                    str(out),
                    "--concurrency",
                    str(args.concurrency),
                ]
            else:
                cmd = [
                    sys.executable,
                    str(HERE / "baseline_infer.py"),
                    str(src),
                    url,
                    str(out),
                    str(args.concurrency),
                ]
            run = run_measured(cmd)
            server.kill()
            server.wait()
            if run.returncode != 0:
                sys.exit(f"{name} failed ({run.returncode}):\n{run.stderr[-2000:]}")
            lines = out.read_text().splitlines()
            if len(lines) != n:
                sys.exit(f"{name} wrote {len(lines)} lines for {n} problems")
            m = re.search(r"first request after ([\d.]+) s", run.stdout.replace("\n", " "))
            first = float(m.group(1)) if m else float("nan")
            walls[name] = run.wall_s
            speed = "" if name == "deepvision" else f"{run.wall_s / walls['deepvision']:.1f}x"
            row = (
                f"| {n} | {name} | {run.wall_s:.1f} | {first:.2f} | {run.peak_rss_mb:.0f} | "
                f"{speed} |"
            )
            rows.append(row)
            print(row, flush=True)
            out.unlink()
    print(fault_run(args.out))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
