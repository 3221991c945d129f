"""MathVerse, vision-only version (AI4Math/MathVerse, testmini, `problem_version == "Vision
Only"`): the question and options are in the image; the text is the benchmark's query.
Breakdowns by subject, subfield and question type."""

from __future__ import annotations

from typing import Any

from deepvision.eval.benchmark import Benchmark, problem
from deepvision.records import Problem

VISION_ONLY = "Vision Only"


class MathVerseVision(Benchmark):
    name = "mathverse_vision"
    title = "MathVerse (vision only)"
    size = 788
    aliases = ("mathverse", "MathVerse")
    choice_letters = "ABCDEFGH"  # testmini has answers up to F
    category_keys = ("subject", "subfield", "question_type")
    reference = 'AI4Math/MathVerse (testmini, problem_version == "Vision Only")'

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        out = {k: str(meta[k]) for k in ("subject", "subfield") if meta.get(k)}
        for k in ("subject", "subfield", "question_type"):
            if raw.get(k):
                out[k] = str(raw[k])
        return out

    def is_choice(self, item: dict[str, Any]) -> bool:
        return (item.get("categories") or {}).get("question_type") == "multi-choice"

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem | None:
        if raw.get("problem_version", VISION_ONLY) != VISION_ONLY:
            return None
        text = raw.get("query_cot") or raw.get("query_wo") or raw.get("question") or ""
        images = [resolve(raw["image"])] if raw.get("image") else []
        return problem(self, raw.get("sample_index", raw.get("problem_index")), str(text),
                       images, raw["answer"], None, raw)  # fmt: skip
