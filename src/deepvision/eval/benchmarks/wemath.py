"""WeMath (We-Math/We-Math, testmini): multiple choice, with the four-dimensional metrics
that join one-step sub-problems to their multi-step problem by `ID`.

For each multi-step problem (key `2steps_multi` / `3steps_multi`) and its one-step parts
(`Nsteps_1` .. `Nsteps_N`): IG (inadequate generalization) all parts right, the whole wrong;
IK (insufficient knowledge) some part wrong, the whole wrong; CM (complete mastery) strict: all
parts and the whole right, loose: some part and the whole right; RM (rote memorization)
strict: some part wrong and the whole right, loose: all parts wrong and the whole right.
score = (N - 0.5 IG - RM - IK) / N over the N multi-step problems (525 in testmini); the RM
rate is RM / (CM + RM). With n samples, every figure is the mean over the sample indices.
While any sample of a composite is undecided (or one of its parts could not be loaded), no
four-dimensional figure is given: `partial` is true and `undecided_composites` says how many.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from deepvision.eval.benchmark import Benchmark, parse_options, problem
from deepvision.eval.benchmarks._choice import with_options
from deepvision.records import Problem

_KEY = re.compile(r"^(\d)steps_(\d|multi)$")


def step_class(key: str) -> str:
    m = _KEY.match(key or "")
    if not m:
        return "other"
    return "one-step" if m.group(2) != "multi" else f"{m.group(1)}-step"


class WeMath(Benchmark):
    name = "wemath"
    title = "WeMath"
    size = 1740
    aliases = ("We-Math", "WeMath")
    choice_letters = "ABCDEFGH"
    category_keys = ("step", "concept")
    reference = "We-Math/We-Math (testmini)"

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        out = {"step": step_class(str(raw.get("key", "")))}
        concept = raw.get("knowledge concept") or raw.get("knowledge_concept")
        if concept:
            out["concept"] = str(concept)
        return out

    def bench_fields(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"ID": str(raw.get("ID", "")), "key": str(raw.get("key", ""))}

    def from_release(self, obj, resolve, report, line) -> Problem:
        p = super().from_release(obj, resolve, report, line)
        if obj.get("ID") is not None and obj.get("key"):
            p.id = f"{obj['ID']}@{obj['key']}"
        return p

    def from_official(self, raw: dict[str, Any], resolve) -> Problem:
        options = parse_options(raw.get("option"))
        text = with_options(str(raw["question"]).strip(), options)
        if options is None and str(raw.get("option") or "").strip():
            text = f"{text}\n{str(raw['option']).strip()}"
        images = [resolve(raw["image_path"])] if raw.get("image_path") else []
        return problem(self, f"{raw['ID']}@{raw['key']}", text, images, raw["answer"], options,
                       raw)  # fmt: skip

    def extra_metrics(
        self,
        items: list[dict[str, Any]],
        correct: Callable[[dict[str, Any], int], bool | None],
        n: int,
    ) -> dict[str, Any]:
        groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for it in items:
            b = it.get("bench") or {}
            if _KEY.match(b.get("key", "")):
                groups[b["ID"]][b["key"]] = it
        complete, incomplete = {}, 0
        for gid, parts in groups.items():
            for steps in ("2", "3"):
                keys = [
                    f"{steps}steps_multi",
                    *(f"{steps}steps_{i}" for i in range(1, int(steps) + 1)),
                ]
                found = [parts.get(k) for k in keys]
                if all(it is not None for it in found):
                    complete[f"{gid}/{steps}"] = (found[0], found[1:])
                elif any(it is not None for it in found):
                    incomplete += 1  # a part the loader could not use: not decidable
        if not complete and not incomplete:
            return {}
        undecided = incomplete + sum(
            any(correct(it, k) is None for it in (multi, *subs) for k in range(n))
            for multi, subs in complete.values()
        )
        if undecided:  # the four dimensions of a partial set are not the result: none shown
            return {
                "wemath_4d": {
                    "composites": len(complete) + incomplete,
                    "undecided_composites": undecided,
                    "partial": True,
                }
            }
        names = ("IK", "IG", "CM_strict", "CM_loose", "RM_strict", "RM_loose")
        totals = dict.fromkeys(names, 0.0)
        for k in range(n):
            for multi, subs in complete.values():
                whole = correct(multi, k)
                got = [correct(s, k) for s in subs]
                totals["IG"] += all(got) and not whole
                totals["IK"] += (not all(got)) and not whole
                totals["CM_strict"] += all(got) and whole
                totals["CM_loose"] += any(got) and whole
                totals["RM_strict"] += (not all(got)) and whole
                totals["RM_loose"] += (not any(got)) and whole
        counts = {name: v / n for name, v in totals.items()}
        total = len(complete)
        out: dict[str, Any] = {"composites": total, "partial": False, "counts": counts}
        for mode in ("strict", "loose"):
            cm, rm = counts[f"CM_{mode}"], counts[f"RM_{mode}"]
            out[mode] = {
                "IK": counts["IK"] / total,
                "IG": counts["IG"] / total,
                "CM": cm / total,
                "RM": rm / (cm + rm) if cm + rm else 0.0,
                "score": (total - 0.5 * counts["IG"] - rm - counts["IK"]) / total,
            }
        return {"wemath_4d": out}
