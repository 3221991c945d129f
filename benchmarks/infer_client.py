"""Benchmark: `deepvision infer` side by side with the release's own client (`infer-v6.py` from
`../shared/baselines/deepvision-103k/`, MIT), same input, same kind of server, same run,
alternating.

Input: N inference-JSONL items, each with its own ~67 KB PNG on disk (noise; 64 distinct
pictures, each file made unique by a text chunk), `messages` with `<image>` and `images` paths
relative to the data folder, which both clients read. Server: `deepvision.llm.fake_server` in
its own process (instant replies), a fresh one per run; it prints when the first chat request
reaches it, which is the "first request" of both clients (from their launch). The release's
client runs exactly as its README intends: from the data folder, the full
`/v1/chat/completions` URL, `--concurrent_per_endpoint 64`. It re-encodes every image to JPEG
(q95) before sending, so the bytes it sends differ from ours (we send the PNG as it is).

Each setting runs quiet and with both cores loaded (two busy-loop processes). Peak RSS is summed
over each client's whole process tree. The stub's own capacity (pre-built ~90 KB bodies, one
aiohttp load process, 64 in flight) is measured first, so the table shows it is not the limit.

    python benchmarks/infer_client.py --sizes 5000 50000 --scratch /tmp/dv-infer-bench
    python benchmarks/infer_client.py --callers   # eval run / curate stage vs infer

`--callers`: `infer`, a curation stage and `eval run` against the same kind of stub: each
one's requests per second as a share of infer's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from _common import machine, run_measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OURS = str(Path(sys.executable).with_name("deepvision"))
RELEASE = ROOT.parent / "shared" / "baselines" / "deepvision-103k" / "infer-v6.py"
CONCURRENCY = 64
IMAGE_KB = 67


# -- input -------------------------------------------------------------------------------------


def noise_png(rng: random.Random, kb: int = IMAGE_KB) -> bytes:
    """A PNG of about `kb` KB (noise does not compress)."""
    side = int((kb * 1000 / 3) ** 0.5)
    im = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def tagged(png: bytes, tag: str) -> bytes:
    """The same picture with a tEXt chunk after IHDR: unique bytes per file."""
    body = b"tEXt" + b"item\x00" + tag.encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]


def make_input(folder: Path, n: int) -> Path:
    """`folder/problems-N.jsonl` and one PNG per item under `folder/images` (kept between runs:
    50,000 images are 3.4 GB)."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    bases = [noise_png(rng) for _ in range(64)]
    path = folder / f"problems-{n}.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            name = f"images/{i:06d}.png"
            if not (folder / name).exists():
                (folder / name).write_bytes(tagged(bases[i % len(bases)], str(i)))
            item = {
                "id": f"q{i}",
                "answer": str(i % 10),
                "images": [name],
                "messages": [{"role": "user", "content": f"<image>Problem {i}: find x."}],
            }
            fh.write(json.dumps(item) + "\n")
    return path


# -- server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, ignore_n: bool = False) -> None:
    """The stub (run in its own process): FakeServer, printing the time of the first chat
    request it gets, and on SIGTERM how many it answered."""
    from deepvision.llm.fake_server import FakeServer, Faults

    first = []

    def mark(body: dict) -> None:
        if not first:
            first.append(time.time())
            print(f"first {first[0]:.6f}", flush=True)

    server = FakeServer(Faults(ignore_n=ignore_n), port=port, responder=mark)

    def stop(signum: int, frame: object) -> None:
        print(f"requests {server.stats.requests}", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print("listening", flush=True)
    server.serve_forever()


class Stub:
    """A fresh stub server process; `stop` says when its first request came, and sets
    `requests` to how many it answered."""

    def __init__(self, ignore_n: bool = False) -> None:
        self.port = free_port()
        self.requests = 0
        cmd = [sys.executable, __file__, "--serve", str(self.port)]
        cmd += ["--ignore-n"] if ignore_n else []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # "listening"
        self.base = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> float | None:
        """Stop it; the epoch time of its first chat request (None if none came)."""
        self.proc.terminate()
        out, _ = self.proc.communicate()
        m = re.search(r"first ([\d.]+)", out or "")
        count = re.search(r"requests (\d+)", out or "")
        self.requests = int(count.group(1)) if count else 0
        return float(m.group(1)) if m else None


_LOAD = """\
import asyncio, base64, json, sys, time, aiohttp
url, n, img = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], 'rb').read()
uri = 'data:image/png;base64,' + base64.b64encode(img).decode()
parts = [{'type': 'image_url', 'image_url': {'url': uri}}, {'type': 'text', 'text': 'q'}]
body = json.dumps({'model': 'm', 'messages': [{'role': 'user', 'content': parts}]}).encode()
async def main():
    left = [n]
    async with aiohttp.ClientSession() as s:
        async def worker():
            while left[0] > 0:
                left[0] -= 1
                async with s.post(url, data=body) as r:
                    await r.read()
        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(int(sys.argv[4]))))
        print(n / (time.perf_counter() - t))
asyncio.run(main())
"""


def stub_capacity(sample_image: Path, requests: int = 5000) -> float:
    """Requests per second the stub answers alone: one aiohttp process posting one pre-built
    ~90 KB body (64 in flight)."""
    stub = Stub()
    try:
        url = stub.base + "/chat/completions"
        args = [url, str(requests), str(sample_image), str(CONCURRENCY)]
        got = subprocess.run(
            [sys.executable, "-c", _LOAD, *args], capture_output=True, text=True, check=True
        )
        return float(got.stdout.strip())
    finally:
        stub.stop()


# -- the clients -------------------------------------------------------------------------------


@dataclass
class Result:
    client: str
    wall_s: float
    first_s: float
    peak_mb: float
    lines: int


def run_client(client: str, src: Path, out: Path) -> Result:
    """One run of `client` ("deepvision" or "release") on `src` against a fresh stub."""
    out.unlink(missing_ok=True)
    out.with_suffix(".errors.jsonl").unlink(missing_ok=True)
    stub = Stub()
    if client == "deepvision":
        cmd = [OURS, "-q", "infer", str(src), "--endpoint", stub.base, "--model", "m"]
        cmd += ["--out", str(out), "--concurrency", str(CONCURRENCY)]
    else:
        # From the data folder: it resolves image paths against its working directory. Its
        # progress bars go to a file: run_measured reads stderr only at the end, and 50,000
        # items of tqdm output would fill the pipe and stall it.
        log = out.with_suffix(".stderr")
        cmd = ["env", "-C", str(src.parent), "sh", "-c", f'exec "$@" 2>"{log}"', "sh"]
        cmd += [sys.executable, str(RELEASE), "--input_jsonl", src.name]
        cmd += ["--output_jsonl", str(out), "--api_url", stub.base + "/chat/completions"]
        cmd += ["--model", "m", "--concurrent_per_endpoint", str(CONCURRENCY)]
    launched = time.time()
    run = run_measured(cmd)
    first = stub.stop()
    if run.returncode != 0:
        sys.exit(f"{client} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    with out.open("rb") as fh:
        lines = sum(1 for _ in fh)
    out.unlink()
    first_s = first - launched if first else float("nan")
    return Result(client, run.wall_s, first_s, run.peak_rss_mb, lines)


class BusyLoops:
    """`count` busy-loop processes while in use (two: both cores of the benchmark machine)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> BusyLoops:
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def compare(src: Path, n: int, state: str, repeats: int, scratch: Path) -> list[str]:
    """Alternating runs of both clients on `src`; one table row per run."""
    rows = []
    for k in range(repeats):
        order = ("release", "deepvision") if k % 2 == 0 else ("deepvision", "release")
        got = {c: run_client(c, src, scratch / f"out-{c}.jsonl") for c in order}
        for c in ("release", "deepvision"):
            r = got[c]
            if r.lines != n:
                sys.exit(f"{c} wrote {r.lines} lines for {n} items")
            ratio = got["release"].wall_s / r.wall_s if c == "deepvision" else None
            row = (
                f"| {n} | {state} | {c} | {r.wall_s:.1f} | {r.first_s:.2f} | {r.peak_mb:.0f} | "
                + (f"{ratio:.2f}x |" if ratio else "|")
            )
            rows.append(row)
            print(row, flush=True)
    return rows


# -- eval run and curation stages against infer ------------------------------------------------


def callers(scratch: Path, n: int) -> list[str]:
    """Requests per second (counted by the stub) of `infer`, a curation stage (validity: its
    unparsed replies are asked again) and `eval run` (the embedded synth benchmark, 64 samples
    per problem from a stub that answers one at a time) against the same kind of stub."""
    from _common import ensure_dataset

    data, _ = ensure_dataset(scratch, n)
    flags = ["--model", "m", "--concurrency", str(CONCURRENCY)]
    runs = {
        "infer": ["infer", str(data), "--out", str(scratch / "callers" / "infer.jsonl")],
        "curate validity": ["curate", "validity", str(data), str(scratch / "callers" / "v.pq")],
        "eval run (synth, n 64)": ["eval", "run", "-b", "synth", "--n", "64"],
    }
    runs["eval run (synth, n 64)"] += ["--out", str(scratch / "callers" / "eval")]
    rows, base = [], None
    for name, args in runs.items():
        subprocess.run(["rm", "-rf", str(scratch / "callers")], check=True)
        stub = Stub(ignore_n=name.startswith("eval"))
        run = run_measured([OURS, "-q", *args, "--endpoint", stub.base, *flags])
        stub.stop()
        rate = stub.requests / run.wall_s
        base = base or rate
        row = f"| {name} | {stub.requests} | {run.wall_s:.1f} | {rate:.0f} | {rate / base:.0%} |"
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/dv-infer-bench"))
    ap.add_argument("--repeats", type=int, default=2, help="Runs of each client per setting.")
    ap.add_argument("--states", nargs="+", default=["quiet", "loaded"])
    ap.add_argument("--callers", action="store_true", help="eval/curate vs infer instead.")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ignore-n", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.ignore_n)
        return
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}")
    args.scratch.mkdir(parents=True, exist_ok=True)
    if args.callers:
        rows = callers(args.scratch, 5000)
        print("| caller | requests | wall s | requests/s | share of infer's |")
        print("\n".join(rows))
        return
    src = {n: make_input(args.scratch, n) for n in args.sizes}
    capacity = stub_capacity(args.scratch / "images" / "000000.png")
    print(f"stub alone: {capacity:.0f} requests/s (pre-built ~90 KB bodies, 64 in flight)")
    rows = [
        "| items | machine | client | wall s | first request s | peak RSS MB | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in args.sizes:
        for state in args.states:
            with BusyLoops(2 if state == "loaded" else 0):
                rows += compare(src[n], n, state, args.repeats, args.scratch)
    print("\n".join(rows))
    print(f"stub alone: {capacity:.0f} requests/s")


if __name__ == "__main__":
    main()
