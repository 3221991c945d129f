"""MMMU-Pro (MMMU/MMMU_Pro): the `standard (10 options)` config by default (`vision`:
the question and options are in the image; registry name `mmmu_pro_vision`). Its official
parsing takes the text after the last `Answer:`; we take the last box first (our prompts ask
for one), then that rule, then an option named in the text, never a guess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepvision.errors import DataError
from deepvision.eval.benchmark import Benchmark, LoadReport, problem
from deepvision.eval.benchmarks._choice import resolve_markers, with_options
from deepvision.eval.benchmarks.mmmu import DISCIPLINE_OF
from deepvision.eval.options import parse_options
from deepvision.records import Problem
from deepvision.verify import answer_after_last_marker, extract_answer, extract_choice


class MMMUPro(Benchmark):
    name = "mmmu_pro"
    title = "MMMU-Pro"
    size = 1730
    aliases = ("MMMU_Pro", "MMMU-Pro")
    splits = ("test",)
    config_prefixes: tuple[str, ...] = ("standard (10", "standard")
    category_keys = ("discipline", "subject")
    reference = "MMMU/MMMU_Pro (standard (10 options), test)"

    def _official_rows(self, path: Path, report: LoadReport):
        if path.is_dir():
            configs = sorted(d for d in path.iterdir() if d.is_dir())
            for prefix in self.config_prefixes:
                hit = [d for d in configs if d.name.startswith(prefix)]
                if hit:
                    report.fields["config"] = hit[0].name
                    path = hit[0]
                    break
            else:
                # Config folders, none of them ours: reading them all would mix configs.
                if any(any(d.rglob("*.parquet")) for d in configs):
                    raise DataError(
                        f"no `{self.config_prefixes[0]}...` config folder among "
                        f"{[d.name for d in configs]}",
                        file=str(path),
                    )
        yield from super()._official_rows(path, report)

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        subject = str(raw.get("subject") or "").replace(" ", "_")
        out = {"subject": subject} if subject else {}
        if subject in DISCIPLINE_OF:
            out["discipline"] = DISCIPLINE_OF[subject]
        return out

    def from_official(self, raw: dict[str, Any], resolve, report) -> Problem:
        options = parse_options(raw.get("options"))
        if raw.get("question") is None:  # vision config: everything is in the image
            text = "Answer the multiple-choice question shown in the image."
            return problem(self, raw["id"], text, [resolve(raw["image"])], raw["answer"],
                           options, raw)  # fmt: skip
        text = with_options(str(raw["question"]).strip(), options)
        images = {k: raw.get(f"image_{k}") for k in range(1, 8)}
        text, imgs = resolve_markers(text, images, resolve)
        return problem(self, raw["id"], text, imgs, raw["answer"], options, raw)

    def extract(self, response: str, item: dict[str, Any]) -> str | None:
        found = extract_answer(response, fallbacks=())
        if found is None:
            found = answer_after_last_marker(response)
        if found is None and item.get("options"):
            found = extract_choice(response, item["options"])
        return found


class MMMUProVision(MMMUPro):
    name = "mmmu_pro_vision"
    title = "MMMU-Pro (vision)"
    aliases = ("MMMU_Pro", "MMMU-Pro", "mmmu_pro")
    config_prefixes = ("vision",)
    reference = "MMMU/MMMU_Pro (vision, test)"

    def locate(self, data_dir: Path) -> tuple[str, Path] | None:
        """As for MMMU-Pro, except that a folder of standard configs without the vision one
        (what `eval download mmmu_pro` writes) does not hold this benchmark: it is missing
        (to download, or skip), not a folder that fails to load."""
        found = super().locate(data_dir)
        if found and found[1].is_dir():
            configs = [d.name for d in found[1].iterdir() if d.is_dir()]
            if any(c.startswith("standard") for c in configs) and not any(
                c.startswith(self.config_prefixes) for c in configs
            ):
                return None
        return found
