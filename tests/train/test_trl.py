"""TRL GRPOTrainer driven by a recipe: GSPO settings, our exported parquet, our rewards, a tiny
offline VLM; a couple of real optimizer steps on CPU."""

import pytest
import torch
from trl import GRPOConfig

from deepvision.data.export import export
from deepvision.errors import ConfigError
from deepvision.train.recipe import recipe_from_dict
from deepvision.train.tiny import build_tiny_vlm
from deepvision.train.trl import (
    accelerate_command,
    build_trl_trainer,
    grpo_config_kwargs,
    load_trl_dataset,
    sample_budget,
)


def cpu_recipe(model, data, out, **extra):
    raw = {
        "model": {"path": str(model), "gradient_checkpointing": False},
        "data": {"train_files": [str(data)], "max_response_length": 8},
        "algorithm": {"lr": 1e-3, "total_steps": 2},
        "rollout": {"n": 2},
        "logger": ["console"],
        "checkpoint": {"dir": str(out), "save_freq": -1},
        "trl": {"per_device_train_batch_size": 4, "steps_per_generation": 2,
                "use_cpu": True, "bf16": False},
    }  # fmt: skip
    raw.update(extra)
    return recipe_from_dict(raw)


@pytest.fixture
def trl_parquet(tmp_path, deepvision_file):
    out = tmp_path / "trl.parquet"
    assert export([deepvision_file], out, "trl").written == 12
    return out


def test_recipe_maps_to_trl_gspo_settings(tmp_path):
    r = recipe_from_dict({"hardware": {"gpus": 8}, "trl": {"use_vllm": True}})
    assert grpo_config_kwargs(r, tmp_path)["bf16"] is True  # the GPU default
    r.trl.use_cpu = True  # this machine has no GPU: bf16 off, the rest as on GPU
    args = GRPOConfig(**grpo_config_kwargs(r, tmp_path))  # TRL accepts every key we pass
    assert args.importance_sampling_level == "sequence" and args.loss_type == "grpo"
    assert (args.epsilon, args.epsilon_high, args.beta) == (3e-4, 4e-4, 1e-3)
    assert (args.num_generations, args.temperature, args.learning_rate) == (16, 1.0, 1e-6)
    assert args.max_completion_length == 16384 and args.max_steps == 200
    assert args.use_vllm and args.vllm_mode == "colocate" and args.scale_rewards == "group"
    # constant LR as in verl and the release (TRL's default decays it linearly to 0)
    assert (args.lr_scheduler_type, args.warmup_steps) == ("constant", 0)
    assert args.vllm_max_model_length == 2048 + 16384  # room for prompt + response
    assert args.vllm_gpu_memory_utilization == 0.3  # TRL's own: its vLLM stays resident
    token_mean = recipe_from_dict({"algorithm": {"loss": "grpo", "loss_agg_mode": "token-mean"}})
    kw = grpo_config_kwargs(token_mean, tmp_path)
    assert (kw["importance_sampling_level"], kw["loss_type"]) == ("token", "dapo")
    with pytest.raises(ConfigError, match=r"algorithm\.loss_agg_mode: .* no TRL equivalent"):
        grpo_config_kwargs(recipe_from_dict({"algorithm": {"loss_agg_mode": "seq-mean-token-sum"}}))
    with pytest.raises(ConfigError, match=r"^trl\.per_device_train_batch_size: .* rollout\.n=16"):
        grpo_config_kwargs(recipe_from_dict({"trl": {"per_device_train_batch_size": 3}}))


@pytest.mark.parametrize(
    ("rollout", "trl", "key"),
    [
        ({"engine": "sglang"}, {}, "rollout.engine"),
        ({"engine": "hf"}, {"use_vllm": True}, "trl.use_vllm"),
    ],
)
def test_generation_trl_cannot_do_is_refused_with_the_key(rollout, trl, key):
    with pytest.raises(ConfigError) as info:
        grpo_config_kwargs(recipe_from_dict({"rollout": rollout, "trl": trl}))
    assert info.value.key == key


def test_sample_budget_against_the_verl_recipe_is_said_plainly():
    b = sample_budget(recipe_from_dict({"hardware": {"gpus": 8}}), processes=8)
    # TRL defaults: 16 completions per GPU per update on 8 GPUs, 200 updates
    assert (b.per_update, b.updates, b.total) == (128, 200, 25_600)
    # verl: 256 groups of 16 per step in updates of 64 groups: 1,024 x 800
    assert (b.reference_per_update, b.reference_updates, b.reference_total) == (1024, 800, 819_200)
    assert b.text().endswith("(32.0x as many)")


@pytest.mark.parametrize(
    ("kind", "plugin"), [("fsdp", "fsdp_config"), ("zero3", "deepspeed_config")]
)
def test_accelerate_config_is_read_by_accelerate_and_launches_our_command(
    cli, tmp_path, kind, plugin
):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = tmp_path / f"{kind}.yaml"
    res = cli("train", "accelerate-config", path, "--kind", kind, "--processes", "8")
    assert res.code == 0, res.text
    cfg = load_config_from_file(str(path))  # accelerate refuses unknown keys
    assert cfg.num_processes == 8 and cfg.mixed_precision == "bf16"
    assert cfg.distributed_type == {"fsdp": "FSDP", "zero3": "DEEPSPEED"}[kind]
    sharding = getattr(cfg, plugin)
    assert sharding.get("fsdp_version") == 2 or sharding.get("zero_stage") == 3
    argv = accelerate_command("recipe.yaml", 8, config_file=path)
    args = launch_command_parser().parse_args(argv[2:])
    assert (args.config_file, args.module) == (str(path), True)
    assert args.training_script == "deepvision.cli.main"
    assert args.training_script_args == ["train", "trl", "recipe.yaml"]
    res = cli("train", "accelerate-config", path, "--kind", "zero2")
    assert res.code == 2 and "--kind" in res.err


def test_cli_trl_dry_run_prints_budget_and_sharded_launch(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("hardware:\n  gpus: 8\n")
    res = cli("train", "trl", recipe, "--dry-run")
    assert res.code == 0, res.text
    assert "lr_scheduler_type: 'constant'" in res.out
    assert "# samples: TRL on 8 process(es): 128 samples per optimizer update" in res.out
    assert "deepvision train accelerate-config accelerate-fsdp.yaml --kind fsdp" in res.out
    assert "accelerate launch --config_file accelerate-fsdp.yaml --num_processes 8" in res.out


def test_trl_parquet_loads_with_decoded_images(trl_parquet):
    ds = load_trl_dataset([str(trl_parquet)])
    assert len(ds) == 12
    assert [len(r["images"]) for r in ds] == [1 + i % 2 for i in range(12)]
    assert ds[0]["images"][0].size == (32, 24)  # PIL images, as TRL hands them to the processor


@pytest.mark.slow
def test_cli_trains_qwen2_5_vl_two_gspo_steps_and_saves(
    cli, tmp_path, trl_parquet, tiny_qwen2_5_vl
):
    from deepvision.train.recipe import dump_recipe

    out = tmp_path / "run"
    path = tmp_path / "recipe.yaml"
    path.write_text(dump_recipe(cpu_recipe(tiny_qwen2_5_vl, trl_parquet, out)))
    res = cli("train", "trl", path)
    assert res.code == 0, res.text
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}


@pytest.mark.slow
def test_qwen3_vl_with_lora_learns_from_our_reward_and_trains_only_the_adapter(
    tmp_path, trl_parquet
):
    # Answers "0" and "1" as whole tokens, and sampling restricted to them: a random model is
    # right about half the time, so groups have reward variance and the update is not zero.
    answers = ("\\boxed{0}", "\\boxed{1}")
    model = build_tiny_vlm(tmp_path / "tiny3", family="qwen3_vl", extra_tokens=answers)
    ds = load_trl_dataset([str(trl_parquet)]).filter(lambda r: r["answer"] in ("0", "1"))
    recipe = cpu_recipe(model, trl_parquet, tmp_path / "run", lora={"rank": 4, "alpha": 8},
                        rollout={"n": 4},
                        trl={"per_device_train_batch_size": 8, "steps_per_generation": 1,
                             "use_cpu": True, "bf16": False, "seed": 0})  # fmt: skip
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    keep = {tok.convert_tokens_to_ids(a) for a in answers}
    bad = [[i] for i in range(len(tok)) if i not in keep]
    run = build_trl_trainer(recipe, train_dataset=ds, config_overrides={
        "max_completion_length": 1, "generation_kwargs": {"bad_words_ids": bad}})  # fmt: skip
    base = {k: v.clone() for k, v in run.trainer.model.named_parameters() if "lora" not in k}
    lora_b = {k: v.clone() for k, v in run.trainer.model.named_parameters() if "lora_B" in k}
    assert lora_b, "LoRA adapters were attached"
    run.trainer.train()
    params = dict(run.trainer.model.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in base.items())
    logs = [h for h in run.trainer.state.log_history if "reward" in h]
    assert logs and all(0.0 < h["reward"] < 1.0 for h in logs)  # our reward scored the samples
    assert [h["learning_rate"] for h in logs] == [1e-3] * len(logs)  # constant, as in verl
    assert any(not torch.equal(params[k], v) for k, v in lora_b.items())
