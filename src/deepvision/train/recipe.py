"""GSPO training recipes: one validated YAML file that both engines (verl, TRL) are driven from.

The defaults are the DeepVision-103K reference run (GSPO loss with GRPO advantages, clip ratios
3e-4 / 4e-4, `seq-mean-token-mean`, low-var KL loss 1e-3, lr 1e-6, 16 rollouts at temperature
1.0, 2K prompt / 16K response tokens, dynamic sampling on `acc`, 200 steps, vLLM, 32 GPUs), and
every other value either is the release's launch template's (`train_*_node_template.sh`) or says
here why not. Each block is a `deepvision.configs` dataclass: unknown keys, wrong types and
out-of-range values raise `ConfigError` naming the key path (`algorithm.lr`) and the file; keys
that older recipes carried but the engines no longer honour are refused with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deepvision.configs import INTERNAL, Config, bounded, from_dict, read_yaml
from deepvision.errors import ConfigError

LOGGERS = ("console", "tensorboard", "wandb", "swanlab")
# Keys older recipes carried that no engine honours now, with what to do instead.
RETIRED_KEYS = {
    "algorithm.dynamic_sampling.max_num_gen_batches": (
        "verl 0.9.1's V1 trainer ignores it (it refills until the batch is full, with no cap on "
        "rounds); remove it: batch.gen_batch_size / batch.train_batch_size bounds the prompts "
        "generating at once (docs/training.md, dynamic sampling)"
    ),
}


@dataclass
class ModelConfig(Config):
    path: str = "Qwen/Qwen3-VL-8B-Instruct"
    trust_remote_code: bool = False
    gradient_checkpointing: bool = True


@dataclass
class DataConfig(Config):
    """`val_files` is required by verl (its trainer builds the validation set at start even when
    it never validates); `val_max_samples` rows of it are used (None: all), so a large file
    cannot make every validation decode it whole. `seed` fixes the shuffle of the training data
    and which validation rows are drawn (verl's null draws anew each run)."""

    train_files: list[str] = field(default_factory=lambda: ["data/verl/train.parquet"])
    val_files: list[str] = field(default_factory=list)
    val_max_samples: int | None = bounded(512, ge=1)
    val_batch_size: int | None = bounded(None, ge=1)
    max_prompt_length: int = bounded(2048, ge=1)
    max_response_length: int = bounded(16384, ge=1)
    filter_overlong_prompts: bool = True
    # The release's 128 (verl caps it at the node's CPU count); verl's default of 1 worker
    # filters about 14 rows/s with a Qwen-VL processor: two hours for DeepVision-103K.
    filter_overlong_prompts_workers: int = bounded(128, ge=1)
    seed: int = 0


@dataclass
class DynamicSamplingConfig(Config):
    """Drop groups whose rollouts all score the same on `metric` (no learning signal) and
    refill from new prompts until `batch.train_batch_size` groups with signal are kept."""

    enable: bool = True
    # Our compute_score's numeric keys, or verl's "reward" (the score summed into rm_scores).
    metric: Literal["acc", "score", "reward"] = "acc"


@dataclass
class AlgorithmConfig(Config):
    loss: Literal["gspo", "grpo"] = "gspo"
    advantage: Literal["grpo"] = "grpo"
    lr: float = bounded(1e-6, gt=0.0, le=1.0)
    clip_ratio_low: float = bounded(3e-4, gt=0.0, le=1.0)
    clip_ratio_high: float = bounded(4e-4, gt=0.0, le=1.0)
    loss_agg_mode: Literal[
        "token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"
    ] = "seq-mean-token-mean"
    kl_loss_coef: float = bounded(1e-3, ge=0.0)
    kl_loss_type: Literal["low_var_kl", "kl", "abs", "mse", "full"] = "low_var_kl"
    entropy_coeff: float = bounded(0.0, ge=0.0)
    total_steps: int = bounded(200, ge=1)
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)


@dataclass
class BatchConfig(Config):
    """Gen / train / mini batch sizes count prompts; the micro batch per GPU counts samples.

    `gen_batch_size` is the release's prompts per generation round; verl 0.9.1 generates in
    single prompts and bounds the prompts in flight in whole train batches, so with dynamic
    sampling it must be a multiple of `train_batch_size` (512 / 256: at most 512 in flight).
    `max_token_len_per_gpu` None is the release's 2 x (prompt + response) tokens per GPU for
    the actor update and 3 x for the log-prob passes."""

    gen_batch_size: int = bounded(512, ge=1)
    train_batch_size: int = bounded(256, ge=1)
    mini_batch_size: int = bounded(64, ge=1)
    micro_batch_size_per_gpu: int = bounded(1, ge=1)
    dynamic_batch: bool = True
    max_token_len_per_gpu: int | None = bounded(None, ge=1)


@dataclass
class RolloutConfig(Config):
    """`engine`: verl rolls out with vllm, sglang or trtllm; `hf` (transformers generation) is
    TRL's only. `tensor_parallel_size` and `gpu_memory_utilization` None take the hardware
    preset's (verl) or TRL's own default (its colocated vLLM stays resident next to training)."""

    engine: Literal["vllm", "sglang", "trtllm", "hf"] = "vllm"
    n: int = bounded(16, ge=2)
    temperature: float = bounded(1.0, gt=0.0, le=2.0)
    top_p: float = bounded(1.0, gt=0.0, le=1.0)
    tensor_parallel_size: int | None = bounded(None, ge=1)
    gpu_memory_utilization: float | None = bounded(None, ge=0.05, le=0.98)


@dataclass
class RewardConfig(Config):
    """`function` is the reward verl calls once per sample; `manager` the verl reward loop
    manager around it (dapo without its overlong buffer scores as naive does)."""

    function: str = "compute_score"
    manager: Literal["naive", "dapo"] = "naive"
    format_weight: float = bounded(0.0, ge=0.0, le=1.0)
    num_workers: int = bounded(8, ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.function != "compute_score":
            raise ConfigError(
                f"{self.function!r} cannot run: verl 0.9.1's reward loop calls the reward once per "
                "sample and has no `batch` manager; use compute_score",
                key="function",
            )


@dataclass
class CheckpointConfig(Config):
    """Checkpoints as the release keeps them: Hugging Face weights every 10 steps, all kept.
    Those cannot resume a run, so a restart begins at step 0; `resumable` adds verl's sharded
    model, optimizer and data-loader state (about 7x the size with fp32 FSDP weights and
    Adam: a restart resumes). `keep` bounds
    how many are kept (None: all). `test_freq` None is the preset's (the release: -1 on one
    node, 20 on several)."""

    dir: str = "checkpoints/deepvision-gspo"
    save_freq: int = bounded(10, ge=-1)
    test_freq: int | None = bounded(None, ge=-1)
    val_before_train: bool = False
    resumable: bool = False
    keep: int | None = bounded(None, ge=1)


@dataclass
class HardwareConfig(Config):
    """`gpus` picks a preset (8, 16, 32, 64); the other fields override the preset's choices."""

    gpus: Literal[8, 16, 32, 64] = 32
    gpus_per_node: int | None = bounded(None, ge=1)
    rollout_tensor_parallel: int | None = bounded(None, ge=1)
    param_offload: bool | None = None
    optimizer_offload: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gpus not in PRESETS or isinstance(self.gpus, bool):
            choices = " | ".join(str(g) for g in PRESETS)
            raise ConfigError(f"expected one of {choices}, got {self.gpus!r}", key="gpus")
        hw = resolve_hardware(self)
        if self.gpus % hw.gpus_per_node:
            raise ConfigError(
                f"{hw.gpus_per_node} does not divide gpus={self.gpus}", key="gpus_per_node"
            )
        if hw.gpus_per_node % hw.rollout_tensor_parallel:
            raise ConfigError(
                f"{hw.rollout_tensor_parallel} must divide gpus_per_node={hw.gpus_per_node}",
                key="rollout_tensor_parallel",
            )


@dataclass
class LoraConfig(Config):
    rank: int = bounded(0, ge=0)
    alpha: int = bounded(32, ge=1)
    target_modules: str = "all-linear"


@dataclass
class TrlConfig(Config):
    """TRL-only settings (GRPOTrainer); verl ignores this block."""

    per_device_train_batch_size: int = bounded(16, ge=1)
    gradient_accumulation_steps: int = bounded(1, ge=1)
    steps_per_generation: int = bounded(4, ge=1)
    use_vllm: bool = False
    vllm_mode: Literal["server", "colocate"] = "colocate"
    vllm_server_url: str | None = None
    use_cpu: bool = False
    bf16: bool = True
    seed: int = 0
    logging_steps: int = bounded(1, ge=1)


@dataclass
class Recipe(Config):
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
    source: Path | None = field(default=None, metadata=INTERNAL)

    def __post_init__(self) -> None:
        """The rules across blocks (each block has checked its own values)."""
        super().__post_init__()
        for i, name in enumerate(self.logger):
            if name not in LOGGERS:
                raise ConfigError(
                    f"unknown backend {name!r} (choose from {', '.join(LOGGERS)})",
                    key=f"logger[{i}]",
                )
        b = self.batch
        if b.train_batch_size > b.gen_batch_size:
            raise ConfigError(
                f"{b.train_batch_size} exceeds batch.gen_batch_size={b.gen_batch_size}",
                key="batch.train_batch_size",
            )
        if self.algorithm.dynamic_sampling.enable and b.gen_batch_size % b.train_batch_size:
            raise ConfigError(
                f"{b.gen_batch_size} must be a multiple of batch.train_batch_size="
                f"{b.train_batch_size}: verl 0.9.1 bounds the prompts in flight in whole batches",
                key="batch.gen_batch_size",
            )
        if b.mini_batch_size > b.train_batch_size or b.train_batch_size % b.mini_batch_size:
            raise ConfigError(
                f"{b.mini_batch_size} must divide batch.train_batch_size={b.train_batch_size}",
                key="batch.mini_batch_size",
            )
        a = self.algorithm
        if a.clip_ratio_high < a.clip_ratio_low:
            raise ConfigError(
                f"{a.clip_ratio_high} must be >= algorithm.clip_ratio_low={a.clip_ratio_low}",
                key="algorithm.clip_ratio_high",
            )
        world = self.preset.world_size
        if (b.mini_batch_size * self.rollout.n) % world:
            raise ConfigError(
                f"batch.mini_batch_size x rollout.n = {b.mini_batch_size * self.rollout.n} "
                f"samples do not split evenly over {world} GPUs",
                key="batch.mini_batch_size",
            )
        if not self.data.train_files:
            raise ConfigError("at least one parquet file is needed", key="data.train_files")

    @property
    def preset(self) -> HardwarePreset:
        return resolve_hardware(self.hardware)


@dataclass(frozen=True)
class HardwarePreset:
    """What a GPU count implies for verl: nodes, rollout tensor parallel, actor offload, the
    vLLM memory share and how often to validate."""

    nnodes: int
    gpus_per_node: int
    rollout_tensor_parallel: int
    param_offload: bool
    optimizer_offload: bool
    gpu_memory_utilization: float
    test_freq: int

    @property
    def world_size(self) -> int:
        return self.nnodes * self.gpus_per_node


def _preset(nnodes: int) -> HardwarePreset:
    """The release's template values for `nnodes` nodes of 8 x 80 GB GPUs and a 7-8B VLM.

    Rollout TP 1: an 8B model's bf16 weights take 16 GB of one GPU and leave vLLM room for the
    KV cache. No actor offload on any preset: verl frees vLLM's weights and cache while the actor
    trains (free_cache_engine), so FSDP-sharded actor and optimizer fit even on 8 GPUs (the
    reference model stays offloaded, as in the release). vLLM's memory share 0.8 on one node and
    0.85 on several, and validation never on one node (test_freq -1), every 20 steps on several,
    as the release's single- and multi-node templates set them."""
    one_node = nnodes == 1
    return HardwarePreset(
        nnodes=nnodes,
        gpus_per_node=8,
        rollout_tensor_parallel=1,
        param_offload=False,
        optimizer_offload=False,
        gpu_memory_utilization=0.8 if one_node else 0.85,
        test_freq=-1 if one_node else 20,
    )


PRESETS: dict[int, HardwarePreset] = {gpus: _preset(gpus // 8) for gpus in (8, 16, 32, 64)}


def resolve_hardware(hw: HardwareConfig) -> HardwarePreset:
    """The preset of `hw.gpus` with the fields `hw` sets replaced."""
    base = PRESETS[hw.gpus]
    per_node = hw.gpus_per_node or base.gpus_per_node
    return dataclasses.replace(
        base,
        nnodes=hw.gpus // per_node,
        gpus_per_node=per_node,
        rollout_tensor_parallel=hw.rollout_tensor_parallel or base.rollout_tensor_parallel,
        param_offload=base.param_offload if hw.param_offload is None else hw.param_offload,
        optimizer_offload=(
            base.optimizer_offload if hw.optimizer_offload is None else hw.optimizer_offload
        ),
    )


def refuse_retired_keys(raw: Any, source: Path | None = None) -> None:
    """ConfigError naming the first key of `RETIRED_KEYS` that `raw` sets, with its reason."""
    for dotted, reason in RETIRED_KEYS.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node:
            raise ConfigError(reason, key=dotted, file=str(source) if source else None)


def recipe_from_dict(raw: dict[str, Any], source: Path | None = None) -> Recipe:
    """A recipe from a parsed mapping; errors name the key path (and `source`, if given)."""
    refuse_retired_keys(raw, source)
    recipe = from_dict(Recipe, raw or {}, file=source)
    recipe.source = source
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a YAML recipe; relative data paths stay relative to the working dir."""
    path = Path(path)
    return recipe_from_dict(read_yaml(path), source=path)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    d = dataclasses.asdict(recipe)
    d.pop("source", None)
    return d


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML, every setting spelled out (what `train init` writes)."""
    import yaml

    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)
