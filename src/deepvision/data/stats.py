"""`data stats`: describe a dataset in one streaming pass; write stats.json, summary.md, plots."""

from __future__ import annotations

import io
import json
import struct
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deepvision.data.answer_kind import answer_kind
from deepvision.data.reader import ProblemBatch, Reject, map_batches, open_sources
from deepvision.data.sources import DEFAULT_BATCH_SIZE
from deepvision.progress import progress_bar
from deepvision.records import Problem

TOP_KNOWLEDGE = 30
MAX_REJECT_EXAMPLES = 50
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header (PNG read directly, other formats by PIL); None if the
    bytes are not an image."""
    if data[:8] == _PNG_MAGIC and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width, img.height
    except (OSError, ValueError, SyntaxError):
        return None


@dataclass
class DatasetStats:
    """Counts gathered over a stream of Problems (memory: a few numbers per row at most)."""

    rows: int = 0
    rejected: int = 0
    topics: Counter = field(default_factory=Counter)  # path tuple (1..4 levels) -> count
    knowledge: Counter = field(default_factory=Counter)
    ve_categories: Counter = field(default_factory=Counter)  # problems having the category
    ve_types: Counter = field(default_factory=Counter)  # (category, type) -> problems
    pass_rates: Counter = field(default_factory=Counter)  # "k/n" -> count
    no_pass_rate: int = 0
    answer_kinds: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    images_per_problem: Counter = field(default_factory=Counter)
    undecodable_images: int = 0
    question_chars: array = field(default_factory=lambda: array("I"))
    image_widths: array = field(default_factory=lambda: array("I"))
    image_heights: array = field(default_factory=lambda: array("I"))
    image_kb: array = field(default_factory=lambda: array("f"))
    rejects: list[Reject] = field(default_factory=list, repr=False)

    def add(self, p: Problem) -> None:
        self.rows += 1
        for depth in range(1, min(4, len(p.topic)) + 1):
            self.topics[tuple(p.topic[:depth])] += 1
        self.knowledge.update(set(p.knowledge_points))
        for cat, types in p.visual_elements.items():
            if types:
                self.ve_categories[cat] += 1
            for t in set(types):
                self.ve_types[(cat, t)] += 1
        if p.pass_rate is None:
            self.no_pass_rate += 1
        else:
            self.pass_rates[str(p.pass_rate)] += 1
        self.answer_kinds[answer_kind(p.answer, p.options)] += 1
        self.sources[p.data_source or "(none)"] += 1
        self.images_per_problem[len(p.images)] += 1
        self.question_chars.append(len(p.question))
        for im in p.images:
            size = _image_size(im.bytes or b"")
            if size is None:
                self.undecodable_images += 1
            else:
                self.image_widths.append(size[0])
                self.image_heights.append(size[1])
            self.image_kb.append(len(im.bytes or b"") / 1024)

    def merge(self, other: DatasetStats) -> None:
        """Add the counts of `other` (gathered over other rows) to these."""
        for name in self.__dataclass_fields__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "rejects":
                mine.extend(theirs[: max(0, MAX_REJECT_EXAMPLES - len(mine))])
            elif isinstance(mine, Counter | array):
                mine += theirs
            else:
                setattr(self, name, mine + theirs)

    def topic_level(self, level: int) -> Counter:
        return Counter({"/".join(k): v for k, v in self.topics.items() if len(k) == level})

    def pass_rate_items(self) -> list[tuple[str, int]]:
        def key(s: str) -> tuple[float, int]:
            k, n = s.split("/")
            return (int(k) / int(n), int(n))

        return sorted(self.pass_rates.items(), key=lambda kv: key(kv[0]))

    def to_dict(self) -> dict[str, Any]:
        def summary(values: array) -> dict[str, float]:
            if not len(values):
                return {}
            a = np.frombuffer(values, dtype=np.float32 if values.typecode == "f" else np.uint32)
            return {
                "mean": round(float(a.mean()), 2),
                "median": float(np.median(a)),
                "p90": float(np.percentile(a, 90)),
                "min": float(a.min()),
                "max": float(a.max()),
            }

        return {
            "rows": self.rows,
            "rejected_rows": self.rejected,
            "data_sources": dict(self.sources.most_common()),
            "topics": {
                f"level_{lv}": dict(self.topic_level(lv).most_common()) for lv in (1, 2, 3, 4)
            },
            "knowledge_points": {
                "distinct": len(self.knowledge),
                "top": dict(self.knowledge.most_common(TOP_KNOWLEDGE)),
            },
            "visual_elements": {
                "categories": dict(self.ve_categories.most_common()),
                "types": {f"{c}/{t}": n for (c, t), n in self.ve_types.most_common()},
            },
            "pass_rate": {"histogram": dict(self.pass_rate_items()), "missing": self.no_pass_rate},
            "answer_kinds": dict(self.answer_kinds.most_common()),
            "question_chars": summary(self.question_chars),
            "images_per_problem": {str(k): v for k, v in sorted(self.images_per_problem.items())},
            "image_width": summary(self.image_widths),
            "image_height": summary(self.image_heights),
            "image_kb": summary(self.image_kb),
            "undecodable_images": self.undecodable_images,
        }


def _batch_stats(batch: ProblemBatch) -> DatasetStats:
    part = DatasetStats()
    for p in batch.problems:
        part.add(p)
    part.rejected = len(batch.rejects)
    part.rejects = batch.rejects[:MAX_REJECT_EXAMPLES]
    return part


def collect_stats(
    paths: list[str | Path], batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None
) -> DatasetStats:
    """Statistics of every readable row of the inputs (parquet read in `workers` processes)."""
    sources = open_sources(paths)
    stats = DatasetStats()
    total = sum(s.num_rows or 0 for s in sources) or None
    with progress_bar("stats", total) as bar:
        parts = map_batches(
            sources, _batch_stats, batch_size=batch_size, workers=workers, with_id=False
        )
        for part in parts:
            stats.merge(part)
            bar.advance(part.rows + part.rejected)
    return stats


def _md_table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def summary_markdown(stats: DatasetStats, inputs: list[str]) -> str:
    d = stats.to_dict()
    total = max(1, stats.rows)

    def pct(n: int) -> str:
        return f"{100 * n / total:.1f}%"

    parts = [
        "# Dataset summary",
        "",
        f"Inputs: {', '.join(inputs)}  ",
        f"Problems: **{stats.rows}**; rows not readable (see `data validate`): {stats.rejected}",
        "",
        "## Topics (level 1)",
        _md_table([(k, v, pct(v)) for k, v in d["topics"]["level_1"].items()], ("topic", "n", "%")),
        "",
        "## Topics (level 2, top 15)",
        _md_table(
            [(k, v, pct(v)) for k, v in list(d["topics"]["level_2"].items())[:15]],
            ("topic", "n", "%"),
        ),
        "",
        f"## Knowledge points ({d['knowledge_points']['distinct']} distinct, top 15)",
        _md_table(list(d["knowledge_points"]["top"].items())[:15], ("knowledge point", "n")),
        "",
        "## Visual elements",
        _md_table(
            [(k, v, pct(v)) for k, v in d["visual_elements"]["categories"].items()],
            ("category", "problems", "%"),
        ),
        "",
        "## Pass rate",
        _md_table(list(d["pass_rate"]["histogram"].items()), ("pass rate", "n"))
        if d["pass_rate"]["histogram"]
        else "No problem has a pass rate.",
        f"\nWithout a pass rate: {d['pass_rate']['missing']}",
        "",
        "## Answer kinds",
        _md_table([(k, v, pct(v)) for k, v in d["answer_kinds"].items()], ("kind", "n", "%")),
        "",
        "## Questions and images",
        _md_table(
            [
                (
                    name,
                    s.get("mean", "-"),
                    s.get("median", "-"),
                    s.get("p90", "-"),
                    s.get("max", "-"),
                )
                for name, s in (
                    ("question length (chars)", d["question_chars"]),
                    ("image width (px)", d["image_width"]),
                    ("image height (px)", d["image_height"]),
                    ("image size (KB)", d["image_kb"]),
                )
            ],
            ("", "mean", "median", "p90", "max"),
        ),
        "",
        "Images per problem: " + ", ".join(f"{k}: {v}" for k, v in d["images_per_problem"].items()),
        "",
        "## Plots",
        "![topics](topics.png)",
        "![visual elements](visual_elements.png)",
        "![pass rate](pass_rate.png)",
        "![answer kinds](answer_kinds.png)",
        "",
    ]
    return "\n".join(parts)


def write_stats(stats: DatasetStats, out_dir: Path, inputs: list[str]) -> list[Path]:
    from deepvision.data import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "stats.json").write_text(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False))
    (out_dir / "summary.md").write_text(summary_markdown(stats, inputs))
    written = [out_dir / "stats.json", out_dir / "summary.md"]
    written += plots.write_all(stats, out_dir)
    return written
