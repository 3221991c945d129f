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

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deepvision.eval.benchmark import Benchmark, LoadReport, problem
from deepvision.eval.benchmarks._choice import with_options
from deepvision.eval.options import split_lettered
from deepvision.records import Problem

_KEY = re.compile(r"^(\d)steps_(\d|multi)$")
NODES_FILE = "knowledge_structure_nodes.json"  # the official scorer's concept -> area map


def step_class(key: str) -> str:
    m = _KEY.match(key or "")
    if not m:
        return "other"
    return "one-step" if m.group(2) != "multi" else f"{m.group(1)}-step"


def concept_areas(folder: Path) -> dict[str, str]:
    """Knowledge concept -> its area (`root2`) from the official nodes file of the folder
    (top or `data/`), as the official accuracy script maps them; {} without the file."""
    for path in (folder / NODES_FILE, folder / "data" / NODES_FILE):
        try:
            nodes = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return {
            str(n["full node"]).split("_")[-1]: str(n["root2"])
            for n in nodes
            if isinstance(n, dict) and n.get("full node") and n.get("root2")
        }
    return {}


def _reletter(gold: str, letters: list[str]) -> str:
    """A gold letter (or letters) in the new lettering of options that skipped a letter."""
    new = {old: chr(65 + i) for i, old in enumerate(letters)}
    return re.sub(r"[A-J]", lambda m: new.get(m.group(0), m.group(0)), gold)


class WeMath(Benchmark):
    name = "wemath"
    title = "WeMath"
    size = 1740
    aliases = ("We-Math", "WeMath")
    signature = ("data/testmini.json", frozenset({"ID", "knowledge concept", "option", "key"}))
    choice_letters = "ABCDEFGH"
    category_keys = ("step", "area", "concept")
    reference = "We-Math/We-Math (testmini)"

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        """The step class of every item; the knowledge concept (and its area, when the
        official nodes file is there) of the one-step items only, as the official accuracy
        script reports them (a multi-step problem's concept list is not a concept)."""
        step = step_class(str(raw.get("key", "")))
        out = {"step": step}
        concept = raw.get("knowledge concept") or raw.get("knowledge_concept")
        if concept and step == "one-step":
            out["concept"] = str(concept)
            if raw.get("_area"):
                out["area"] = str(raw["_area"])
        return out

    def bench_fields(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {"ID": str(raw.get("ID", "")), "key": str(raw.get("key", ""))}

    def _official_rows(self, path: Path, report: LoadReport) -> Iterator[tuple[str, dict]]:
        areas = concept_areas(path if path.is_dir() else path.parent)
        for where, raw in super()._official_rows(path, report):
            area = areas.get(str(raw.get("knowledge concept") or ""))
            yield where, ({**raw, "_area": area} if area else raw)

    def from_release(self, obj, resolve, report) -> Problem:
        p = super().from_release(obj, resolve, report)
        if obj.get("ID") is not None and obj.get("key"):
            p.id = f"{obj['ID']}@{obj['key']}"
        return p

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        """The question with its options lettered under it. Options whose string skips a
        letter are lettered again (the gold too, the item named); a string that cannot be
        split goes out as shipped, the item named and scored apart."""
        pid = f"{raw['ID']}@{raw['key']}"
        stored = str(raw.get("option") or "").strip()
        found = split_lettered(stored) if stored else None
        gold, options = str(raw["answer"]), None
        if found is not None:
            options = found.texts
            if found.relettered:
                gold = _reletter(gold, found.letters)
                report.options_relettered.append(pid)
            text = with_options(str(raw["question"]).strip(), options)
        else:
            text = self.show_options(str(raw["question"]).strip(), None, stored, pid, report)
        images = [resolve(raw["image_path"])] if raw.get("image_path") else []
        return problem(self, pid, text, images, gold, options, raw)

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
