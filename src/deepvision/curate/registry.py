"""The curation stages, listed once: name -> Stage class, in the order a pipeline runs them."""

from __future__ import annotations

from deepvision.curate.annotate import AnnotateStage
from deepvision.curate.correctness import CorrectnessStage
from deepvision.curate.decontam import DecontamStage
from deepvision.curate.dedup import DedupStage
from deepvision.curate.difficulty import DifficultyStage
from deepvision.curate.stage import Stage
from deepvision.curate.validity import ValidityStage
from deepvision.errors import UsageError

STAGES: dict[str, type[Stage]] = {
    cls.name: cls
    for cls in (
        ValidityStage,
        DifficultyStage,
        CorrectnessStage,
        DedupStage,
        DecontamStage,
        AnnotateStage,
    )
}
STAGE_NAMES: tuple[str, ...] = tuple(STAGES)


def get_stage(name: str) -> type[Stage]:
    """The Stage class registered under `name`; UsageError naming the known ones else."""
    if name not in STAGES:
        raise UsageError(f"unknown stage {name!r}; known: {', '.join(STAGE_NAMES)}", param="stage")
    return STAGES[name]
