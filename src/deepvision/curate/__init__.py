"""Curation: turn noisy raw problems into a verified RL dataset, stage by stage.

Each stage maps Problems to Problems (+ columns) with a side file of dropped problems and
their reasons, resumably: `validity`, `difficulty`, `correctness`, `dedup`, `decontam`,
`annotate` (listed once, in `registry.STAGES`). `pipeline` runs them from a YAML config and
writes a funnel report."""

from deepvision.curate.annotate import AnnotateStage
from deepvision.curate.correctness import CorrectnessStage
from deepvision.curate.decontam import DecontamStage
from deepvision.curate.dedup import DedupStage
from deepvision.curate.difficulty import DifficultyStage
from deepvision.curate.modelcall import ModelConfig, ReplyParseError, parse_json_object
from deepvision.curate.pipeline import PipelineConfig, StageSpec, run_pipeline
from deepvision.curate.registry import STAGE_NAMES, STAGES, get_stage
from deepvision.curate.rules import DEFAULT_KEYWORDS, KeywordRules
from deepvision.curate.stage import (
    Outcome,
    References,
    Stage,
    StageReport,
    run_stage,
    side_paths,
)
from deepvision.curate.validity import ValidityStage

__all__ = [
    "DEFAULT_KEYWORDS",
    "STAGES",
    "STAGE_NAMES",
    "AnnotateStage",
    "CorrectnessStage",
    "DecontamStage",
    "DedupStage",
    "DifficultyStage",
    "KeywordRules",
    "ModelConfig",
    "Outcome",
    "PipelineConfig",
    "References",
    "ReplyParseError",
    "Stage",
    "StageReport",
    "StageSpec",
    "ValidityStage",
    "get_stage",
    "parse_json_object",
    "run_pipeline",
    "run_stage",
    "side_paths",
]
