"""The EasyR1 reward, called the way EasyR1 calls it, on rows of `data export --to easyr1`.

EasyR1 (hiyouga/EasyR1, `verl/workers/reward/function.py`) loads the file named by
`worker.reward.reward_function=PATH:NAME` under the module name `custom_reward_fn`, reads
`REWARD_TYPE` (default "batch") and binds `worker.reward.reward_function_kwargs`; its dataset
(`verl/utils/dataset.py`) hands the `data.answer_key` column on as `ground_truth`, and its
collate function stores it in a numpy object array. The reward gets one dict per response:
`response`, `response_length`, `ground_truth`."""

import importlib.util
import sys
from functools import partial

import datasets
import numpy as np
import pytest

from conftest import DEEPVISION_SCHEMA, deepvision_row, write_rows
from deepvision import records as r
from deepvision.verify import rewards


def _load_like_easyr1(spec_text: str, kwargs: dict):
    """The reward function as EasyR1's AutoRewardManager builds it from its config."""
    path, name = spec_text.rsplit(":", maxsplit=1)
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["custom_reward_fn"]
    return partial(getattr(module, name), **kwargs), getattr(module, "REWARD_TYPE", "batch")


@pytest.fixture
def ground_truths(cli, tmp_path):
    """The `answer` column of an EasyR1 export, as EasyR1's collate function batches it."""
    rows = [
        deepvision_row(
            question="q0",
            reward_model={
                "ground_truth": "18.5",
                "equivalent_answers": ["eighteen and a half"],
                "style": "rule",
            },
        ),
        deepvision_row(question="q1", answer="B", options=["3", "7"]),
    ]
    schema = DEEPVISION_SCHEMA.append(r.PROBLEM_SCHEMA.field(r.OPTIONS))
    src = write_rows(tmp_path / "in.parquet", rows, schema)
    out = tmp_path / "easyr1.parquet"
    res = cli("data", "export", src, "--to", "easyr1", "--out", out)
    assert res.code == 0, res.text
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    return np.array([ds[i]["answer"] for i in range(len(ds))], dtype=object)


def test_easyr1_reward_uses_equivalents_and_options(ground_truths):
    config = f"{rewards.__file__}:easyr1_compute_score"
    reward_fn, reward_type = _load_like_easyr1(config, {"format_weight": 0.1})
    assert reward_type == "batch"
    responses = [
        "<think>halve 37</think> \\boxed{eighteen and a half}",  # an equivalent answer
        "The longer side is 7, so \\boxed{7}",  # option B's value
        "\\boxed{3}",  # option A: wrong
    ]
    truths = [ground_truths[0], ground_truths[1], ground_truths[1]]
    inputs = [
        {"response": text, "response_length": 12, "ground_truth": truth}
        for text, truth in zip(responses, truths, strict=True)
    ]
    scores = reward_fn(inputs)
    assert [s["accuracy"] for s in scores] == [1.0, 1.0, 0.0]
    assert [s["format"] for s in scores] == [1.0, 1.0, 1.0]
    assert [s["overall"] for s in scores] == pytest.approx([1.0, 1.0, 0.1])
    # EasyR1 averages every key over the batch: all values are floats, the same keys each time
    assert all(set(s) == {"overall", "accuracy", "format"} for s in scores)
    assert all(isinstance(v, float) for s in scores for v in s.values())


def test_easyr1_reward_takes_a_plain_answer_and_the_overlong_penalty():
    reward_fn, _ = _load_like_easyr1(
        f"{rewards.__file__}:easyr1_compute_score",
        {"max_response_len": 100, "overlong_buffer_len": 20},
    )
    inputs = [
        {"response": "\\boxed{1/2}", "response_length": 10, "ground_truth": "0.5"},
        {"response": "\\boxed{1/2}", "response_length": 90, "ground_truth": "0.5"},
    ]
    first, second = reward_fn(inputs)
    assert first == {"overall": 1.0, "accuracy": 1.0, "format": 1.0, "overlong_penalty": 0.0}
    assert second["overlong_penalty"] == pytest.approx(-0.5)
    assert second["overall"] == pytest.approx(0.5)
