"""Shared benchmark helpers: build a DeepVision-layout file, run a command, watch its memory."""

from __future__ import annotations

import contextlib
import io
import json
import platform
import random
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from deepvision import records as r
from deepvision.data.synth import generate

DEEPVISION_SCHEMA = pa.schema([f for f in r.PROBLEM_SCHEMA if f.name not in (r.ID, r.OPTIONS)])
ROW_GROUP = 256


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, {mem:.0f} GiB"
    )


def _png_scaled(data: bytes, target_kb: float) -> bytes:
    """Re-encode a synth PNG resized so that its size lands within 10 % of `target_kb` (a few
    tries: the size of a PNG grows with its area only roughly)."""
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
    out, scale = data, 1.0
    for _ in range(4):
        if abs(len(out) / 1000 - target_kb) <= 0.1 * target_kb:
            break
        scale = min(4.0, max(0.5, scale * (target_kb * 1000 / len(out)) ** 0.5))
        resized = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        buf = io.BytesIO()
        resized.save(buf, format="PNG")
        out = buf.getvalue()
    return out


def _tag_png(data: bytes, tag: str) -> bytes:
    """Insert a tEXt chunk after IHDR: same pixels, unique bytes (and content hash) per row."""
    body = b"tEXt" + b"row\x00" + tag.encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:33] + chunk + data[33:]


def build_dataset(path: Path, rows: int, distinct: int = 400, seed: int = 0) -> dict:
    """A DeepVision-layout parquet of `rows` rows built from `distinct` synthetic problems whose
    images are enlarged to 20-60 KB; each row's image bytes are made unique."""
    rng = random.Random(seed)
    base = []
    for p in generate(distinct, seed=seed):
        for im in p.images:
            im.bytes = _png_scaled(im.bytes, rng.uniform(20, 60))
        p.pass_rate = r.PassRate(rng.randrange(9), 8)
        base.append(r.problem_to_row(p, DEEPVISION_SCHEMA.names))
    tmp = path.with_suffix(".tmp")
    image_bytes = 0
    with pq.ParquetWriter(tmp, DEEPVISION_SCHEMA, compression="snappy") as w:
        for start in range(0, rows, ROW_GROUP):
            chunk = []
            for i in range(start, min(rows, start + ROW_GROUP)):
                row = dict(base[i % distinct])
                row[r.IMAGES] = [
                    {"bytes": _tag_png(im["bytes"], str(i)), "path": im["path"]}
                    for im in row[r.IMAGES]
                ]
                image_bytes += sum(len(im["bytes"]) for im in row[r.IMAGES])
                chunk.append(row)
            w.write_table(pa.Table.from_pylist(chunk, schema=DEEPVISION_SCHEMA))
    tmp.rename(path)
    return {"rows": rows, "bytes": path.stat().st_size, "mean_image_kb": image_bytes / rows / 1e3}


def ensure_dataset(out: Path, rows: int) -> tuple[Path, dict]:
    path = out / f"deepvision-{rows}.parquet"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    t0 = time.perf_counter()
    meta = build_dataset(path, rows)
    meta["build_s"] = round(time.perf_counter() - t0, 1)
    meta_path.write_text(json.dumps(meta))
    return path, meta


@dataclass
class Run:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stderr: str
    stdout: str = ""


def run_measured(cmd: list[str], poll_s: float = 0.05) -> Run:
    """Run `cmd`; wall time and the peak summed RSS of its whole process tree (and stdout)."""
    import tempfile

    out_file = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed below, after the child)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_file, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [ps, *ps.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    out_file.seek(0)
    out = out_file.read()
    out_file.close()
    if proc.returncode not in (0, 1):
        print(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err}", file=sys.stderr)
    return Run(wall, peak / 2**20, proc.returncode, err, out)
