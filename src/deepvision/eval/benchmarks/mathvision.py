"""MathVision (MathLLMs/MathVision, test; testmini too): free-form and multiple choice; an
answer counts if it is the letter or the option's text. Breakdowns by level and subject."""

from __future__ import annotations

from typing import Any

from deepvision.eval.benchmark import Benchmark, problem
from deepvision.eval.benchmarks._choice import with_options
from deepvision.eval.options import parse_options
from deepvision.records import IMAGE_MARKER, IMAGE_PLACEHOLDER, Problem


class MathVision(Benchmark):
    name = "mathvision"
    title = "MathVision"
    size = 3040
    aliases = ("MathVision", "MathLLMs_MathVision", "MATH-V", "MATH-Vision")
    # the repository as shipped: data/test.jsonl, data/testmini.jsonl, images/ at the top
    signature = ("data/test.jsonl", frozenset({"id", "question", "options", "answer", "level"}))
    splits = ("test", "testmini")
    category_keys = ("level", "subject")
    reference = "MathLLMs/MathVision (test)"

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        options = parse_options(raw.get("options"))
        image = raw.get("decoded_image") or raw.get("image")
        images = [resolve(image)] if image else []
        text = str(raw["question"]).strip()
        if images and len(IMAGE_MARKER.findall(text)) == 1:
            text = IMAGE_MARKER.sub(IMAGE_PLACEHOLDER, text)
        else:
            text = IMAGE_MARKER.sub("", text).strip()
        return problem(self, raw["id"], with_options(text, options), images, raw["answer"],
                       options, raw)  # fmt: skip
