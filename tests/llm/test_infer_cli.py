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
        "--attempts",
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
        "--attempts",
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


def test_bad_lines_and_unreadable_images_fail_alone_and_the_exit_code_says_so(
    cli, tmp_path, server
):
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 32)
    msgs = [{"role": "user", "content": "<image>Find x."}]
    lines = [
        {"id": "a", "messages": msgs, "images": ["img.png"]},
        "{torn",
        {"id": "b", "messages": msgs, "images": ["gone.png"]},
        {"id": "c", "messages": msgs, "images": ["../../etc/passwd"]},
        {"id": "d", "messages": msgs, "images": ["img.png"]},
    ]
    src = tmp_path / "p.jsonl"
    src.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    out = tmp_path / "out.jsonl"
    args = ("infer", src, "--endpoint", server.url, "--model", "m", "--out", out)
    res = cli(*args, "--attempts", "8")
    assert res.code == 1, res.text
    assert "done 2, failed 3" in res.out
    assert sorted(json.loads(x)["id"] for x in out.read_text().splitlines()) == ["a", "d"]
    errors = {
        e["id"]: e["reason"]
        for e in map(json.loads, (tmp_path / "out.errors.jsonl").read_text().splitlines())
    }
    assert set(errors) == {"p.jsonl:2", "b", "c"}
    assert "cannot read image" in errors["b"] and "leaves the data folder" in errors["c"]


def test_an_unset_api_key_variable_or_a_wrong_model_stops_before_any_work(
    cli, tmp_path, server, monkeypatch
):
    monkeypatch.delenv("DV_NO_SUCH_KEY", raising=False)
    out = tmp_path / "o.jsonl"
    res = cli(
        "infer",
        "--endpoint",
        server.url,
        "--model",
        "m",
        "--out",
        out,
        "--api-key-env",
        "DV_NO_SUCH_KEY",
    )
    assert res.code == 2 and "DV_NO_SUCH_KEY" in res.err and server.stats.requests == 0
    listed = FakeServer(models=["the-model"]).start()
    try:
        res = cli("infer", "--endpoint", listed.url, "--model", "m", "--out", out)
    finally:
        listed.stop()
    assert res.code == 2 and "the-model" in res.err and listed.stats.requests == 0
    res = cli("infer", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--out", out)
    assert res.code == 1 and "127.0.0.1:9/v1 is unreachable" in res.err
