"""`synth`: an embedded benchmark from the synthetic data engine (no download, no data
folder): verifiable visual problems across the four domains, so `deepvision eval run` works
on a fresh machine against any endpoint. Breakdowns by domain and problem family."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from deepvision.data.prompts import format_options
from deepvision.data.synth import generate
from deepvision.eval.benchmark import Benchmark, LoadReport
from deepvision.records import Problem

SEED = 20260225


class Synth(Benchmark):
    name = "synth"
    title = "Synth (embedded)"
    size = 60
    category_keys = ("domain", "family")
    reference = f"deepvision data synth --n 60 --seed {SEED}"

    def locate(self, data_dir: Path) -> tuple[str, Path] | None:
        return "embedded", Path("<embedded>")

    def load(
        self,
        data_dir: Path | None,
        report: LoadReport | None = None,
        *,
        allow_absolute: bool = False,
    ) -> Iterator[Problem]:
        """The embedded items (images generated in memory: no path is read)."""
        report = report if report is not None else LoadReport()
        report.layout, report.path = "embedded", f"synth seed {SEED}"
        for p in generate(self.size, seed=SEED):
            text = p.user_prompt
            if p.options and format_options(p.options) not in text:
                text = f"{text}\n{format_options(p.options)}"
            family = p.id.split("-")[1] if p.id.count("-") >= 2 else "synth"
            p.extra = {
                "categories": {"domain": p.topic[0] if p.topic else "", "family": family},
                "bench": {},
            }
            p.question, p.messages, p.data_source = text, None, self.name
            report.rows += 1
            yield p
