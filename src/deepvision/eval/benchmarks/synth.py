"""`synth`: a benchmark from the synthetic data engine. By default its items are embedded (no
download, no data folder): verifiable visual problems across the four domains, so `deepvision
eval run` works on a fresh machine against any endpoint. A data folder holding `synth.parquet`
(Problems, as `deepvision data synth` or the quickstart writes them) supplies the items
instead: the quickstart's held-out colour problems are evaluated this way. Breakdowns by
domain and problem family."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

from deepvision.data.prompts import format_options
from deepvision.data.reader import iter_problem_batches, open_sources
from deepvision.data.synth import generate
from deepvision.eval.benchmark import Benchmark, LoadReport
from deepvision.records import Problem

SEED = 20260225
PROBLEMS_FILE = "synth.parquet"


class Synth(Benchmark):
    name = "synth"
    title = "Synth (embedded)"
    size = 60
    category_keys = ("domain", "family")
    reference = f"deepvision data synth --n 60 --seed {SEED}"

    def locate(self, data_dir: Path | None) -> tuple[str, Path] | None:
        """('problems', DATA_DIR/synth.parquet) when the folder holds one, else the embedded
        items."""
        if data_dir is not None and (Path(data_dir) / PROBLEMS_FILE).is_file():
            return "problems", Path(data_dir) / PROBLEMS_FILE
        return "embedded", Path("<embedded>")

    def load(
        self,
        data_dir: Path | None,
        report: LoadReport | None = None,
        *,
        allow_absolute: bool = False,
    ) -> Iterator[Problem]:
        """The items of `synth.parquet` in `data_dir` (rows that cannot be read are excluded
        and named), else the embedded ones (images generated in memory: no path is read)."""
        report = report if report is not None else LoadReport()
        layout, path = self.locate(data_dir)
        if layout == "problems":
            report.layout, report.path = layout, str(path)
            problems: Iterable[Problem] = _read_problems(path, report)
        else:
            report.layout, report.path = layout, f"synth seed {SEED}"
            problems = (dataclasses.replace(p) for p in _embedded(self.size))
        for p in problems:
            report.rows += 1
            yield _as_item(p, self.name)


@functools.cache
def _embedded(size: int) -> tuple[Problem, ...]:
    """The embedded items as generated, once per process (a run reads them, then its report
    again for the thumbnails; drawing 60 pictures costs half a second)."""
    return tuple(generate(size, seed=SEED))


def _read_problems(path: Path, report: LoadReport) -> Iterator[Problem]:
    """Problems of a parquet file; a row that is not a valid Problem is excluded, named."""
    for batch in iter_problem_batches(open_sources([path])):
        for rej in batch.rejects:
            report.exclude(f"row {rej.row}", "; ".join(str(i) for i in rej.issues))
        yield from batch.problems


def _as_item(p: Problem, bench: str) -> Problem:
    """A generated Problem as a benchmark item: options lettered in the question, categories
    from its topic and family (ids are `synth-<family>-...`)."""
    text = p.user_prompt
    if p.options and format_options(p.options) not in text:
        text = f"{text}\n{format_options(p.options)}"
    family = p.id.split("-")[1] if p.id.count("-") >= 2 else "synth"
    p.extra = {
        "categories": {"domain": p.topic[0] if p.topic else "", "family": family},
        "bench": {},
    }
    p.question, p.messages, p.data_source = text, None, bench
    return p
