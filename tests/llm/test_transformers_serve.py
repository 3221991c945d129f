"""End to end on CPU: a tiny Qwen2.5-VL built offline, served by `transformers serve`,
driven by `deepvision infer` (images as data URIs; the server ignores n, so samples fan out)."""

import json

import pytest

from conftest import free_ports
from deepvision.llm.serve import ServeConfig, ServerGroup
from deepvision.train.tiny import build_tiny_vlm


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny") / "tiny-vlm")


@pytest.mark.slow
def test_infer_against_transformers_serve_with_a_tiny_vlm(cli, tmp_path, tiny_model):
    cfg = ServeConfig(
        str(tiny_model), backend="transformers", port=free_ports(), log_dir=tmp_path / "logs"
    )
    with ServerGroup(cfg, health_timeout=180) as group:
        problems = tmp_path / "problems.jsonl"
        assert (
            cli("data", "sample", "--n", "3", "--seed", "1", "--out", tmp_path / "s.parquet").code
            == 0
        )
        assert (
            cli("data", "export", tmp_path / "s.parquet", "--to", "jsonl", "--out", problems).code
            == 0
        )
        out = tmp_path / "out.jsonl"
        res = cli(
            "infer",
            problems,
            "--endpoint",
            group.urls[0],
            "--model",
            str(tiny_model),
            "--out",
            out,
            "--n",
            "2",
            "--max-tokens",
            "8",
            "--concurrency",
            "2",
        )
        assert res.code == 0, res.text + "\n" + group.instances[0].log_tail()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3
    for rec in lines:
        assert len(rec["model_responses"]) == 2
        assert all(isinstance(t, str) for t in rec["model_responses"])
        assert rec["usage"]["completion_tokens"] > 0
