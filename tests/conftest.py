"""Fixtures: DeepVision-layout files generated in code (synthetic problems, real schema)."""

from __future__ import annotations

import io
import json
import random
import socket
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from deepvision import records as r
from deepvision.data.synth import generate
from deepvision.llm.senders import close_shared_pool


@pytest.fixture(autouse=True)
def _no_sender_outlives_its_test():
    """`infer` keeps its sender processes for the next run of the same process; a test ends
    them, so no test sees another's processes."""
    yield
    close_shared_pool()


# The columns of the released math-77k.parquet, in its order (no id, no options).
DEEPVISION_SCHEMA = pa.schema([f for f in r.PROBLEM_SCHEMA if f.name not in (r.ID, r.OPTIONS)])


def png_bytes(color=(200, 30, 30), size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def deepvision_row(
    question: str = "In the figure, find x.",
    answer: str = "18.5",
    n_images: int = 1,
    **overrides,
) -> dict:
    """One raw row exactly as in math-77k.parquet (JSON annotation strings and all)."""
    images = [
        {"bytes": png_bytes((40 * i, 90, 160)), "path": f"img_{i}.png"} for i in range(n_images)
    ]
    row = {
        r.QUESTION: question,
        r.IMAGES: images,
        r.DATA_SOURCE: "math-77k",
        r.ABILITY: "math",
        r.DOMAIN_ANNO: json.dumps(
            {
                "Knowledge": ["Area of Triangle", "Properties of Rhombus"],
                "Level_1": "Geometry",
                "Level_2": "Plane Geometry",
                "Level_3": "Basic Plane Figures",
                "Level_4": "Triangle",
            }
        ),
        r.PROMPT: [
            {"content": "Think step by step.", "role": "system"},
            {"content": "<image>" * n_images + (question or ""), "role": "user"},
        ],
        r.REWARD_MODEL: {
            "ground_truth": answer,
            "equivalent_answers": ["37/2", "18.5"],
            "style": "rule",
        },
        r.PASS_RATE: "2/8",
        r.VISION_ANNO: json.dumps(
            {"visual_elements": {"planar_geometry": ["Triangle", "Angles"], "data_charts": []}}
        ),
        r.NECESSITY_ANNO: json.dumps(
            {"image_necessity": "required", "visual_complexity": {"score": 3}}
        ),
    }
    row.update(overrides)
    return row


def write_rows(path: Path, rows: list[dict], schema: pa.Schema = DEEPVISION_SCHEMA) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture(scope="session")
def synth_problems():
    return list(generate(60, seed=3))


@pytest.fixture
def synth_file(tmp_path, synth_problems) -> Path:
    """Our Problem parquet (DeepVision layout + id + options) of 60 synthetic problems."""
    from deepvision.data.writer import ProblemWriter

    path = tmp_path / "synth.parquet"
    with ProblemWriter(path) as w:
        w.write(synth_problems)
    return path


@pytest.fixture
def deepvision_file(tmp_path) -> Path:
    """A small file in the released layout: hash ids, JSON annotation strings."""
    rows = [
        deepvision_row(question=f"Question {i}: find x.", answer=str(i), n_images=1 + i % 2)
        for i in range(12)
    ]
    return write_rows(tmp_path / "math-77k.parquet", rows)


def free_ports(n: int = 1) -> int:
    """First of `n` consecutive free ports on 127.0.0.1, below the kernel's ephemeral range.

    A port the kernel handed out (bind to 0) is in the ephemeral range, so the next one up can
    be taken at any moment by some process's outgoing connection (Ray's, for one)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports on 127.0.0.1")


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli(capsys):
    """Run `deepvision ARGS...` through its real entry point; returns code, stdout, stderr."""
    from deepvision.cli.main import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture(scope="session")
def pool():
    """Two symbolic-comparison workers shared by the verify tests."""
    from deepvision.verify import SymbolicPool

    p = SymbolicPool(workers=2, timeout=3.0)
    yield p
    p.close()


# Training tests (tests/train): one conftest for the whole suite, so that `from conftest import`
# in any test module finds these helpers.
@pytest.fixture(scope="session")
def tiny_qwen2_5_vl(tmp_path_factory):
    from deepvision.train.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-qwen2_5_vl"), family="qwen2_5_vl")


@pytest.fixture
def verl_parquet(tmp_path, deepvision_file):
    """12 problems (1 or 2 images each) exported for verl by `deepvision data export`."""
    from deepvision.data.export import export

    out = tmp_path / "verl.parquet"
    report = export([deepvision_file], out, "verl")
    assert report.written == 12
    return out


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(name, options)`: a tmpfs mounted at tmp_path/name (e.g. "size=64k" for a full
    disk, "ro,size=1m" for a read-only one), unmounted after the test. Mounting needs root; where
    it is refused the test is skipped with the reason."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        )
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)
