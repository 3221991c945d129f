"""LogicVista (Yijia-Xiao/LogicVista, data/dataset.json): multiple choice whose answers may be
several letters ("A, C"), compared as sets. Breakdown by skill (inductive, deductive,
numerical, spatial, mechanical)."""

from __future__ import annotations

from typing import Any

from deepvision.eval.benchmark import Benchmark, problem
from deepvision.records import Problem


class LogicVista(Benchmark):
    name = "logic_vista"
    title = "LogicVista"
    size = 448
    aliases = ("logicvista", "LogicVista")
    signature = ("data/dataset.json", frozenset({"imagename", "question", "answer", "skill"}))
    choice_letters = "ABCDEFGHI"  # answers go up to I
    category_keys = ("skill",)
    reference = "Yijia-Xiao/LogicVista (data/dataset.json)"

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        skill = raw.get("skill") or raw.get("category")
        if isinstance(skill, list):
            skill = ", ".join(str(s) for s in skill)
        return {"skill": str(skill).strip().lower()} if skill else {}

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        ref = raw.get("imagename") or raw.get("image") or raw.get("image_path")
        if isinstance(ref, str) and "/" not in ref:
            try:
                image = resolve(f"images/{ref}")
            except ValueError:
                image = resolve(ref)
        else:
            image = resolve(ref) if ref else None
        pid = raw.get("id") or raw.get("_key") or raw.get("imagename")
        return problem(self, pid, str(raw["question"]), [image] if image else [], raw["answer"],
                       None, raw)  # fmt: skip
