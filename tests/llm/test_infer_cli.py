"""`deepvision infer` end to end on the embedded sample and on exported JSONL, and every way
a run was seen to fail (issue 13), as a user meets it: exit code, files, the summary line."""

import base64
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import deepvision_row, png_bytes, write_rows
from deepvision.llm.fake_server import FakeServer, Faults, Scripted

MSGS = [{"role": "user", "content": "<image>Find x."}]
TEXT = [{"role": "user", "content": "Find x."}]


def _jsonl(path, lines):
    """Write `lines` (objects, or raw text for a bad line) as a JSONL file."""
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _ids(path):
    return [json.loads(x)["id"] for x in path.read_text().splitlines()]


def _errors(out):
    errors = out.with_name(out.stem + ".errors.jsonl")
    return {e["id"]: e["reason"] for e in map(json.loads, errors.read_text().splitlines())}


@pytest.fixture
def recording():
    """A fault-free server keeping the body of every request it answered (`.bodies`)."""
    bodies = []
    s = FakeServer(responder=lambda body: bodies.append(json.dumps(body)) or None).start()
    s.bodies = bodies
    yield s
    s.stop()


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


def _infer(cli, src, out, url, *extra):
    return cli("infer", src, "--endpoint", url, "--model", "m", "--out", out, *extra)


def test_a_row_with_the_wrong_image_count_or_unreadable_fails_alone_and_reruns_go_past_it(
    cli, tmp_path, recording
):
    rows = [deepvision_row(question=f"Q{i}: find x.", answer=str(i)) for i in range(10)]
    rows[3]["prompt"][1]["content"] = "<image><image>Q3: two placeholders, one image."
    rows[5]["question"] = None  # unreadable: no question
    src = write_rows(tmp_path / "p.parquet", rows)
    out = tmp_path / "out.jsonl"
    res = _infer(cli, src, out, recording.url)
    assert res.code == 1 and "Traceback" not in res.text
    assert "rows 10: done 8, failed 2" in res.out and "skipped (already done) 0" in res.out
    reasons = _errors(out)
    assert len(reasons) == 2 and len(_ids(out)) == 8 and len(recording.bodies) == 8
    assert any("2 <image> placeholder(s)" in r for r in reasons.values())
    assert "question is null" in reasons["p.parquet:row 5"]
    res = _infer(cli, src, out, recording.url)  # the rerun does not stop at them either
    assert res.code == 1
    assert "rows 10: done 0, failed 2" in res.out and "skipped (already done) 8" in res.out
    assert len(recording.bodies) == 8 and len(_errors(out)) == 2


def test_image_paths_outside_the_jsonl_folder_are_named_rejections_never_sent(
    cli, tmp_path, recording
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.png").write_bytes(png_bytes())
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(png_bytes((1, 2, 3)))
    src = _jsonl(
        data / "p.jsonl",
        [
            {"id": "ok", "messages": MSGS, "images": ["ok.png"]},
            {"id": "up", "messages": MSGS, "images": ["../../x.png"]},
            {"id": "passwd", "messages": MSGS, "images": ["/etc/passwd"]},
            {"id": "abs", "messages": MSGS, "images": [str(elsewhere)]},
        ],
    )
    out = tmp_path / "out.jsonl"
    res = _infer(cli, src, out, recording.url)
    assert res.code == 1 and "rows 4: done 1, failed 3" in res.out
    reasons = _errors(out)
    assert "leaves the data folder" in reasons["up"]
    assert "is absolute" in reasons["passwd"] and "is absolute" in reasons["abs"]
    sent = "".join(recording.bodies)
    assert len(recording.bodies) == 1
    assert base64.b64encode(elsewhere.read_bytes()).decode() not in sent
    if Path("/etc/passwd").exists():
        assert base64.b64encode(Path("/etc/passwd").read_bytes()[:30]).decode() not in sent
    # --allow-absolute-paths admits absolute paths; relative ones still stay inside
    res = _infer(cli, src, tmp_path / "allowed.jsonl", recording.url, "--allow-absolute-paths")
    assert "abs" in _ids(tmp_path / "allowed.jsonl")
    assert base64.b64encode(elsewhere.read_bytes()).decode() in "".join(recording.bodies)
    assert "leaves the data folder" in _errors(tmp_path / "allowed.jsonl")["up"]


def test_a_bad_first_line_fails_alone_and_the_rest_of_the_jsonl_is_done(cli, tmp_path, recording):
    lines = ["{torn", *({"id": f"q{i}", "messages": TEXT} for i in range(5))]
    out = tmp_path / "out.jsonl"
    res = _infer(cli, _jsonl(tmp_path / "p.jsonl", lines), out, recording.url)
    assert res.code == 1 and "rows 6: done 5, failed 1" in res.out
    assert sorted(_ids(out)) == [f"q{i}" for i in range(5)]
    assert list(_errors(out)) == ["p.jsonl:1"]


def _cut(line):
    return line[:40] + "\n"


def _without_id(line):
    return json.dumps({k: v for k, v in json.loads(line).items() if k != "id"}) + "\n"


@pytest.mark.parametrize(
    ("broken", "why"),
    [(_cut, r"out\.jsonl:2: not JSON"), (_without_id, r"out\.jsonl:2: record has no key")],
)
def test_resuming_on_an_unreadable_output_line_names_it_and_changes_nothing(
    cli, tmp_path, recording, broken, why
):
    src = _jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "messages": TEXT} for i in range(4)])
    out = tmp_path / "out.jsonl"
    assert _infer(cli, src, out, recording.url).code == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + broken(lines[1]) + lines[2])  # q3 is left to do
    before = out.read_bytes()
    res = _infer(cli, src, out, recording.url)
    assert res.code == 1 and "Traceback" not in res.text
    (line,) = res.err.strip().splitlines()
    assert line.startswith("error: ") and "fix or delete that line" in line
    assert re.search(why, line)
    assert out.read_bytes() == before and len(recording.bodies) == 4  # nothing sent, or written


def test_timeout_ends_a_trickled_reply_within_about_the_timeout(cli, tmp_path):
    src = _jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "messages": TEXT} for i in range(3)])
    out = tmp_path / "out.jsonl"
    s = FakeServer(Faults(trickle_rate=1.0, trickle_s=1.0)).start()  # ~5 minutes per reply
    try:
        t0 = time.monotonic()
        res = _infer(cli, src, out, s.url, "--timeout", "1", "--attempts", "1")
        took = time.monotonic() - t0
    finally:
        s.stop()
    assert res.code == 1 and "rows 3: done 0, failed 3" in res.out
    assert took < 30  # about 1 s; a wide margin for a loaded CI machine
    assert all("within 1 s (timeout)" in r for r in _errors(out).values())


def test_a_null_content_is_never_saved_as_an_empty_answer(cli, tmp_path):
    src = _jsonl(tmp_path / "p.jsonl", [{"id": "q", "messages": TEXT}])
    out = tmp_path / "out.jsonl"
    s = FakeServer(Faults(null_content_rate=1.0)).start()
    try:
        res = _infer(cli, src, out, s.url, "--attempts", "2")
    finally:
        s.stop()
    assert res.code == 1 and out.read_text() == "" and s.stats.requests == 2
    assert "null content" in _errors(out)["q"]


def test_counts_reconcile_with_the_input_on_every_run(cli, tmp_path):
    lines = [
        {"id": "a", "messages": TEXT},
        {"id": "b", "messages": TEXT},
        {"id": "a", "messages": TEXT},  # duplicate id
        "not json",
        {"id": "c", "messages": MSGS, "images": ["missing.png"]},
        {"id": "ctx", "messages": [{"role": "user", "content": "ctx: too long"}]},
    ]
    src = _jsonl(tmp_path / "p.jsonl", lines)
    out = tmp_path / "out.jsonl"
    s = FakeServer(responder=lambda b: Scripted(mode="400") if "ctx" in json.dumps(b) else None)
    s.start()
    try:
        first = _infer(cli, src, out, s.url)
        again = _infer(cli, src, out, s.url)
    finally:
        s.stop()
    assert first.code == again.code == 1
    assert "rows 6: done 2, failed 3 " in first.out and "duplicate ids 1" in first.out
    assert "rows 6: done 0, failed 3 " in again.out and "skipped (already done) 2" in again.out


def test_credentials_in_an_endpoint_url_are_never_written_or_printed(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")  # the URL's credentials win
    src = _jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "messages": TEXT} for i in range(20)])
    out = tmp_path / "out.jsonl"
    s = FakeServer(Faults(bad_request_rate=0.3, seed=1)).start()
    try:
        res = _infer(cli, src, out, s.url.replace("http://", "http://alice:s3cret@"))
    finally:
        s.stop()
    assert res.code == 1 and "done" in res.out
    written = out.read_text() + out.with_name("out.errors.jsonl").read_text()
    assert "127.0.0.1" in written  # the endpoint is recorded, without its credentials
    for dead in ("http://alice:s3cret@127.0.0.1:9/v1", "http://alice:s3cret@127.0.0.1:99999/v1"):
        bad = _infer(cli, src, tmp_path / "o2.jsonl", dead)
        assert bad.code == 1 and "127.0.0.1" in bad.err and "Traceback" not in bad.text
        written += bad.text
    assert "s3cret" not in res.text + written and "alice" not in res.text + written
    both = _infer(cli, src, out, "http://alice:s3cret@127.0.0.1:9/v1", "--api-key-env", "HOME")
    assert both.code == 2 and "--endpoint" in both.err and "s3cret" not in both.text


@pytest.fixture
def small_disk(tmpfs):
    """A 64 KB tmpfs (root only); `.grow()` gives it room again."""
    disk = tmpfs("disk", "size=64k")

    class Disk:
        path = disk

        def grow(self):
            subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)

    return Disk()


def test_a_full_disk_ends_infer_with_one_line_and_a_rerun_finishes(cli, tmp_path, small_disk):
    src = _jsonl(tmp_path / "p.jsonl", [{"id": f"q{i}", "messages": TEXT} for i in range(400)])
    out = small_disk.path / "out.jsonl"
    s = FakeServer(Faults(reply="y" * 300)).start()
    try:
        full = _infer(cli, src, out, s.url)
        sent = s.stats.requests
        small_disk.grow()
        again = _infer(cli, src, out, s.url)
    finally:
        s.stop()
    assert full.code == 1 and "Traceback" not in full.text
    (line,) = full.err.strip().splitlines()
    assert "No space left on device" in line and "run the same command again" in line
    assert sent < 400
    assert again.code == 0 and "rows 400: done" in again.out
    ids = _ids(out)
    assert sorted(ids) == sorted(f"q{i}" for i in range(400))
