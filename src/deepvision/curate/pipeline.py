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

The config is checked whole before any stage runs (`deepvision.configs`): unknown keys, wrong
types, out-of-range values, a stage not in the registry (`registry.STAGES`), a setting the
stage does not take, a model that is not defined: each raises ConfigError naming the file and
the key path (`stages[3].n`). Stage settings are the stage's keyword arguments; those that may
be paths (`prompt`, `keywords`, `taxonomy`, `data_dir`, ...) are relative to the YAML's folder.

Then, before stage 1 reads a row, every model a stage will ask is checked (`check_models`):
its API key is set, every endpoint answers GET /models within seconds, accepts the key and
serves the model. The first fault ends the run with one line naming the stage and the problem
(`stage 5 (correctness) asks model judge: environment variable JUDGE_KEY (the API key) is not
set`), instead of after hours of the stages before it.

A stage whose output and report exist is skipped while its settings and inputs (paths, sizes,
modification times, the keyword file's content) are those its report records; otherwise it
runs again, and so do the stages after it. The stage in progress resumes from its work
folder; `overwrite` starts every stage over."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from deepvision.configs import (
    INTERNAL,
    Config,
    ConfigLoader,
    bounded,
    from_dict,
    join_key,
    read_yaml,
)
from deepvision.curate.modelcall import ModelConfig
from deepvision.curate.registry import STAGE_NAMES, STAGES
from deepvision.curate.stage import (
    DEFAULT_CHUNK_SIZE,
    References,
    Stage,
    StageReport,
    run_stage,
    side_paths,
    stage_meta,
)
from deepvision.errors import ConfigError, EndpointError, UsageError
from deepvision.llm import check_endpoint


@dataclass
class StageSpec:
    """One entry of `stages:`: a stage of the registry, the model it asks (a name under
    `models:`) and its settings (the keyword arguments of the stage, checked against them).
    In the YAML the settings sit beside `stage:`; a bare name is a stage with its defaults."""

    stage: str
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: Any, loader: ConfigLoader, key: str) -> StageSpec:
        if isinstance(raw, str):
            raw = {"stage": raw}
        if not isinstance(raw, dict):
            raise loader.error(f"expected a stage name or a mapping, got {raw!r}", key)
        name = raw.get("stage")
        if name not in STAGES:
            choices = ", ".join(STAGE_NAMES)
            raise loader.error(f"expected one of {choices}, got {name!r}", join_key(key, "stage"))
        stage = STAGES[name]
        model = loader.build(str | None, raw.get("model"), join_key(key, "model"))
        if model is not None and stage.uses_model is None:
            raise loader.error(f"stage {name} asks no model", join_key(key, "model"))
        if model is None and stage.uses_model == "required":
            raise loader.error(
                f"stage {name} needs a model: the name of one under `models`",
                join_key(key, "model"),
            )
        given = {k: v for k, v in raw.items() if k not in ("stage", "model")}
        checked = loader.dataclass(stage.options(), given, key)
        return cls(name, model, {k: getattr(checked, k) for k in given})


@dataclass
class PipelineConfig(Config):
    """A `curate run` config (see the module docstring); `load` reads one from YAML, with
    paths relative to the YAML's folder."""

    input: list[Path]
    stages: list[StageSpec]
    workdir: Path = Path("curate-out")
    output: Path | None = None
    engine: Literal["local", "ray"] = "local"
    chunk_size: int = bounded(DEFAULT_CHUNK_SIZE, ge=1)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    source: Path | None = field(default=None, metadata=INTERNAL)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.input:
            raise ConfigError("at least one input is needed", key="input")
        if not self.stages:
            raise ConfigError("at least one stage is needed", key="stages")
        for k, spec in enumerate(self.stages):
            if spec.model is not None and spec.model not in self.models:
                raise ConfigError(
                    f"unknown model {spec.model!r}; models: {sorted(self.models)}",
                    key=f"stages[{k}].model",
                )

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        path = Path(path)
        raw = read_yaml(path)
        if isinstance(raw, dict):
            raw = {"workdir": "curate-out", **raw}
            if isinstance(raw.get("models"), dict):
                raw["models"] = {k: _endpoint_alias(v) for k, v in raw["models"].items()}
        cfg = from_dict(cls, raw, file=path, base=path.parent)
        cfg.source = path
        return cfg


def _endpoint_alias(spec: Any) -> Any:
    """`endpoint:` is accepted for `endpoints:` (one URL or a list)."""
    if isinstance(spec, dict) and "endpoint" in spec and "endpoints" not in spec:
        spec = dict(spec)
        spec["endpoints"] = spec.pop("endpoint")
    return spec


def build_stage(
    spec: StageSpec,
    models: dict[str, ModelConfig],
    references: References | None,
    *,
    key: str = "",
    file: str | Path | None = None,
) -> Stage:
    """The stage `spec` describes; its own checks' errors are ConfigErrors at `key` (the
    spec's place in the config, e.g. `stages[3]`) of `file`."""
    stage = STAGES[spec.stage]
    model = models[spec.model] if spec.model else None
    build = partial(stage.from_pipeline, model, references)
    return ConfigLoader(file).construct(build, spec.options, key)


def _model_users(cfg: PipelineConfig) -> dict[str, str]:
    """Each model the stages ask -> the first stage asking it, as errors name it."""
    users: dict[str, str] = {}
    for k, spec in enumerate(cfg.stages, start=1):
        if spec.model is not None:
            users.setdefault(spec.model, f"stage {k} ({spec.stage}) asks model {spec.model}")
    return users


async def _check_all(models: list[ModelConfig]) -> list[BaseException | None]:
    """Check every model's endpoints at once (each bounded by check_endpoint's time limit)."""

    async def one(model: ModelConfig) -> None:
        await check_endpoint(model.endpoint())  # reading the key is part of the check

    return await asyncio.gather(*(one(m) for m in models), return_exceptions=True)


def check_models(cfg: PipelineConfig) -> None:
    """Every model the stages will ask: its API key is set, its endpoints answer, accept the
    key and serve it. The first fault raises, its message naming the first stage that asks
    that model: a ConfigError at `models.<name>.<setting>` for a missing or refused key or a
    model not served, an EndpointError for an endpoint that does not answer."""
    users = _model_users(cfg)
    found = asyncio.run(_check_all([cfg.models[name] for name in users]))
    for (name, who), exc in zip(users.items(), found, strict=True):
        if isinstance(exc, UsageError):
            key = f"models.{name}.{exc.param}" if exc.param else f"models.{name}"
            file = str(cfg.source) if cfg.source else None
            raise ConfigError(f"{who}: {exc.reason}", key=key, file=file) from None
        if isinstance(exc, EndpointError):
            raise EndpointError(f"{who}: {exc.reason}", retryable=exc.retryable) from None
        if exc is not None:
            raise exc


def run_pipeline(
    cfg: PipelineConfig,
    *,
    references: References | None = None,
    overwrite: bool = False,
    on_stage: Callable[[StageReport], None] | None = None,
) -> dict[str, Any]:
    """Run every stage in order; returns the funnel (also written to the workdir). Every
    stage is built (its settings checked, its files read) and every model it will ask is
    checked (`check_models`) before the first one runs."""
    stages = [
        build_stage(spec, cfg.models, references, key=f"stages[{k}]", file=cfg.source)
        for k, spec in enumerate(cfg.stages)
    ]
    check_models(cfg)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    current = list(cfg.input)
    reports: list[StageReport] = []
    for k, (spec, stage) in enumerate(zip(cfg.stages, stages, strict=True), start=1):
        out = cfg.workdir / f"{k:02d}-{spec.stage}.parquet"
        rep_path = side_paths(out)["report"]
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

    return write_funnel(cfg.input, final, reports, cfg.workdir)
