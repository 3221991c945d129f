"""`deepvision curate run PIPELINE.yaml`: stages in order from one config, and the funnel
report (rows in and out per stage, drop reasons, tokens, pass-rate histogram, topic and
visual-element distributions before and after; markdown + PNG).

    input: raw.jsonl                 # one path or a list; relative to the YAML's folder
    workdir: runs/curate             # stage outputs NN-<stage>.parquet, reports, funnel
    output: curated.parquet          # optional: the last stage's output is copied here
    engine: local                    # or ray
    chunk_size: 1024
    models:                          # any OpenAI-compatible endpoint; keys from env vars
      policy: {endpoints: ["http://127.0.0.1:8000/v1"], model: MiMo-VL-7B-SFT, temperature: 1.0}
      judge: {endpoints: ["https://api.example.com/v1"], model: gemini-3-flash,
              api_key_env: JUDGE_API_KEY}
    stages:
      - {stage: validity, model: judge, prompt: prompts/validity.txt}
      - {stage: dedup}
      - {stage: decontam, benchmarks: [synth]}
      - {stage: difficulty, model: policy, n: 8, band: 1/8..7/8}
      - {stage: correctness, model: judge}
      - {stage: annotate, model: judge}

A stage whose output and report exist is skipped while its settings and inputs (paths, sizes,
modification times, the keyword file's content) are those its report records; otherwise it
runs again, and so do the stages after it. The stage in progress resumes from its work
folder; `overwrite` starts every stage over."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepvision.curate.modelcall import ModelConfig
from deepvision.curate.stage import (
    DEFAULT_CHUNK_SIZE,
    Stage,
    StageReport,
    run_stage,
    side_paths,
    stage_meta,
)
from deepvision.errors import UsageError
from deepvision.records import Problem

References = Callable[[list[str], Path | None], Iterable[tuple[str, Problem]]]
STAGES = ("validity", "difficulty", "correctness", "dedup", "decontam", "annotate")
_PATH_KEYS = {"prompt", "user_prompt", "keywords", "taxonomy", "data_dir"}


@dataclass
class PipelineConfig:
    inputs: list[Path]
    workdir: Path
    stages: list[dict[str, Any]]
    models: dict[str, ModelConfig] = field(default_factory=dict)
    output: Path | None = None
    engine: str = "local"
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"pipeline file {path} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"pipeline file {path}: expected a mapping at the top")
        base = path.parent

        def rel(p: Any) -> Path:
            q = Path(str(p))
            return q if q.is_absolute() else base / q

        unknown = set(data) - {
            "input",
            "workdir",
            "output",
            "engine",
            "chunk_size",
            "models",
            "stages",
        }
        if unknown:
            raise UsageError(f"pipeline file {path}: unknown keys {sorted(unknown)}")
        if "input" not in data or not data.get("stages"):
            raise UsageError(f"pipeline file {path}: 'input' and 'stages' are required")
        inputs = data["input"] if isinstance(data["input"], list) else [data["input"]]
        models = {}
        for name, spec in (data.get("models") or {}).items():
            spec = dict(spec)
            if "endpoint" in spec:
                spec["endpoints"] = spec.pop("endpoint")
            try:
                models[name] = ModelConfig(**spec)
            except TypeError as exc:
                raise UsageError(f"pipeline file {path}: model {name!r}: {exc}") from None
        stages = []
        for k, spec in enumerate(data["stages"], start=1):
            if isinstance(spec, str):
                spec = {"stage": spec}
            if not isinstance(spec, dict) or spec.get("stage") not in STAGES:
                raise UsageError(
                    f"pipeline file {path}: stage {k} must name one of {', '.join(STAGES)}"
                )
            spec = {key: (str(rel(v)) if key in _PATH_KEYS and v else v) for key, v in spec.items()}
            if spec.get("model") is not None and spec["model"] not in models:
                raise UsageError(
                    f"pipeline file {path}: stage {k} uses unknown model "
                    f"{spec['model']!r}; models: {sorted(models)}"
                )
            stages.append(spec)
        return cls(
            inputs=[rel(p) for p in inputs],
            workdir=rel(data.get("workdir", "curate-out")),
            stages=stages,
            models=models,
            output=rel(data["output"]) if data.get("output") else None,
            engine=data.get("engine", "local"),
            chunk_size=int(data.get("chunk_size", DEFAULT_CHUNK_SIZE)),
        )


def build_stage(
    spec: dict[str, Any], models: dict[str, ModelConfig], references: References | None
) -> Stage:
    from deepvision.curate.annotate import AnnotateStage
    from deepvision.curate.correctness import CorrectnessStage
    from deepvision.curate.decontam import DecontamStage
    from deepvision.curate.dedup import DedupStage
    from deepvision.curate.difficulty import DifficultyStage
    from deepvision.curate.validity import ValidityStage

    opts = {k: v for k, v in spec.items() if k not in ("stage", "model")}
    name = spec["stage"]
    model = models.get(spec["model"]) if spec.get("model") else None
    try:
        if name == "validity":
            return ValidityStage(model, **opts)
        if name == "dedup":
            return DedupStage(**opts)
        if name == "decontam":
            if references is None:
                raise UsageError("decontam needs benchmark references")
            names = opts.pop("benchmarks", ["all"])
            data_dir = opts.pop("data_dir", None)
            refs = references(list(names), Path(data_dir) if data_dir else None)
            return DecontamStage(refs, **opts)
        if model is None:
            raise UsageError(f"stage {name} needs `model: <name of a model>`")
        cls = {
            "difficulty": DifficultyStage,
            "correctness": CorrectnessStage,
            "annotate": AnnotateStage,
        }[name]
        return cls(model, **opts)
    except TypeError as exc:
        raise UsageError(f"stage {name}: {exc}") from None


def run_pipeline(
    cfg: PipelineConfig,
    *,
    references: References | None = None,
    overwrite: bool = False,
    on_stage: Callable[[StageReport], None] | None = None,
) -> dict[str, Any]:
    """Run every stage in order; returns the funnel (also written to the workdir)."""
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    current = list(cfg.inputs)
    reports: list[StageReport] = []
    for k, spec in enumerate(cfg.stages, start=1):
        out = cfg.workdir / f"{k:02d}-{spec['stage']}.parquet"
        rep_path = side_paths(out)["report"]
        stage = build_stage(spec, cfg.models, references)
        done = None
        if out.exists() and rep_path.exists() and not overwrite:
            done = StageReport.from_dict(json.loads(rep_path.read_text()))
            # a finished stage counts only for the same settings on the same inputs
            if done.meta != stage_meta(stage, current):
                done = None
        if done is not None:
            rep = done
            rep.extra["skipped"] = "done in an earlier run"
        else:
            rep = run_stage(
                stage,
                current,
                out,
                overwrite=True if out.exists() else overwrite,
                chunk_size=cfg.chunk_size,
                engine=cfg.engine,
            )
        reports.append(rep)
        if on_stage:
            on_stage(rep)
        current = [out]
    final = current[0]
    if cfg.output is not None:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final, cfg.output)
        final = cfg.output
    from deepvision.curate.funnel import write_funnel

    return write_funnel(cfg.inputs, final, reports, cfg.workdir)
