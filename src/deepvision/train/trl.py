"""Drive TRL's GRPOTrainer from a recipe: GSPO (sequence-level importance ratios) on a
vision-language model, our exported TRL parquet, our reward callables, optional vLLM and LoRA.

Dynamic sampling is the one reference setting TRL 1.16 cannot express: it has no hook to drop a
group and refill the batch. Groups whose rewards are all equal get advantage 0 (so no policy
gradient), TRL logs their share as `frac_reward_zero_std`, but they still take batch slots.
The learning rate stays constant, as in the release and verl (TRL's default decays it to 0).
Multi-GPU full fine-tuning of a 7-8B model needs its weights sharded: `accelerate_config` writes
an FSDP or DeepSpeed ZeRO-3 config for `accelerate launch`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from deepvision.errors import ConfigError, DataError
from deepvision.train.recipe import Recipe

log = logging.getLogger(__name__)

# verl's loss aggregation modes and the TRL loss_type that aggregates the same way.
LOSS_TYPES = {
    "seq-mean-token-mean": "grpo",  # mean over each sequence's tokens, then over sequences
    "token-mean": "dapo",  # mean over all tokens of the batch
    "seq-mean-token-sum-norm": "dr_grpo",  # token sums over a constant length
}


def grpo_config_kwargs(recipe: Recipe, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Keyword arguments of `trl.GRPOConfig` equivalent to the recipe."""
    r, t, alg = recipe, recipe.trl, recipe.algorithm
    source = str(recipe.source) if recipe.source else None
    _check_generation(recipe)
    loss_type = LOSS_TYPES.get(alg.loss_agg_mode)
    if loss_type is None:
        raise ConfigError(
            f"{alg.loss_agg_mode!r} has no TRL equivalent (use one of {', '.join(LOSS_TYPES)})",
            key="algorithm.loss_agg_mode",
            file=source,
        )
    if alg.kl_loss_coef and alg.kl_loss_type != "low_var_kl":
        raise ConfigError(
            "TRL's KL term is the low-variance (k3) estimator: use low_var_kl",
            key="algorithm.kl_loss_type",
            file=source,
        )
    # Per process; accelerate multiplies by the number of processes, which keeps the multiple.
    gen_batch = t.per_device_train_batch_size * t.steps_per_generation
    if gen_batch % r.rollout.n:
        raise ConfigError(
            f"x trl.steps_per_generation = {gen_batch} completions is not a multiple of "
            f"rollout.n={r.rollout.n}",
            key="trl.per_device_train_batch_size",
            file=source,
        )
    report = [x for x in r.logger if x != "console"] or ["none"]
    kw: dict[str, Any] = dict(
        output_dir=str(output_dir or r.checkpoint.dir),
        learning_rate=alg.lr,
        # verl and the release keep the learning rate constant, without warmup.
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_steps=alg.total_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        steps_per_generation=t.steps_per_generation,
        num_generations=r.rollout.n,
        temperature=r.rollout.temperature,
        top_p=r.rollout.top_p,
        max_completion_length=r.data.max_response_length,
        importance_sampling_level="sequence" if alg.loss == "gspo" else "token",
        loss_type=loss_type,
        epsilon=alg.clip_ratio_low,
        epsilon_high=alg.clip_ratio_high,
        beta=alg.kl_loss_coef,
        scale_rewards="group",  # GRPO advantages: (r - group mean) / group std
        logging_steps=t.logging_steps,
        save_steps=max(r.checkpoint.save_freq, 1)
        if r.checkpoint.save_freq > 0
        else alg.total_steps,
        save_strategy="steps" if r.checkpoint.save_freq > 0 else "no",
        report_to=report,
        run_name=r.name,
        use_cpu=t.use_cpu,
        bf16=t.bf16 and not t.use_cpu,
        seed=t.seed,
        gradient_checkpointing=r.model.gradient_checkpointing and not t.use_cpu,
        use_vllm=t.use_vllm,
    )
    if t.use_vllm:
        kw["vllm_mode"] = t.vllm_mode
        # Room for the longest prompt and response (otherwise taken from the model's config).
        kw["vllm_max_model_length"] = r.data.max_prompt_length + r.data.max_response_length
        if t.vllm_mode == "colocate":
            # None keeps TRL's own 0.3: its colocated vLLM stays resident next to training.
            if r.rollout.gpu_memory_utilization is not None:
                kw["vllm_gpu_memory_utilization"] = r.rollout.gpu_memory_utilization
            kw["vllm_tensor_parallel_size"] = r.rollout.tensor_parallel_size or 1
        elif t.vllm_server_url:
            kw["vllm_server_base_url"] = t.vllm_server_url
    if r.reward.format_weight:
        kw["reward_weights"] = [1.0, r.reward.format_weight]
    return kw


def _check_generation(recipe: Recipe) -> None:
    """ConfigError naming the key when the recipe asks TRL to generate in a way it cannot."""
    engine, source = recipe.rollout.engine, str(recipe.source) if recipe.source else None
    if engine not in ("hf", "vllm"):
        raise ConfigError(
            f"TRL generates with transformers (hf) or vLLM, not {engine!r}",
            key="rollout.engine",
            file=source,
        )
    if engine == "hf" and recipe.trl.use_vllm:
        raise ConfigError(
            "rollout.engine hf (transformers generation) contradicts trl.use_vllm: true",
            key="trl.use_vllm",
            file=source,
        )


@dataclass(frozen=True)
class SampleBudget:
    """Trained samples (completions) of a TRL run against the verl recipe's, per optimizer
    update and in all, so the scale of a TRL run is plain before it starts."""

    processes: int
    per_update: int
    updates: int
    reference_per_update: int
    reference_updates: int

    @property
    def total(self) -> int:
        return self.per_update * self.updates

    @property
    def reference_total(self) -> int:
        return self.reference_per_update * self.reference_updates

    def text(self) -> str:
        return (
            f"TRL on {self.processes} process(es): {self.per_update:,} samples per optimizer "
            f"update x {self.updates:,} updates = {self.total:,} samples; the verl recipe: "
            f"{self.reference_per_update:,} x {self.reference_updates:,} = "
            f"{self.reference_total:,} ({self.reference_total / self.total:.1f}x as many)"
        )


def sample_budget(recipe: Recipe, processes: int) -> SampleBudget:
    """TRL: each update takes per-device batch x accumulation x processes completions, each
    trained once, for `algorithm.total_steps` updates. verl: each step trains
    `train_batch_size` groups of `rollout.n` in updates of `mini_batch_size` groups."""
    t, b, n = recipe.trl, recipe.batch, recipe.rollout.n
    return SampleBudget(
        processes=processes,
        per_update=t.per_device_train_batch_size * t.gradient_accumulation_steps * processes,
        updates=recipe.algorithm.total_steps,
        reference_per_update=b.mini_batch_size * n,
        reference_updates=recipe.algorithm.total_steps * (b.train_batch_size // b.mini_batch_size),
    )


def load_trl_dataset(files: list[str]) -> Any:
    """Our `data export --to trl` parquet as a datasets.Dataset with decoded (PIL) images."""
    import datasets

    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise ConfigError(
            f"file {missing[0]} not found; write it with `deepvision data export --to trl`",
            key="data.train_files",
        )
    ds = datasets.Dataset.from_parquet([str(f) for f in files])
    if "images" in ds.column_names and not isinstance(
        ds.features["images"], datasets.Sequence | list
    ):
        raise DataError("not a list of images", file=str(files[0]), column="images")
    feat = ds.features.get("images")
    inner = getattr(feat, "feature", feat[0] if isinstance(feat, list) else None)
    if not isinstance(inner, datasets.Image):
        ds = ds.cast_column("images", datasets.Sequence(datasets.Image()))
    return ds


def reward_functions(recipe: Recipe) -> list[Any]:
    from deepvision.verify.rewards import accuracy_reward, format_reward

    return [accuracy_reward, format_reward] if recipe.reward.format_weight else [accuracy_reward]


@dataclass
class TrlRun:
    trainer: Any
    output_dir: Path


def build_trl_trainer(
    recipe: Recipe,
    output_dir: str | Path | None = None,
    callbacks: list[Any] | None = None,
    train_dataset: Any = None,
    config_overrides: dict[str, Any] | None = None,
) -> TrlRun:
    """A ready GRPOTrainer (GSPO settings) on the recipe's model, data and our rewards."""
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    kw = grpo_config_kwargs(recipe, output_dir)
    kw.update(config_overrides or {})
    args = GRPOConfig(**kw)
    if train_dataset is None:
        train_dataset = load_trl_dataset(recipe.data.train_files)
    model_path = recipe.model.path
    try:
        processor = AutoProcessor.from_pretrained(
            model_path, trust_remote_code=recipe.model.trust_remote_code, padding_side="left"
        )
        model = AutoModelForImageTextToText.from_pretrained(
            model_path, trust_remote_code=recipe.model.trust_remote_code, dtype="auto"
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot load {model_path!r}: {exc}",
            key="model.path",
            file=str(recipe.source) if recipe.source else None,
        ) from None
    peft_config = None
    if recipe.lora.rank:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=recipe.lora.rank,
            lora_alpha=recipe.lora.alpha,
            target_modules=recipe.lora.target_modules,
            task_type="CAUSAL_LM",
        )
    trainer = GRPOTrainer(
        model=model,
        processing_class=processor,
        reward_funcs=reward_functions(recipe),
        args=args,
        train_dataset=train_dataset,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    return TrlRun(trainer=trainer, output_dir=Path(args.output_dir))


def run_trl(
    recipe: Recipe,
    output_dir: str | Path | None = None,
    config_overrides: dict[str, Any] | None = None,
) -> TrlRun:
    """Train, save the final model (or adapter) and processor in `.output_dir`; the trainer's
    `state.log_history` holds the per-step figures (reward, loss, ...). `config_overrides`:
    GRPOConfig arguments the recipe does not set (e.g. `generation_kwargs`)."""
    run = build_trl_trainer(recipe, output_dir, config_overrides=config_overrides)
    run.trainer.train()
    run.trainer.save_model(str(run.output_dir))
    return run


ShardingKind = Literal["fsdp", "zero3"]
SHARDING_KINDS: tuple[ShardingKind, ...] = ("fsdp", "zero3")


def accelerate_config(kind: ShardingKind, num_processes: int) -> dict[str, Any]:
    """An `accelerate launch --config_file` config for full fine-tuning on one node: FSDP2
    (weights, gradients and optimizer state sharded, transformer blocks wrapped; torch only) or
    DeepSpeed ZeRO-3 (needs deepspeed). Both as TRL's own example configs, bf16, full weights
    gathered when the model is saved."""
    common: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "downcast_bf16": "no",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": "bf16",
        "num_machines": 1,
        "num_processes": num_processes,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
    }
    if kind == "fsdp":
        return {
            **common,
            "distributed_type": "FSDP",
            "fsdp_config": {
                "fsdp_version": 2,
                "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                "fsdp_cpu_ram_efficient_loading": True,
                "fsdp_offload_params": False,
                "fsdp_reshard_after_forward": True,
                "fsdp_state_dict_type": "FULL_STATE_DICT",
                "fsdp_activation_checkpointing": False,
            },
        }
    return {
        **common,
        "distributed_type": "DEEPSPEED",
        "deepspeed_config": {
            "deepspeed_multinode_launcher": "standard",
            "offload_optimizer_device": "none",
            "offload_param_device": "none",
            "zero3_init_flag": True,
            "zero3_save_16bit_model": True,
            "zero_stage": 3,
        },
    }


def write_accelerate_config(path: str | Path, kind: ShardingKind, num_processes: int) -> Path:
    """Write `accelerate_config(kind, num_processes)` as YAML to `path`."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(accelerate_config(kind, num_processes), sort_keys=False), encoding="utf-8"
    )
    return path


def accelerate_command(
    recipe_path: str | Path, num_processes: int, config_file: str | Path | None = None
) -> list[str]:
    """The multi-GPU launch: one process per GPU through accelerate (sharded with
    `config_file`, see `accelerate_config`; plain data parallel without)."""
    config = ["--config_file", str(config_file)] if config_file else []
    launch = ["accelerate", "launch", *config, "--num_processes", str(num_processes)]
    return [*launch, "-m", "deepvision.cli.main", "train", "trl", str(recipe_path)]
