"""Recipes: the reference defaults, strict validation, and the commands users print with them."""

import shlex
import sys

import pytest

from deepvision.errors import ConfigError
from deepvision.train.recipe import AlgorithmConfig, load_recipe, recipe_from_dict
from deepvision.train.verl import cluster_commands, verl_command


def test_defaults_are_the_reference_gspo_run():
    r = recipe_from_dict({})
    a = r.algorithm
    assert (a.loss, a.advantage, a.clip_ratio_low, a.clip_ratio_high) == (
        "gspo",
        "grpo",
        3e-4,
        4e-4,
    )
    assert (a.loss_agg_mode, a.kl_loss_type, a.kl_loss_coef, a.lr) == (
        "seq-mean-token-mean", "low_var_kl", 1e-3, 1e-6)  # fmt: skip
    assert a.total_steps == 200 and a.dynamic_sampling.enable and a.dynamic_sampling.metric == "acc"
    assert (r.rollout.n, r.rollout.temperature, r.rollout.engine) == (16, 1.0, "vllm")
    assert (r.data.max_prompt_length, r.data.max_response_length) == (2048, 16384)
    assert (r.batch.gen_batch_size, r.batch.train_batch_size, r.batch.mini_batch_size) == (
        512,
        256,
        64,
    )
    assert r.preset.world_size == 32 and r.preset.nnodes == 4
    assert r.checkpoint.save_freq == 10 and not r.checkpoint.resumable  # the release's


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"algorithm": {"clip_ratio": 0.2}}, "algorithm.clip_ratio", "unknown key (known here:"),
        ({"rollout": {"n": 1}}, "rollout.n", "1 is out of range [2, inf)"),
        ({"algorithm": {"lr": 0}}, "algorithm.lr", "0.0 is out of range (0.0, 1.0]"),
        ({"algorithm": {"loss_agg_mode": "sum"}}, "algorithm.loss_agg_mode", "expected one of"),
        ({"hardware": {"gpus": 12}}, "hardware.gpus", "expected one of 8 | 16 | 32 | 64"),
        ({"hardware": {"gpus": 8, "gpus_per_node": 3}}, "hardware.gpus_per_node", "divide"),
        ({"logger": ["console", "mlflow"]}, "logger[1]", "unknown backend 'mlflow'"),
        ({"batch": {"train_batch_size": 1024}}, "batch.train_batch_size", "exceeds batch.gen"),
        ({"batch": {"mini_batch_size": 48}}, "batch.mini_batch_size", "must divide batch.train"),
        ({"rollout": {"temperature": "hot"}}, "rollout.temperature", "expected float"),
        ({"data": {"train_files": []}}, "data.train_files", "at least one parquet file"),
        ({"data": {"train_files": [3]}}, "data.train_files[0]", "expected str, got 3"),
        ({"trainer": {}}, "trainer", "unknown key"),
        # what verl 0.9.1 cannot run, refused with the reason
        ({"reward": {"function": "compute_score_batch"}}, "reward.function", "no `batch` manager"),
        (
            {"algorithm": {"dynamic_sampling": {"max_num_gen_batches": 10}}},
            "algorithm.dynamic_sampling.max_num_gen_batches",
            "V1 trainer ignores it",
        ),
        ({"batch": {"gen_batch_size": 384}}, "batch.gen_batch_size", "multiple of batch.train"),
        (
            {"algorithm": {"dynamic_sampling": {"metric": "pred"}}},
            "algorithm.dynamic_sampling.metric",
            "expected one of 'acc' | 'score' | 'reward'",
        ),
    ],
)
def test_invalid_recipes_name_the_key(raw, key, message):
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(raw)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ") and message in str(info.value)


def test_a_recipe_built_in_python_is_checked_the_same_way():
    with pytest.raises(ConfigError, match=r"^lr: 0 is out of range"):
        AlgorithmConfig(lr=0)
    assert AlgorithmConfig(lr=1e-5).lr == 1e-5


def test_yaml_scientific_notation_and_file_errors(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("algorithm:\n  lr: 1e-6\n  kl_loss_coef: 2e-3\nhardware:\n  gpus: 8\n")
    r = load_recipe(path)
    assert r.algorithm.lr == 1e-6 and r.algorithm.kl_loss_coef == 2e-3 and r.preset.nnodes == 1
    path.write_text("algorithm: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"r.yaml: algorithm: expected a mapping"):
        load_recipe(path)
    path.write_text("rollout:\n  n: 4\n  top_p: 0\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert (info.value.file, info.value.key) == (str(path), "rollout.top_p")
    assert str(info.value) == f"{path}: rollout.top_p: 0.0 is out of range (0.0, 1.0]"
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read it"):
        load_recipe(tmp_path / "missing.yaml")


def test_a_retired_key_in_a_file_names_the_file_and_the_way_out(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("algorithm:\n  dynamic_sampling:\n    max_num_gen_batches: 10\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    assert (info.value.file, info.value.key) == (
        str(path),
        "algorithm.dynamic_sampling.max_num_gen_batches",
    )
    assert "batch.gen_batch_size / batch.train_batch_size" in str(info.value)


def test_presets_set_nodes_and_override_individually():
    by_gpus = {g: recipe_from_dict({"hardware": {"gpus": g}}).preset for g in (8, 16, 32, 64)}
    assert [p.nnodes for p in by_gpus.values()] == [1, 2, 4, 8]
    p = recipe_from_dict({"hardware": {"gpus": 16, "gpus_per_node": 4, "param_offload": True}})
    assert (p.preset.nnodes, p.preset.gpus_per_node, p.preset.param_offload) == (4, 4, True)


def _overrides(cmd: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in cmd[3:])


@pytest.mark.parametrize(("gpus", "mem", "test_freq"), [(8, "0.8", "-1"), (32, "0.85", "20")])
def test_preset_values_are_the_release_templates(gpus, mem, test_freq):
    """train_single_node_template.sh (8 GPUs) and train_multi_node_template.sh (32 GPUs)."""
    raw = {"hardware": {"gpus": gpus}, "data": {"val_files": ["v.parquet"]}}
    o = _overrides(verl_command(recipe_from_dict(raw)))
    assert o["actor_rollout_ref.rollout.tensor_model_parallel_size"] == "1"
    assert o["actor_rollout_ref.rollout.gpu_memory_utilization"] == mem
    assert o["trainer.test_freq"] == test_freq
    assert o["actor_rollout_ref.nccl_timeout"] == "3600"
    assert o["actor_rollout_ref.actor.checkpoint.save_contents"] == "[hf_model]"
    assert o["trainer.save_freq"] == "10"
    assert o["data.filter_overlong_prompts_workers"] == "128"
    assert o["actor_rollout_ref.actor.fsdp_config.param_offload"] == "false"
    assert o["actor_rollout_ref.actor.fsdp_config.optimizer_offload"] == "false"
    assert o["actor_rollout_ref.ref.fsdp_config.param_offload"] == "true"
    # (2048 + 16384) x 2 for the update, x 3 for the log-prob passes
    assert o["actor_rollout_ref.actor.ppo_max_token_len_per_gpu"] == "36864"
    assert o["actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu"] == "55296"
    # release: gen 512 / train 256 prompts -> at most 2 train batches generating at once
    assert o["algorithm.filter_groups.max_inflight_gen_batches"] == "2"
    assert "data.gen_batch_size" not in o and "algorithm.filter_groups.max_num_gen_batches" not in o
    # weights-only checkpoints cannot resume: a restart must not silently go on from base weights
    assert o["trainer.resume_mode"] == "disable"
    o = _overrides(
        verl_command(recipe_from_dict({**raw, "checkpoint": {"resumable": True, "keep": 2}}))
    )
    contents = o["actor_rollout_ref.actor.checkpoint.save_contents"]
    assert contents == "[model,optimizer,extra,hf_model]"
    assert (o["trainer.resume_mode"], o["trainer.max_actor_ckpt_to_keep"]) == ("auto", "2")


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        ({"rollout": {"engine": "hf"}}, "rollout.engine", "vllm | sglang | trtllm"),
        ({"data": {"val_files": []}}, "data.val_files", "validation parquet is needed"),
    ],
)
def test_values_verl_cannot_run_are_refused_when_verl_is_asked(raw, key, message):
    recipe = recipe_from_dict({"data": {"val_files": ["v.parquet"]}, **raw})
    with pytest.raises(ConfigError) as info:
        verl_command(recipe)
    assert info.value.key == key and message in str(info.value)


def test_verl_command_carries_gspo_settings_our_reward_and_data(tmp_path):
    data, val = tmp_path / "train.parquet", tmp_path / "val.parquet"
    raw = {"data": {"train_files": [str(data)], "val_files": [str(val)]}, "hardware": {"gpus": 8},
           "logger": ["console", "swanlab"], "reward": {"manager": "dapo"}}  # fmt: skip
    r = recipe_from_dict(raw)
    cmd = verl_command(r)
    assert cmd[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    o = _overrides(cmd)
    assert o["actor_rollout_ref.actor.policy_loss.loss_mode"] == "gspo"
    assert o["actor_rollout_ref.actor.loss_agg_mode"] == "seq-mean-token-mean"
    assert o["actor_rollout_ref.actor.clip_ratio_low"] == "0.0003"
    assert o["actor_rollout_ref.actor.clip_ratio_high"] == "0.0004"
    assert o["actor_rollout_ref.actor.kl_loss_type"] == "low_var_kl"
    assert o["algorithm.adv_estimator"] == "grpo"
    assert o["algorithm.filter_groups.enable"] == "true"
    assert o["algorithm.filter_groups.metric"] == "acc"
    assert o["data.train_files"] == f"[{data}]" and o["data.val_files"] == f"[{val}]"
    assert (o["data.val_max_samples"], o["data.seed"]) == ("512", "0")
    assert (o["trainer.use_v1"], o["trainer.v1.trainer_mode"]) == ("true", "sync")
    assert o["reward.custom_reward_function.name"] == "compute_score"
    assert o["reward.reward_manager.name"] == "dapo"
    assert o["trainer.logger"] == "[console,swanlab]"
    assert (o["trainer.nnodes"], o["trainer.n_gpus_per_node"]) == ("1", "8")
    # the legacy 0.9 keys are ignored by main_ppo: we must not rely on them
    assert not any(k.startswith(("custom_reward_function.", "reward_model.")) for k in o)


def test_cluster_commands_start_ray_and_submit_the_same_run():
    r = recipe_from_dict({"hardware": {"gpus": 32}, "data": {"val_files": ["v.parquet"]}})
    c = cluster_commands(r, "10.0.0.1")
    assert c.head.startswith("ray start --head --port=6379")
    assert c.worker.startswith("ray start --address=10.0.0.1:6379")
    argv = shlex.split(c.submit)
    assert argv[:4] == ["ray", "job", "submit", "--address=http://10.0.0.1:8265"]
    sep = argv.index("--")
    assert argv[sep + 1 :] == verl_command(r)
    assert "trainer.nnodes=4" in argv


@pytest.fixture
def data_files(tmp_path):
    """Train and validation files where the recipe points (their content is not read here)."""
    train, val = tmp_path / "t.parquet", tmp_path / "v.parquet"
    train.write_bytes(b"PAR1")
    val.write_bytes(b"PAR1")
    return train, val


def test_cli_init_then_dry_run_checks_verl_and_prints_the_exact_command(cli, tmp_path, data_files):
    train, val = data_files
    recipe = tmp_path / "recipe.yaml"
    res = cli("train", "init", recipe, "--gpus", "8", "--train-files", train, "--val-files", val)
    assert res.code == 0, res.text
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 0, res.text
    assert shlex.split(res.out) == verl_command(load_recipe(recipe))
    assert "trainer.use_v1=true" in res.out
    assert "can start here: verl.trainer.main_ppo -> PPOTrainerSync" in res.err
    assert "at most 512 prompts in flight" in res.err
    res = cli("train", "init", recipe)
    assert res.code == 2 and "--overwrite" in res.err


def test_cli_dry_run_without_a_validation_file_names_the_key(cli, tmp_path, data_files):
    recipe = tmp_path / "recipe.yaml"
    res = cli("train", "init", recipe, "--gpus", "8", "--train-files", data_files[0])
    assert res.code == 0 and "data.val_files" in res.err  # init says what is still missing
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 2 and res.out == ""
    assert f"{recipe}: data.val_files: a validation parquet is needed" in res.err


def test_cli_dry_run_catches_a_trainer_that_cannot_import(cli, tmp_path, data_files, monkeypatch):
    """What a user saw on the cluster (`No module named 'transfer_queue'` after Ray started)
    is caught by the dry run, before anything starts."""
    train, val = data_files
    recipe = tmp_path / "recipe.yaml"
    cli("train", "init", recipe, "--gpus", "8", "--train-files", train, "--val-files", val)
    monkeypatch.setitem(sys.modules, "transfer_queue", None)  # as if not installed
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 1 and res.out == ""
    assert "importing transfer_queue failed" in res.err
    assert "pip install 'deepvision[verl]'" in res.err and "Traceback" not in res.err


def test_cli_multi_node_prints_ray_commands_and_refuses_to_run_without_a_cluster(
    cli, tmp_path, data_files
):
    recipe = tmp_path / "recipe.yaml"
    train, val = data_files
    recipe.write_text(
        f"data:\n  train_files: [{train}]\n  val_files: [{val}]\nhardware:\n  gpus: 32\n"
    )
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 0, res.text
    assert "ray start --head" in res.out and "ray job submit" in res.out
    assert "trainer.test_freq=20" in res.out
    res = cli("train", "verl", recipe)
    assert res.code == 2 and "--address" in res.err


def test_cli_rejects_a_bad_recipe_with_one_line(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rollout:\n  n: 16\n  temprature: 0.7\n")
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 2
    assert "rollout.temprature: unknown key" in res.err and "Traceback" not in res.err
