"""verl 0.9.1 really accepts what we generate: its Hydra config, the V1 trainer our command
runs, its dataset, its reward loop and its GSPO loss, all on CPU with our exported data (no GPU,
nothing downloaded)."""

import asyncio
import copy
import importlib
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import verl
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from deepvision.train.recipe import recipe_from_dict
from deepvision.train.verl import verl_command, verl_overrides

VERL_CONFIG = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def compose_verl(overrides):
    """verl's own ppo_trainer.yaml composed with our overrides (struct mode: unknown keys fail)."""
    with initialize_config_dir(config_dir=VERL_CONFIG, version_base=None):
        return compose("ppo_trainer", overrides=overrides)


def full_recipe(train_file, **extra):
    raw = {
        "data": {"train_files": [str(train_file)], "val_files": [str(train_file)],
                 "max_prompt_length": 4096, "max_response_length": 64},
        "hardware": {"gpus": 8},
        "reward": {"format_weight": 0.1},
        "lora": {"rank": 8},
        "logger": ["console", "tensorboard", "wandb", "swanlab"],
    }  # fmt: skip
    raw.update(extra)
    return recipe_from_dict(raw)


@pytest.mark.parametrize("gpus", [8, 16, 32, 64])
def test_every_override_is_a_key_verl_knows(tmp_path, gpus):
    recipe = full_recipe(tmp_path / "t.parquet", hardware={"gpus": gpus})
    cfg = compose_verl(verl_overrides(recipe))
    actor = cfg.actor_rollout_ref.actor
    assert actor.policy_loss.loss_mode == "gspo"
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (3e-4, 4e-4)
    assert actor.loss_agg_mode == "seq-mean-token-mean" and actor.use_kl_loss
    assert (actor.kl_loss_type, actor.kl_loss_coef, actor.optim.lr) == ("low_var_kl", 1e-3, 1e-6)
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.algorithm.filter_groups.enable and cfg.algorithm.filter_groups.metric == "acc"
    # the knob verl 0.9.1's V1 trainer reads (max_num_gen_batches it ignores: left at 0)
    assert cfg.algorithm.filter_groups.max_inflight_gen_batches == 2
    assert cfg.algorithm.filter_groups.max_num_gen_batches == 0
    assert cfg.trainer.use_v1 and cfg.trainer.v1.trainer_mode == "sync"
    assert cfg.actor_rollout_ref.rollout.n == 16 and cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.actor_rollout_ref.nccl_timeout == 3600
    assert cfg.reward.custom_reward_function.path == "pkg://deepvision.verify.rewards"
    assert cfg.reward.custom_reward_function.reward_kwargs.format_weight == 0.1
    assert cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node == gpus
    assert list(cfg.trainer.logger) == ["console", "tensorboard", "wandb", "swanlab"]
    assert cfg.data.gen_batch_size is None and cfg.data.train_batch_size == 256
    assert cfg.data.val_max_samples == 512 and cfg.data.filter_overlong_prompts_workers == 128
    assert list(cfg.actor_rollout_ref.actor.checkpoint.save_contents) == ["hf_model"]


def test_the_trainer_our_command_runs_imports_and_takes_our_dynamic_sampling(tmp_path):
    """`python3 -m verl.trainer.main_ppo` with trainer.use_v1 runs TaskRunnerV1, which imports
    transfer_queue and the V1 trainers: both import here, and the trainer object verl builds
    first reads our dynamic-sampling settings the way a cluster run would."""
    from omegaconf import OmegaConf

    cmd = verl_command(full_recipe(tmp_path / "t.parquet"))
    entry = importlib.import_module(cmd[2])  # the module `python3 -m` runs
    cfg = compose_verl(cmd[3:])
    assert cfg.trainer.use_v1 and hasattr(entry, "TaskRunnerV1")
    importlib.import_module("transfer_queue")
    v1 = importlib.import_module("verl.trainer.ppo.v1")
    run_cfg = copy.deepcopy(cfg)  # as TaskRunnerV1.run prepares it
    run_cfg.transfer_queue.enable = True
    OmegaConf.resolve(run_cfg)
    trainer = v1.get_trainer_cls(cfg.trainer.v1.trainer_mode)(config=run_cfg)
    buffer = trainer.replay_buffer
    assert type(trainer).__name__ == "PPOTrainerSync"
    # drop zero-variance groups on `acc`; prompts one at a time, at most 2 x 256 in flight
    assert (buffer.filter_groups_metric, buffer.gen_batch_size) == ("acc", 1)
    assert (buffer.max_inflight_gen_batches, buffer.train_batch_size) == (2, 256)


def test_composition_fails_on_a_key_verl_does_not_know(tmp_path):
    recipe = full_recipe(tmp_path / "t.parquet", verl_overrides={"trainer.not_a_key": 1})
    with pytest.raises(ConfigCompositionException, match=r"trainer\.not_a_key"):
        compose_verl(verl_overrides(recipe))
    # and a recipe-level escape hatch that verl knows goes through unchanged
    recipe = full_recipe(tmp_path / "t.parquet", verl_overrides={"trainer.val_before_train": True})
    assert compose_verl(verl_overrides(recipe)).trainer.val_before_train is True


def test_our_parquet_loads_in_rlhf_dataset_with_matching_images(
    verl_parquet, tiny_qwen2_5_vl, tmp_path
):
    from transformers import AutoProcessor
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = compose_verl(verl_overrides(full_recipe(verl_parquet)))
    # Filter in this process: a forked `datasets` worker deadlocks in torch's thread pool once
    # earlier tests have started it (fork after threads); the result is the same.
    cfg.data.filter_overlong_prompts_workers = None
    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    ds = RLHFDataset([str(verl_parquet)], processor.tokenizer, cfg.data, processor=processor)
    source = pq.read_table(verl_parquet).to_pylist()
    assert len(ds) == len(source) == 12  # filter_overlong_prompts ran the processor, kept all
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for i in range(len(ds)):
        row = ds[i]
        n_images = len(source[i]["images"])
        parts = [p for m in row["raw_prompt"] for p in m["content"] if not isinstance(p, str)]
        assert sum(p["type"] == "image" for p in parts) == n_images >= 1
        # what verl's agent loop does next: pull the images out, apply the chat template
        images, _ = asyncio.run(
            RLHFDataset.process_vision_info(row["raw_prompt"], cfg.data.image_patch_size, cfg.data)
        )
        assert len(images) == n_images
        text = processor.apply_chat_template(row["raw_prompt"], add_generation_prompt=True,
                                             tokenize=False)  # fmt: skip
        inputs = processor(text=[text], images=images, return_tensors="pt")
        assert inputs["image_grid_thw"].shape[0] == n_images
        n_pad = int((inputs["input_ids"] == image_pad).sum())
        assert n_pad == int(inputs["image_grid_thw"].prod(-1).sum()) // 4
        assert row["reward_model"]["ground_truth"] == source[i]["reward_model"]["ground_truth"]


def test_validation_set_is_capped_as_the_v1_trainer_builds_it(verl_parquet, tiny_qwen2_5_vl):
    from transformers import AutoProcessor
    from verl.trainer.ppo.utils import create_rl_dataset

    recipe = full_recipe(verl_parquet)
    recipe.data.val_max_samples = 5
    cfg = compose_verl(verl_overrides(recipe))
    cfg.data.filter_overlong_prompts_workers = None  # in this process (see above)
    processor = AutoProcessor.from_pretrained(tiny_qwen2_5_vl)
    cap = cfg.data.get("val_max_samples", -1)
    val = create_rl_dataset(
        cfg.data.val_files,
        cfg.data,
        processor.tokenizer,
        processor,
        is_train=False,
        max_samples=cap,
    )
    assert len(val) == 5  # not the whole file at every validation


def _rollout_batch(verl_parquet, tokenizer):
    """A DataProto as verl hands it to the reward manager: per problem, a right and a wrong
    answer (right-padded responses), with the problem's data_source/reward_model/extra_info."""
    from verl import DataProto

    rows = pq.read_table(verl_parquet).to_pylist()
    texts, keep, expected = [], [], []
    for r in rows:
        answer = r["reward_model"]["ground_truth"]
        for good in (True, False):
            texts.append(f"So x = \\boxed{{{answer if good else answer + '1'}}}")
            keep.append(r)
            expected.append(1.0 if good else 0.0)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width, prompt_len = max(map(len, ids)), 4
    responses = torch.full((len(ids), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(ids), prompt_len + width), dtype=torch.long)
    for i, t in enumerate(ids):
        responses[i, : len(t)] = torch.tensor(t)
        mask[i, : prompt_len + len(t)] = 1
    batch = DataProto.from_dict(
        tensors={"responses": responses, "attention_mask": mask,
                 "prompts": torch.zeros((len(ids), prompt_len), dtype=torch.long)},
        non_tensors={"data_source": np.array([r["data_source"] for r in keep], dtype=object),
                     "reward_model": np.array([r["reward_model"] for r in keep], dtype=object),
                     "extra_info": np.array([dict(r["extra_info"]) for r in keep], dtype=object)},
    )  # fmt: skip
    return batch, expected


# The DAPO overlong buffer as docs/rewards.md spells it (verl 0.9.1 reads every one of these).
OVERLONG = {
    "+reward.reward_kwargs.overlong_buffer_cfg.enable": True,
    "+reward.reward_kwargs.overlong_buffer_cfg.len": 4,
    "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor": 1.0,
    "+reward.reward_kwargs.overlong_buffer_cfg.log": True,
    "+reward.reward_kwargs.max_resp_len": 8,
}


@pytest.mark.parametrize(
    ("manager", "overrides", "cls"),
    [
        ("naive", {}, "NaiveRewardManager"),
        ("dapo", {}, "DAPORewardManager"),
        ("dapo", OVERLONG, "DAPORewardManager"),
    ],
)
def test_our_reward_scores_the_right_samples_in_verls_reward_loop(
    verl_parquet, tiny_qwen2_5_vl, manager, overrides, cls
):
    """The V1 trainer's reward loop worker (a Ray actor on the cluster) with our reward."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    reward = {"manager": manager, "format_weight": 0.1}
    model = {"path": str(tiny_qwen2_5_vl)}
    recipe = full_recipe(verl_parquet, reward=reward, model=model, verl_overrides=overrides)
    worker = RewardLoopWorker(compose_verl(verl_overrides(recipe)))
    assert type(worker.reward_manager).__name__ == cls
    batch, expected = _rollout_batch(verl_parquet, worker.input_tokenizer)
    outs = worker.loop.run_until_complete(worker.compute_score_batch(batch))
    info = [o["reward_extra_info"] for o in outs]
    # `acc` is what dynamic sampling filters on: the V1 replay buffer stops the run without it
    assert [float(i["acc"]) for i in info] == expected
    penalty = [i.get("overlong_reward", 0.0) for i in info]
    assert any(penalty) == bool(overrides)  # the buffer acts on the longer answers, if enabled
    # format_weight 0.1 from the recipe reached our function: a boxed answer earns the bonus
    scores = [o["reward_score"] - p for o, p in zip(outs, penalty, strict=True)]
    assert scores == pytest.approx([0.9 * e + 0.1 for e in expected])


def test_verl_gspo_loss_on_our_batch_pushes_right_answers_up(verl_parquet, tiny_qwen2_5_vl):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_policy_loss_fn
    from verl.utils.config import omega_conf_to_dataclass

    cfg = compose_verl(verl_overrides(full_recipe(verl_parquet)))
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_5_vl)
    batch, expected = _rollout_batch(verl_parquet, tokenizer)
    width = batch.batch["responses"].shape[1]
    response_mask = batch.batch["attention_mask"][:, -width:].float()
    rewards = torch.zeros_like(response_mask)
    lengths = response_mask.sum(-1).long()
    rewards[torch.arange(len(lengths)), lengths - 1] = torch.tensor(expected)
    index = np.array([e["id"] for e in batch.non_tensor_batch["extra_info"]], dtype=object)
    adv, _ = compute_grpo_outcome_advantage(rewards, response_mask, index)
    seq_adv = (adv * response_mask).sum(-1) / response_mask.sum(-1)
    right = torch.tensor(expected) == 1
    assert (seq_adv[right] > 0).all() and (seq_adv[~right] < 0).all()

    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    loss_fn = get_policy_loss_fn(actor.policy_loss.loss_mode)
    old = -torch.rand_like(response_mask) - 0.5
    log_prob = old.clone().requires_grad_(True)
    loss, _ = loss_fn(old_log_prob=old, log_prob=log_prob, advantages=adv,
                            response_mask=response_mask, loss_agg_mode=actor.loss_agg_mode,
                            config=actor)  # fmt: skip
    loss.backward()
    g = log_prob.grad
    # descending the loss raises log-probs of right answers and lowers those of wrong ones
    assert (g[right] * response_mask[right]).sum() < 0 < (g[~right] * response_mask[~right]).sum()
    assert g[response_mask == 0].abs().max() == 0  # padding gets no gradient

    # a sequence ratio beyond 1 + 4e-4 is clipped: no gradient from that positive-advantage row
    shifted = (old + 1e-3 * response_mask).requires_grad_(True)
    loss2, m2 = loss_fn(old_log_prob=old, log_prob=shifted, advantages=adv,
                        response_mask=response_mask, loss_agg_mode=actor.loss_agg_mode,
                        config=actor)  # fmt: skip
    loss2.backward()
    assert shifted.grad[right].abs().max() == 0
    assert m2["actor/pg_clipfrac"] > 0
