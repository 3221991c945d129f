"""M3CoT (LightChen2333/M3CoT, test): multiple choice with an optional image and context.
Breakdowns by domain, topic and category."""

from __future__ import annotations

from typing import Any

from deepvision.eval.benchmark import Benchmark, problem
from deepvision.eval.benchmarks._choice import with_options
from deepvision.eval.options import parse_options
from deepvision.records import Problem


class M3CoT(Benchmark):
    name = "m3cot"
    title = "M3CoT"
    size = 2318
    aliases = ("M3CoT",)
    splits = ("test", "validation", "train")
    category_keys = ("domain", "topic", "category")
    reference = "LightChen2333/M3CoT (test)"

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        options = parse_options(raw.get("choices"))
        context = str(raw.get("context") or "").strip()
        text = str(raw["question"]).strip()
        if context:
            text = f"{context}\n{text}"
        images = [resolve(raw["image"])] if raw.get("image") else []
        return problem(self, raw["id"], with_options(text, options), images, raw["answer"],
                       options, raw)  # fmt: skip
