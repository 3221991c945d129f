"""GSPO training recipes: one validated YAML file that both engines (verl, TRL) are driven from.

The defaults are the DeepVision-103K reference run (GSPO loss with GRPO advantages, clip ratios
3e-4 / 4e-4, `seq-mean-token-mean`, low-var KL loss 1e-3, lr 1e-6, 16 rollouts at temperature
1.0, 2K prompt / 16K response tokens, dynamic sampling on `acc`, 200 steps, vLLM, 32 GPUs).
Unknown keys, wrong types and out-of-range values are refused with the key path named.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deepvision.errors import UsageError

LOGGERS = ("console", "tensorboard", "wandb", "swanlab")


class RecipeError(UsageError):
    """A recipe file is unreadable, has an unknown key or a value out of range."""


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


@dataclass
class ModelConfig:
    path: str = "Qwen/Qwen3-VL-8B-Instruct"
    trust_remote_code: bool = False
    gradient_checkpointing: bool = True


@dataclass
class DataConfig:
    train_files: list[str] = field(default_factory=lambda: ["data/verl/train.parquet"])
    val_files: list[str] = field(default_factory=list)
    max_prompt_length: int = field(default=2048, metadata=_range(1))
    max_response_length: int = field(default=16384, metadata=_range(1))
    filter_overlong_prompts: bool = True


@dataclass
class DynamicSamplingConfig:
    """Drop groups whose rollouts all score the same (no learning signal), refill from new ones."""

    enable: bool = True
    metric: str = "acc"
    max_num_gen_batches: int = field(default=10, metadata=_range(0))


@dataclass
class AlgorithmConfig:
    loss: Literal["gspo", "grpo"] = "gspo"
    advantage: Literal["grpo"] = "grpo"
    lr: float = field(default=1e-6, metadata=_range(0.0, 1.0, lo_open=True))
    clip_ratio_low: float = field(default=3e-4, metadata=_range(0.0, 1.0, lo_open=True))
    clip_ratio_high: float = field(default=4e-4, metadata=_range(0.0, 1.0, lo_open=True))
    loss_agg_mode: Literal[
        "token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"
    ] = "seq-mean-token-mean"
    kl_loss_coef: float = field(default=1e-3, metadata=_range(0.0))
    kl_loss_type: Literal["low_var_kl", "kl", "abs", "mse", "full"] = "low_var_kl"
    entropy_coeff: float = field(default=0.0, metadata=_range(0.0))
    total_steps: int = field(default=200, metadata=_range(1))
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)


@dataclass
class BatchConfig:
    """Gen / train / mini batch sizes count prompts; the micro batch per GPU counts samples."""

    gen_batch_size: int = field(default=512, metadata=_range(1))
    train_batch_size: int = field(default=256, metadata=_range(1))
    mini_batch_size: int = field(default=64, metadata=_range(1))
    micro_batch_size_per_gpu: int = field(default=1, metadata=_range(1))
    dynamic_batch: bool = True
    max_token_len_per_gpu: int = field(default=24576, metadata=_range(1))


@dataclass
class RolloutConfig:
    engine: Literal["vllm", "sglang", "hf"] = "vllm"
    n: int = field(default=16, metadata=_range(2))
    temperature: float = field(default=1.0, metadata=_range(0.0, 2.0, lo_open=True))
    top_p: float = field(default=1.0, metadata=_range(0.0, 1.0, lo_open=True))
    tensor_parallel_size: int | None = field(default=None, metadata=_range(1))
    gpu_memory_utilization: float = field(default=0.6, metadata=_range(0.05, 0.98))


@dataclass
class RewardConfig:
    function: Literal["compute_score", "compute_score_batch"] = "compute_score"
    manager: Literal["naive", "dapo"] = "naive"
    format_weight: float = field(default=0.0, metadata=_range(0.0, 1.0))
    num_workers: int = field(default=8, metadata=_range(1))


@dataclass
class CheckpointConfig:
    dir: str = "checkpoints/deepvision-gspo"
    save_freq: int = field(default=20, metadata=_range(-1))
    test_freq: int = field(default=10, metadata=_range(-1))
    val_before_train: bool = False


@dataclass
class HardwareConfig:
    """`gpus` picks a preset (8, 16, 32, 64); the other fields override the preset's choices."""

    gpus: Literal[8, 16, 32, 64] = 32
    gpus_per_node: int | None = field(default=None, metadata=_range(1))
    rollout_tensor_parallel: int | None = field(default=None, metadata=_range(1))
    param_offload: bool | None = None
    optimizer_offload: bool | None = None


@dataclass
class LoraConfig:
    rank: int = field(default=0, metadata=_range(0))
    alpha: int = field(default=32, metadata=_range(1))
    target_modules: str = "all-linear"


@dataclass
class TrlConfig:
    """TRL-only settings (GRPOTrainer); verl ignores this block."""

    per_device_train_batch_size: int = field(default=16, metadata=_range(1))
    gradient_accumulation_steps: int = field(default=1, metadata=_range(1))
    steps_per_generation: int = field(default=4, metadata=_range(1))
    use_vllm: bool = False
    vllm_mode: Literal["server", "colocate"] = "colocate"
    vllm_server_url: str | None = None
    use_cpu: bool = False
    bf16: bool = True
    seed: int = 0
    logging_steps: int = field(default=1, metadata=_range(1))


@dataclass
class Recipe:
    name: str = "deepvision-gspo"
    project: str = "deepvision"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    logger: list[str] = field(default_factory=lambda: ["console", "tensorboard"])
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    trl: TrlConfig = field(default_factory=TrlConfig)
    # Extra verl overrides passed verbatim (`key: value`), for settings this format lacks.
    verl_overrides: dict[str, Any] = field(default_factory=dict)
    source: Path | None = field(default=None, metadata={"internal": True})

    @property
    def preset(self) -> HardwarePreset:
        return resolve_hardware(self.hardware)


@dataclass(frozen=True)
class HardwarePreset:
    nnodes: int
    gpus_per_node: int
    rollout_tensor_parallel: int
    param_offload: bool
    optimizer_offload: bool

    @property
    def world_size(self) -> int:
        return self.nnodes * self.gpus_per_node


# Presets assume 8 x 80 GB GPUs per node and a 7-8B VLM with 16K-token responses: fewer GPUs
# need FSDP offload to fit actor + optimizer next to vLLM; rollout TP 2 keeps KV cache room.
PRESETS: dict[int, HardwarePreset] = {
    8: HardwarePreset(1, 8, 2, True, True),
    16: HardwarePreset(2, 8, 2, True, False),
    32: HardwarePreset(4, 8, 2, False, False),
    64: HardwarePreset(8, 8, 2, False, False),
}


def resolve_hardware(hw: HardwareConfig) -> HardwarePreset:
    base = PRESETS[hw.gpus]
    per_node = hw.gpus_per_node or base.gpus_per_node
    if hw.gpus % per_node:
        raise RecipeError(f"hardware.gpus_per_node={per_node} does not divide gpus={hw.gpus}")
    return HardwarePreset(
        nnodes=hw.gpus // per_node,
        gpus_per_node=per_node,
        rollout_tensor_parallel=hw.rollout_tensor_parallel or base.rollout_tensor_parallel,
        param_offload=base.param_offload if hw.param_offload is None else hw.param_offload,
        optimizer_offload=(
            base.optimizer_offload if hw.optimizer_offload is None else hw.optimizer_offload
        ),
    )


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) is not bool:
            return value
        raise RecipeError(f"{where}: expected one of {_type_name(tp)}, got {value!r}")
    if origin is list:
        if isinstance(value, str):  # a single path or name stands for a list of one
            value = [value]
        if not isinstance(value, list):
            raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-6` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    raise RecipeError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise RecipeError(
            f"unknown key {prefix}{unknown[0]} (known here: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        v = _coerce(value, hints[name], key)
        meta = fields[name].metadata
        if v is not None and "lo" in meta:
            lo, hi = meta["lo"], meta["hi"]
            bad_lo = lo is not None and (v <= lo if meta["lo_open"] else v < lo)
            if bad_lo or (hi is not None and v > hi):
                left = "(" if meta["lo_open"] else "["
                rng = (
                    f"{left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                )
                raise RecipeError(f"{key}={v!r} is out of range {rng}")
        kwargs[name] = v
    return cls(**kwargs)


def _check(r: Recipe) -> None:
    bad = [x for x in r.logger if x not in LOGGERS]
    if bad:
        raise RecipeError(f"logger: unknown backend {bad[0]!r} (choose from {', '.join(LOGGERS)})")
    b = r.batch
    if b.train_batch_size > b.gen_batch_size:
        raise RecipeError(
            f"batch.train_batch_size={b.train_batch_size} exceeds "
            f"batch.gen_batch_size={b.gen_batch_size}"
        )
    if b.mini_batch_size > b.train_batch_size or b.train_batch_size % b.mini_batch_size:
        raise RecipeError(
            f"batch.mini_batch_size={b.mini_batch_size} must divide "
            f"batch.train_batch_size={b.train_batch_size}"
        )
    if r.algorithm.clip_ratio_high < r.algorithm.clip_ratio_low:
        raise RecipeError("algorithm.clip_ratio_high must be >= algorithm.clip_ratio_low")
    hw = resolve_hardware(r.hardware)
    if (b.mini_batch_size * r.rollout.n) % hw.world_size:
        raise RecipeError(
            f"batch.mini_batch_size x rollout.n = {b.mini_batch_size * r.rollout.n} samples "
            f"do not split evenly over {hw.world_size} GPUs"
        )
    if hw.gpus_per_node % hw.rollout_tensor_parallel:
        raise RecipeError(
            f"hardware.rollout_tensor_parallel={hw.rollout_tensor_parallel} must divide "
            f"gpus_per_node={hw.gpus_per_node}"
        )
    if not r.data.train_files:
        raise RecipeError("data.train_files: at least one parquet file is needed")


def recipe_from_dict(raw: dict[str, Any], source: Path | None = None) -> Recipe:
    """Validate a parsed recipe mapping; errors name the key path."""
    recipe = _build(Recipe, raw, "")
    _check(recipe)
    recipe.source = source
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a YAML recipe; relative data paths stay relative to the working dir."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    try:
        return recipe_from_dict(raw or {}, source=path)
    except RecipeError as exc:
        raise RecipeError(f"{path}: {exc}") from None


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    d = dataclasses.asdict(recipe)
    d.pop("source", None)
    return d


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML, every setting spelled out (what `train init` writes)."""
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)
