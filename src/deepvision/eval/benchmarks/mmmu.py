"""MMMU (MMMU/MMMU, validation): `<image k>` markers in the question and options resolved to
images in order; open questions may list several accepted answers. Accuracy per subject
(from the id `validation_<Subject>_<n>`), rolled up to the six disciplines."""

from __future__ import annotations

import ast
from typing import Any

from deepvision.eval.benchmark import Benchmark, problem
from deepvision.eval.benchmarks._choice import resolve_markers, with_options
from deepvision.eval.options import parse_options
from deepvision.records import Problem

DISCIPLINES = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": ("Basic_Medical_Science", "Clinical_Medicine",
                            "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health"),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": ("Agriculture", "Architecture_and_Engineering", "Computer_Science",
                             "Electronics", "Energy_and_Power", "Materials",
                             "Mechanical_Engineering"),
}  # fmt: skip
DISCIPLINE_OF = {s: d for d, subjects in DISCIPLINES.items() for s in subjects}


def subject_of(raw: dict[str, Any]) -> str:
    pid = str(raw.get("id", ""))
    parts = pid.split("_")
    if len(parts) >= 3 and parts[-1].isdigit():
        return "_".join(parts[1:-1])
    return str(raw.get("subject") or "").replace(" ", "_")


def answers_of(raw_answer: Any) -> list[str]:
    """MMMU open answers may be a stringified list of accepted answers."""
    s = str(raw_answer).strip()
    if s.startswith("["):
        try:
            val = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            val = None
        if isinstance(val, list) and val:
            return [str(v) for v in val]
    return [s]


class MMMU(Benchmark):
    name = "mmmu"
    title = "MMMU (val)"
    size = 900
    aliases = ("MMMU",)
    splits = ("validation", "dev", "test")
    category_keys = ("discipline", "subject", "question_type")
    reference = "MMMU/MMMU (validation)"

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        subject = subject_of(raw)
        out = {"subject": subject} if subject else {}
        if subject in DISCIPLINE_OF:
            out["discipline"] = DISCIPLINE_OF[subject]
        if raw.get("question_type"):
            out["question_type"] = str(raw["question_type"])
        return out

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        options = parse_options(raw.get("options"))
        text = with_options(str(raw["question"]).strip(), options)
        images = {k: raw.get(f"image_{k}") for k in range(1, 8)}
        text, imgs = resolve_markers(text, images, resolve)
        accepted = answers_of(raw["answer"])
        p = problem(self, raw["id"], text, imgs, accepted[0], options, raw)
        p.equivalent_answers = accepted[1:]
        return p
