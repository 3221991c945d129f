"""Problems for the curation tests: synthetic ones, renamed and edited to script outcomes."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

from PIL import Image, ImageDraw

from deepvision.data.synth import generate
from deepvision.data.writer import ProblemWriter
from deepvision.records import Problem, ProblemImage

_BASE = list(generate(12, seed=11))


def figure(seed: int) -> bytes:
    """A distinct figure per seed (lines and circles), PNG."""
    im = Image.new("RGB", (160, 120), "white")
    d = ImageDraw.Draw(im)
    for k in range(6):
        x0, y0 = (seed * 37 + k * 53) % 150, (seed * 91 + k * 29) % 110
        d.line((x0, y0, (x0 * 7 + 40) % 160, (y0 * 3 + 60) % 120), fill="black", width=3)
        d.ellipse((x0, y0, x0 + 10 + k * 3, y0 + 10 + k * 2), outline="blue", width=2)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def problem(pid: str, question: str, answer: str = "5", seed: int | None = None, **kw) -> Problem:
    """A problem with id `pid`, one distinct figure (by `seed`, default from the id)."""
    p = copy.deepcopy(_BASE[len(pid) % len(_BASE)])
    p.id, p.question, p.answer, p.options = pid, question, answer, None
    p.equivalent_answers = []
    p.messages = None
    p.images = [ProblemImage(figure(seed if seed is not None else sum(map(ord, pid))), None)]
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def write(path: Path, problems: list[Problem]) -> Path:
    with ProblemWriter(path) as w:
        w.write(problems)
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def drops_by_id(path: Path) -> dict[str, str]:
    return {d["id"]: d["reason"] for d in read_jsonl(path)}


def hashed_figure(flip: int = 0) -> bytes:
    """A 9x8 grey PNG whose dHash is a fixed pattern XOR `flip` (bit 63 - k = row k // 8,
    column k % 8), so tests can place images at exact Hamming distances."""
    base = 0x5A3C_96E1_0FF0_33CC
    h = base ^ flip
    im = Image.new("L", (9, 8))
    for r in range(8):
        v = 128
        im.putpixel((0, r), v)
        for c in range(8):
            v += 10 if (h >> (63 - (r * 8 + c))) & 1 else -10
            im.putpixel((c + 1, r), v)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
