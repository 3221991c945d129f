"""`data stats`: describe a dataset in one streaming pass; write stats.json, summary.md, plots."""

from __future__ import annotations

import importlib
import io
import json
import struct
import threading
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
from PIL import Image

from deepvision.data import columns
from deepvision.data.answer_kind import answer_kind
from deepvision.data.reader import ProblemBatch, Reject, map_batches, open_sources, parse_batch
from deepvision.data.sources import DEFAULT_BATCH_SIZE, RowBatch
from deepvision.data.writer import PathOutput, finish
from deepvision.progress import progress_bar
from deepvision.records import (
    DATA_SOURCE,
    DOMAIN_ANNO,
    IMAGES,
    NECESSITY_ANNO,
    OPTIONS,
    PASS_RATE,
    PNG_SIGNATURE,
    QUESTION,
    REWARD_MODEL,
    VISION_ANNO,
    Problem,
    decode_column,
)

_PLOTS = "deepvision.data.plots"
TOP_KNOWLEDGE = 30
# The string columns statistics (and the readability of a row) depend on.
_DECODERS: dict[str, Callable[[str], Any]] = {
    name: partial(decode_column, name)
    for name in (DOMAIN_ANNO, VISION_ANNO, NECESSITY_ANNO, PASS_RATE)
}
MAX_REJECT_EXAMPLES = 50


def _png_size(head: bytes | None) -> tuple[int, int] | None:
    """(width, height) from the first 24 bytes of a PNG; None if they are not a PNG's."""
    if head and len(head) >= 24 and head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header (PNG read directly, other formats by PIL); None if the
    bytes are not an image."""
    size = _png_size(bytes(data[:24]))
    if size is not None:
        return size
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
        self.add_row(
            p.topic,
            p.knowledge_points,
            p.visual_elements,
            str(p.pass_rate) if p.pass_rate else None,
            answer_kind(p.answer, p.options),
            p.data_source,
            len(p.images),
            len(p.question),
        )
        for im in p.images:
            self.add_image(_image_size(im.bytes or b""), len(im.bytes or b""))

    def add_row(
        self,
        topic: list[str],
        knowledge: list[str],
        visual_elements: dict[str, list[str]],
        pass_rate: str | None,
        kind: str,
        source: str | None,
        images: int,
        question_chars: int,
    ) -> None:
        """One problem's counts (its images go through `add_image`)."""
        self.rows += 1
        for depth in range(1, min(4, len(topic)) + 1):
            self.topics[tuple(topic[:depth])] += 1
        # dict.fromkeys, not set: ties keep first-seen order, the same in every run.
        self.knowledge.update(dict.fromkeys(knowledge, 1))
        for cat, types in visual_elements.items():
            if types:
                self.ve_categories[cat] += 1
            for t in dict.fromkeys(types):
                self.ve_types[(cat, t)] += 1
        if pass_rate is None:
            self.no_pass_rate += 1
        else:
            self.pass_rates[pass_rate] += 1
        self.answer_kinds[kind] += 1
        self.sources[source or "(none)"] += 1
        self.images_per_problem[images] += 1
        self.question_chars.append(question_chars)

    def add_image(self, size: tuple[int, int] | None, nbytes: int) -> None:
        if size is None:
            self.undecodable_images += 1
        else:
            self.image_widths.append(size[0])
            self.image_heights.append(size[1])
        self.image_kb.append(nbytes / 1024)

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


def _problem_stats(batch: ProblemBatch, part: DatasetStats | None = None) -> DatasetStats:
    part = part or DatasetStats()
    for p in batch.problems:
        part.add(p)
    part.rejected += len(batch.rejects)
    part.rejects += batch.rejects[: max(0, MAX_REJECT_EXAMPLES - len(part.rejects))]
    return part


def _columnar_stats(batch: RowBatch) -> DatasetStats:
    """Statistics of a batch read column by column (see `columns`); unusual rows go
    through the Problem path."""
    rb = batch.arrow
    n = rb.num_rows
    col = {name: rb.column(name) for name in rb.schema.names}
    slow = columns.unusual_rows(col)
    n_images, image_row = columns.item_rows(col[IMAGES])
    data = columns.field(columns.items(col[IMAGES]), "bytes")
    answers = columns.field(col[REWARD_MODEL], "ground_truth")
    has_options = np.zeros(n, dtype=bool)
    if OPTIONS in col:
        has_options = columns.item_rows(col[OPTIONS])[0] > 0
    values = {
        name: columns.decoded(col[name], decode, slow) if name in col else [None] * n
        for name, decode in _DECODERS.items()
    }
    q_chars = pc.utf8_length(col[QUESTION]).to_pylist()
    answer_list = answers.to_pylist()
    sources = col[DATA_SOURCE].to_pylist() if DATA_SOURCE in col else [None] * n
    kinds: dict[tuple[str, bool], str] = {}

    part = DatasetStats()
    for i in np.flatnonzero(~slow).tolist():
        domain, vision = values[DOMAIN_ANNO][i] or {}, values[VISION_ANNO][i] or {}
        rate = values[PASS_RATE][i]
        key = (answer_list[i], bool(has_options[i]))
        if key not in kinds:  # answer_kind only asks whether there are options
            kinds[key] = answer_kind(key[0], ["?"] if key[1] else None)
        part.add_row(
            domain.get("topic", []),
            domain.get("knowledge_points", []),
            vision.get("visual_elements", {}),
            None if rate is None else str(rate["pass_rate"]),
            kinds[key],
            sources[i],
            int(n_images[i]),
            q_chars[i],
        )
    heads = pc.binary_slice(data, 0, 24).to_pylist()
    nbytes = pc.binary_length(data).to_pylist()
    for j in np.flatnonzero(~slow[image_row]).tolist():
        size = _png_size(heads[j])
        if size is None:  # not a PNG: PIL reads the header
            size = _image_size(data[j].as_py())
        part.add_image(size, nbytes[j])
    slow_rows = np.flatnonzero(slow).tolist()
    if slow_rows:
        rows = RowBatch([batch.row(i) for i in slow_rows])
        _problem_stats(parse_batch(rows, with_id=False), part)
    return part


def _batch_stats(batch: RowBatch) -> DatasetStats:
    if columns.column_wise(batch):
        return _columnar_stats(batch)
    return _problem_stats(parse_batch(batch, with_id=False))


def collect_stats(
    paths: list[str | Path],
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    prepare_plots: bool = False,
    *,
    allow_absolute: bool = False,
) -> DatasetStats:
    """Statistics of every readable row of the inputs (parquet read in `workers` processes).

    With `prepare_plots`, the plotting module (matplotlib: most of a second to import) is
    imported in a thread while worker processes do the reading, once they have started.
    `allow_absolute`: JSONL image paths may be absolute."""
    sources = open_sources(paths, allow_absolute=allow_absolute)
    stats = DatasetStats()
    total = sum(s.num_rows or 0 for s in sources) or None
    warm = None
    with progress_bar("stats", total) as bar:
        parts = map_batches(
            sources, _batch_stats, batch_size=batch_size, workers=workers, parse=False
        )
        for part in parts:
            if warm is None and prepare_plots and workers != 1:
                # After the first result the pool has forked its workers: no fork can copy a
                # lock the import holds.
                warm = threading.Thread(target=importlib.import_module, args=(_PLOTS,))
                warm.start()
            stats.merge(part)
            bar.advance(part.rows + part.rejected)
    if warm is not None:
        warm.join()
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
    """stats.json, summary.md and the plots, in `out_dir`. They are replaced together or not
    at all: a failure (a full disk) leaves the files of an earlier run as they were."""
    from deepvision.data import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["stats.json", "summary.md", *plots.PLOTS]
    files = {name: PathOutput(out_dir / name) for name in names}
    ok = False
    try:
        text = json.dumps(stats.to_dict(), indent=2, ensure_ascii=False)
        files["stats.json"].tmp.write_text(text, encoding="utf-8")
        files["summary.md"].tmp.write_text(summary_markdown(stats, inputs), encoding="utf-8")
        for name, draw in plots.PLOTS.items():
            plots.save(draw(stats), files[name].tmp)
        ok = True
    finally:
        finish(list(files.values()), ok)
    return [out_dir / name for name in names]
