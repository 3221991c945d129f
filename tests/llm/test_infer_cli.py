"""`deepvision infer` end to end on the embedded sample and on exported JSONL."""

import json

import pytest

from deepvision.llm.fake_server import FakeServer, Faults


@pytest.fixture
def server():
    s = FakeServer(Faults(fail_rate=0.1, seed=2)).start()
    yield s
    s.stop()


def test_infer_on_the_sample_then_resume_then_judge(cli, tmp_path, server):
    out = tmp_path / "out.jsonl"
    args = (
        "infer",
        "--endpoint",
        server.url,
        "--model",
        "m",
        "--out",
        out,
        "--preset",
        "qwen-instruct",
        "--max-attempts",
        "8",
    )
    res = cli(*args)
    assert res.code == 0, res.text
    assert "done 240, failed 0" in res.out
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["sampling"]["temperature"] == 0.7 and rec["sampling"]["presence_penalty"] == 1.5
    assert {"question", "answer", "equivalent_answers", "model_response"} <= set(rec)
    res = cli(*args)
    assert "done 0, failed 0, skipped (already done) 240" in res.out
    assert len(out.read_text().splitlines()) == 240
    res = cli("judge", out)
    assert res.code == 0 and "samples 240" in res.out


def test_infer_on_exported_jsonl_with_image_files(cli, tmp_path, server):
    problems = tmp_path / "problems.jsonl"
    assert cli("data", "export", "--to", "jsonl", "--out", problems).code == 0
    out = tmp_path / "out.jsonl"
    res = cli(
        "infer",
        problems,
        "--endpoint",
        server.url,
        "--model",
        "m",
        "--out",
        out,
        "--n",
        "2",
        "--max-attempts",
        "8",
    )
    assert res.code == 0, res.text
    rec = json.loads(out.read_text().splitlines()[0])
    assert len(rec["model_responses"]) == 2 and "1 image(s)" in rec["model_responses"][0]


def test_infer_usage_errors(cli, tmp_path):
    res = cli("infer", "--model", "not-a-folder", "--out", tmp_path / "o.jsonl")
    assert res.code == 2 and "--endpoint" in res.err
    res = cli(
        "infer",
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--preset",
        "hot",
        "--out",
        tmp_path / "o.jsonl",
    )
    assert res.code == 2 and "unknown preset" in res.err
