"""Recipes: the reference defaults, strict validation, and the commands users print with them."""

import shlex

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


def test_presets_set_nodes_and_override_individually():
    by_gpus = {g: recipe_from_dict({"hardware": {"gpus": g}}).preset for g in (8, 16, 32, 64)}
    assert [p.nnodes for p in by_gpus.values()] == [1, 2, 4, 8]
    assert by_gpus[8].param_offload and not by_gpus[64].param_offload
    p = recipe_from_dict({"hardware": {"gpus": 16, "gpus_per_node": 4, "param_offload": False}})
    assert (p.preset.nnodes, p.preset.gpus_per_node, p.preset.param_offload) == (4, 4, False)


def _overrides(cmd: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in cmd[3:])


def test_verl_command_carries_gspo_settings_our_reward_and_data(tmp_path):
    data = tmp_path / "train.parquet"
    raw = {"data": {"train_files": [str(data)]}, "hardware": {"gpus": 8},
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
    assert o["data.train_files"] == f"[{data}]"
    assert o["reward.custom_reward_function.name"] == "compute_score"
    assert o["reward.reward_manager.name"] == "dapo"
    assert o["trainer.logger"] == "[console,swanlab]"
    assert (o["trainer.nnodes"], o["trainer.n_gpus_per_node"]) == ("1", "8")
    # the legacy 0.9 keys are ignored by main_ppo: we must not rely on them
    assert not any(k.startswith(("custom_reward_function.", "reward_model.")) for k in o)


def test_cluster_commands_start_ray_and_submit_the_same_run():
    r = recipe_from_dict({"hardware": {"gpus": 32}})
    c = cluster_commands(r, "10.0.0.1")
    assert c.head.startswith("ray start --head --port=6379")
    assert c.worker.startswith("ray start --address=10.0.0.1:6379")
    argv = shlex.split(c.submit)
    assert argv[:4] == ["ray", "job", "submit", "--address=http://10.0.0.1:8265"]
    sep = argv.index("--")
    assert argv[sep + 1 :] == verl_command(r)
    assert "trainer.nnodes=4" in argv


def test_cli_init_then_dry_run_prints_the_exact_command(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    res = cli("train", "init", recipe, "--gpus", "8", "--train-files", tmp_path / "t.parquet")
    assert res.code == 0, res.text
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 0, res.text
    assert shlex.split(res.out) == verl_command(load_recipe(recipe))
    res = cli("train", "init", recipe)
    assert res.code == 2 and "--overwrite" in res.err


def test_cli_multi_node_prints_ray_commands_and_refuses_to_run_without_a_cluster(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("hardware:\n  gpus: 32\n")
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 0, res.text
    assert "ray start --head" in res.out and "ray job submit" in res.out
    res = cli("train", "verl", recipe)
    assert res.code == 2 and "--address" in res.err


def test_cli_rejects_a_bad_recipe_with_one_line(cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("rollout:\n  n: 16\n  temprature: 0.7\n")
    res = cli("train", "verl", recipe, "--dry-run")
    assert res.code == 2
    assert "rollout.temprature: unknown key" in res.err and "Traceback" not in res.err
