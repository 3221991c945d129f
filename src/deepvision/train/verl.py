"""Drive verl 0.9.1 from a recipe: the `main_ppo` Hydra overrides (V1 trainer pinned), the
one-node command, and the Ray cluster commands (head, workers, `ray job submit`) for several
nodes; runs start only after `verl_check.check_verl_start` passed. We never fork verl."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepvision.errors import ConfigError, TrainError
from deepvision.train.recipe import Recipe

# verl imports our reward module by name on every node (same install everywhere), so no file
# path has to exist at the same place on each machine.
REWARD_MODULE = "pkg://deepvision.verify.rewards"
VERL_ENTRY_MODULE = "verl.trainer.main_ppo"
VERL_ENTRY = ["python3", "-m", VERL_ENTRY_MODULE]
# The rollout engines verl 0.9.1 registers (verl.workers.rollout.base._ROLLOUT_REGISTRY).
ROLLOUT_ENGINES = ("vllm", "sglang", "trtllm")
NCCL_TIMEOUT_S = 3600
# What a checkpoint holds: Hugging Face weights only (the release), or also verl's sharded
# model, optimizer and data-loader state, so that a restarted run resumes.
CHECKPOINT_WEIGHTS = ("hf_model",)
CHECKPOINT_RESUMABLE = ("model", "optimizer", "extra", "hf_model")


def _value(v: Any) -> str:
    """A Hydra override value: lists in brackets, booleans lower case, floats round-tripped."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    s = str(v)
    if any(c in s for c in " ,[]{}()=:'\"\\$"):
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return s


def _abs(path: str) -> str:
    return path if "://" in path else str(Path(path).expanduser().resolve())


def check_verl_can_run(recipe: Recipe) -> None:
    """ConfigError naming the key of a recipe value verl 0.9.1 cannot run."""
    source = str(recipe.source) if recipe.source else None
    if recipe.rollout.engine not in ROLLOUT_ENGINES:
        raise ConfigError(
            f"verl 0.9.1 rolls out with {' | '.join(ROLLOUT_ENGINES)}; "
            f"{recipe.rollout.engine!r} is TRL's transformers generation",
            key="rollout.engine",
            file=source,
        )
    if not recipe.data.val_files:
        raise ConfigError(
            "a validation parquet is needed: verl's trainer builds the validation set at start "
            "(the training file would be decoded whole at every validation); write a small one "
            "with `deepvision data split ... --test-size 512` and export it with --to verl",
            key="data.val_files",
            file=source,
        )


def max_inflight_gen_batches(recipe: Recipe) -> int:
    """The release's gen batch in verl 0.9.1's unit: prompts generating at once, counted in
    train batches (512 / 256 -> 2). Without dynamic sampling verl generates one train batch."""
    b = recipe.batch
    return b.gen_batch_size // b.train_batch_size if recipe.algorithm.dynamic_sampling.enable else 1


def _token_budgets(recipe: Recipe) -> tuple[int, int]:
    """Tokens per GPU for the actor update and for the log-prob passes (the release's 2x and 3x
    of prompt + response unless the recipe sets one value for both)."""
    if recipe.batch.max_token_len_per_gpu:
        return recipe.batch.max_token_len_per_gpu, recipe.batch.max_token_len_per_gpu
    sequence = recipe.data.max_prompt_length + recipe.data.max_response_length
    return 2 * sequence, 3 * sequence


def verl_overrides(recipe: Recipe) -> list[str]:
    """The Hydra overrides for `verl.trainer.main_ppo`, in a stable order."""
    check_verl_can_run(recipe)
    r, hw = recipe, recipe.preset
    alg, b, ro, ck = r.algorithm, r.batch, r.rollout, r.checkpoint
    ds = alg.dynamic_sampling
    actor = "actor_rollout_ref.actor"
    rollout = "actor_rollout_ref.rollout"
    update_tokens, log_prob_tokens = _token_budgets(r)
    o: dict[str, Any] = {
        # The V1 trainer (verl's default, pinned): the only one with dynamic sampling.
        "trainer.use_v1": True,
        "trainer.v1.trainer_mode": "sync",
        "algorithm.adv_estimator": alg.advantage,
        "algorithm.use_kl_in_reward": False,
        "algorithm.filter_groups.enable": ds.enable,
        "algorithm.filter_groups.metric": ds.metric,
        "algorithm.filter_groups.max_inflight_gen_batches": max_inflight_gen_batches(r),
        "data.train_files": [_abs(p) for p in r.data.train_files],
        "data.val_files": [_abs(p) for p in r.data.val_files],
        "data.val_max_samples": r.data.val_max_samples or -1,
        "data.val_batch_size": r.data.val_batch_size,
        "data.seed": r.data.seed,
        "data.prompt_key": "prompt",
        "data.image_key": "images",
        "data.reward_fn_key": "data_source",
        "data.max_prompt_length": r.data.max_prompt_length,
        "data.max_response_length": r.data.max_response_length,
        "data.filter_overlong_prompts": r.data.filter_overlong_prompts,
        "data.filter_overlong_prompts_workers": r.data.filter_overlong_prompts_workers,
        "data.truncation": "error",
        "data.train_batch_size": b.train_batch_size,
        "actor_rollout_ref.model.path": r.model.path,
        "actor_rollout_ref.model.trust_remote_code": r.model.trust_remote_code,
        "actor_rollout_ref.model.enable_gradient_checkpointing": r.model.gradient_checkpointing,
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.model.lora_rank": r.lora.rank,
        "actor_rollout_ref.model.lora_alpha": r.lora.alpha,
        "actor_rollout_ref.model.target_modules": r.lora.target_modules,
        # The release's 3600 s: verl's 600 s can expire while 8B weights sync across nodes.
        "actor_rollout_ref.nccl_timeout": NCCL_TIMEOUT_S,
        f"{actor}.optim.lr": alg.lr,
        f"{actor}.optim.total_training_steps": alg.total_steps,
        f"{actor}.ppo_mini_batch_size": b.mini_batch_size,
        f"{actor}.ppo_micro_batch_size_per_gpu": b.micro_batch_size_per_gpu,
        f"{actor}.use_dynamic_bsz": b.dynamic_batch,
        f"{actor}.ppo_max_token_len_per_gpu": update_tokens,
        f"{actor}.policy_loss.loss_mode": alg.loss if alg.loss == "gspo" else "vanilla",
        f"{actor}.clip_ratio_low": alg.clip_ratio_low,
        f"{actor}.clip_ratio_high": alg.clip_ratio_high,
        f"{actor}.loss_agg_mode": alg.loss_agg_mode,
        f"{actor}.use_kl_loss": alg.kl_loss_coef > 0,
        f"{actor}.kl_loss_coef": alg.kl_loss_coef,
        f"{actor}.kl_loss_type": alg.kl_loss_type,
        f"{actor}.entropy_coeff": alg.entropy_coeff,
        f"{actor}.fsdp_config.param_offload": hw.param_offload,
        f"{actor}.fsdp_config.optimizer_offload": hw.optimizer_offload,
        f"{actor}.checkpoint.save_contents": list(
            CHECKPOINT_RESUMABLE if ck.resumable else CHECKPOINT_WEIGHTS
        ),
        "actor_rollout_ref.ref.fsdp_config.param_offload": True,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": b.micro_batch_size_per_gpu,
        "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu": log_prob_tokens,
        f"{rollout}.name": ro.engine,
        f"{rollout}.n": ro.n,
        f"{rollout}.temperature": ro.temperature,
        f"{rollout}.top_p": ro.top_p,
        f"{rollout}.tensor_model_parallel_size": ro.tensor_parallel_size
        or hw.rollout_tensor_parallel,
        f"{rollout}.gpu_memory_utilization": ro.gpu_memory_utilization or hw.gpu_memory_utilization,
        f"{rollout}.log_prob_micro_batch_size_per_gpu": b.micro_batch_size_per_gpu,
        f"{rollout}.log_prob_max_token_len_per_gpu": log_prob_tokens,
        # The 0.9 keys: the legacy top-level custom_reward_function.* is ignored by main_ppo.
        "reward.custom_reward_function.path": REWARD_MODULE,
        "reward.custom_reward_function.name": r.reward.function,
        "reward.reward_manager.name": r.reward.manager,
        "reward.num_workers": r.reward.num_workers,
        "trainer.logger": list(r.logger),
        "trainer.project_name": r.project,
        "trainer.experiment_name": r.name,
        "trainer.nnodes": hw.nnodes,
        "trainer.n_gpus_per_node": hw.gpus_per_node,
        "trainer.total_training_steps": alg.total_steps,
        "trainer.save_freq": ck.save_freq,
        "trainer.test_freq": hw.test_freq if ck.test_freq is None else ck.test_freq,
        "trainer.val_before_train": ck.val_before_train,
        # verl resumes from a weights-only checkpoint by restoring the step count and data order
        # but not the weights (the actor would go on from the base model): start afresh instead.
        "trainer.resume_mode": "auto" if ck.resumable else "disable",
        "trainer.max_actor_ckpt_to_keep": ck.keep,
        "trainer.default_local_dir": _abs(ck.dir),
    }
    out = [f"{k}={_value(v)}" for k, v in o.items()]
    if r.reward.format_weight:
        # reward_kwargs is not in verl's schema: `+` adds it; verl passes it to our function.
        out.append(
            "+reward.custom_reward_function.reward_kwargs.format_weight="
            + _value(r.reward.format_weight)
        )
    out += [f"{k}={_value(v)}" for k, v in r.verl_overrides.items()]
    return out


def verl_command(recipe: Recipe) -> list[str]:
    """argv of the one-node run (also the entrypoint submitted to a Ray cluster)."""
    return [*VERL_ENTRY, *verl_overrides(recipe)]


@dataclass(frozen=True)
class ClusterCommands:
    head: str
    worker: str
    submit: str

    def as_text(self) -> str:
        return (
            "# on the head node:\n"
            f"{self.head}\n"
            "# on each other node:\n"
            f"{self.worker}\n"
            "# then, from the head node (or anywhere that reaches its dashboard):\n"
            f"{self.submit}\n"
        )


def cluster_commands(
    recipe: Recipe, head_address: str = "$HEAD_IP", port: int = 6379, dashboard_port: int = 8265
) -> ClusterCommands:
    """`ray start` for head and workers and the `ray job submit` of the verl run."""
    hw = recipe.preset
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "true", "NCCL_DEBUG": "WARN"}}
    head = (
        f"ray start --head --port={port} --dashboard-host=0.0.0.0 "
        f"--dashboard-port={dashboard_port} --num-gpus={hw.gpus_per_node}"
    )
    worker = f"ray start --address={head_address}:{port} --num-gpus={hw.gpus_per_node}"
    submit = (
        f"ray job submit --address=http://{head_address}:{dashboard_port} "
        f"--runtime-env-json={shlex.quote(json.dumps(runtime_env))} -- "
        + shlex.join(verl_command(recipe))
    )
    return ClusterCommands(head=head, worker=worker, submit=submit)


def run_verl(recipe: Recipe, extra_env: dict[str, str] | None = None) -> int:
    """Check that verl can start (`check_verl_start`), then run it on this node (it starts its
    own local Ray); returns verl's exit status."""
    from deepvision.train.verl_check import check_verl_start

    check_verl_start(recipe)
    env = {**os.environ, **(extra_env or {})}
    try:
        return subprocess.call(verl_command(recipe), env=env)
    except FileNotFoundError as exc:
        raise TrainError(f"cannot start verl: {exc}") from None


def submit_verl(recipe: Recipe, head_address: str, dashboard_port: int = 8265) -> int:
    """Check that verl can start here (the cluster's nodes share this install), then submit the
    run to a running Ray cluster with `ray job submit`."""
    from deepvision.train.verl_check import check_verl_start

    check_verl_start(recipe)
    cmd = cluster_commands(recipe, head_address, dashboard_port=dashboard_port).submit
    try:
        return subprocess.call(shlex.split(cmd))
    except FileNotFoundError as exc:
        raise TrainError(f"cannot run `ray job submit` (is ray installed?): {exc}") from None
