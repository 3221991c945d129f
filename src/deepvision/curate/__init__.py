"""Curation: turn noisy raw problems into a verified RL dataset, stage by stage.

Each stage maps Problems to Problems (+ columns) with a side file of dropped problems and
their reasons, resumably: `validity`, `difficulty`, `correctness`, `dedup`, `decontam`,
`annotate`. `pipeline` runs them from a YAML config and writes a funnel report."""

from deepvision.curate.decontam import DecontamStage
from deepvision.curate.dedup import DedupStage
from deepvision.curate.modelcall import ModelConfig, ReplyParseError, parse_json_object
from deepvision.curate.rules import DEFAULT_KEYWORDS, KeywordRules
from deepvision.curate.stage import Outcome, Stage, StageReport, run_stage, side_paths
from deepvision.curate.validity import ValidityStage

__all__ = [
    "DEFAULT_KEYWORDS",
    "DecontamStage",
    "DedupStage",
    "KeywordRules",
    "ModelConfig",
    "Outcome",
    "ReplyParseError",
    "Stage",
    "StageReport",
    "ValidityStage",
    "parse_json_object",
    "run_stage",
    "side_paths",
]
