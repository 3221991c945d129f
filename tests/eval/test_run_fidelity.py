"""`deepvision eval run` and `eval compare` as a user sees them on official-layout data: an
unusable record does not keep a run from completing, `--overwrite` starts over, a bad endpoint
fails before any folder is written, logs get a plain Markdown table and plain progress lines,
and settings that make figures meaningless or incomparable are warned about."""

from __future__ import annotations

import base64
import json
import time

import pytest

from conftest import png_bytes
from deepvision.cli.eval import PipedProgress
from deepvision.cli.main import main
from deepvision.eval import load_problems
from deepvision.llm.fake_server import FakeServer
from deepvision.records import EvalFiles


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def first_image(body: dict) -> str:
    for m in body["messages"]:
        for part in m["content"] if isinstance(m.get("content"), list) else []:
            if part.get("type") == "image_url":
                return part["image_url"]["url"].partition(",")[2]
    return ""


def answering(golds: dict[str, str], models=("m",)) -> FakeServer:
    """A server answering `\\boxed{gold}` for the item whose first image has that base64."""
    return FakeServer(
        responder=lambda body: f"\\boxed{{{golds.get(first_image(body), 'none')}}}",
        models=list(models),
    ).start()


@pytest.fixture(scope="module")
def synth():
    items = list(load_problems("synth", None))
    return {base64.b64encode(p.images[0].bytes).decode(): p.answer for p in items}


def write_logicvista(root) -> dict[str, str]:
    """LogicVista as its repository ships it, with its unusable record v1_382 (empty question
    and answer); returns image base64 -> gold of the usable ones."""
    folder = root / "LogicVista" / "data"
    (folder / "images").mkdir(parents=True)
    records, golds = {}, {}
    for k, (question, answer) in enumerate(
        [("Which choice (A, B, C, or D)?", "C"), ("", ""), ("Which two figures?", "B, D")]
    ):
        key = f"v1_{380 + k}"
        data = png_bytes((k * 40, 20, 20))
        (folder / "images" / f"{key}.png").write_bytes(data)
        records[key] = {
            "imagename": f"{key}.png",
            "question": question,
            "answer": answer,
            "reasoning": "",
            "skill": ["spatial"],
        }
        if answer:
            golds[base64.b64encode(data).decode()] = answer
    (folder / "dataset.json").write_text(json.dumps(records))
    return golds


def test_an_unusable_official_record_does_not_keep_a_run_from_completing(tmp_path, capsys):
    """LogicVista's empty record is excluded and named; the run completes (exit 0, whole
    figures). It once counted as an item without an answer: exit 1 on every re-run."""
    golds = write_logicvista(tmp_path / "data")
    srv = answering(golds)
    out = tmp_path / "run"
    args = [
        "--quiet",
        "eval",
        "run",
        "-b",
        "logic_vista",
        "--data-dir",
        str(tmp_path / "data"),
        "--endpoint",
        srv.url,
        "--model",
        "m",
        "--out",
        str(out),
    ]
    try:
        assert run_cli(*args) == 0
        assert run_cli(*args) == 0, "a re-run finds nothing left to do"
    finally:
        srv.stop()
    b = json.loads(EvalFiles(out).results.read_text())["benchmarks"]["logic_vista"]
    assert b["expected"] == 2 and b["missing"] == 0 and b["accuracy"]["value"] == 1.0
    (excluded,) = b["load"]["excluded"]
    assert "dataset.json[v1_381]: no gold answer" in excluded
    assert "excluded from the set: " in EvalFiles(out).report_md.read_text()


def test_overwrite_starts_over_with_the_new_model(tmp_path, synth):
    """`--overwrite` with another model asks the new model for every item and reports only
    its numbers (it once resumed the old responses: no request, the old 100% under the new
    name)."""
    right = answering(synth, models=["old"])
    wrong = FakeServer(responder=lambda body: "\\boxed{-98765}", models=["new"]).start()
    out = tmp_path / "run"
    common = ["--quiet", "eval", "run", "--limit", "12", "--out", str(out)]
    try:
        assert run_cli(*common, "--endpoint", right.url, "--model", "old") == 0
        assert run_cli(*common, "--endpoint", wrong.url, "--model", "new", "--overwrite") == 0
        asked = wrong.stats.requests
    finally:
        right.stop()
        wrong.stop()
    res = json.loads(EvalFiles(out).results.read_text())
    assert asked == 12
    assert res["run"]["model"] == "new" and res["benchmarks"]["synth"]["accuracy"]["value"] == 0
    lines = EvalFiles(out).responses("synth").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["model"] == "new" for x in lines)


def test_a_wrong_model_or_port_fails_within_seconds_and_writes_no_folder(tmp_path, synth):
    """Before any work and before the run folder is made: a server that serves another
    model is a usage error naming what it serves; a port nobody listens on, an error naming
    the URL. A corrected re-run then needs no --overwrite."""
    srv = answering(synth, models=["other-model"])
    out = tmp_path / "run"
    try:
        t0 = time.monotonic()
        rc = run_cli(
            "--quiet",
            "eval",
            "run",
            "--endpoint",
            srv.url,
            "--model",
            "mine",
            "--out",
            str(out),
            "--limit",
            "3",
        )
        assert rc == 2 and time.monotonic() - t0 < 60
        assert srv.stats.requests == 0 and not EvalFiles(out).settings.exists()
        assert (
            run_cli(
                "--quiet",
                "eval",
                "run",
                "--endpoint",
                srv.url,
                "--model",
                "other-model",
                "--out",
                str(out),
                "--limit",
                "3",
            )
            == 0
        )
        closed = srv.url.replace(str(srv.port), "9")  # the discard port: nothing listens
        t0 = time.monotonic()
        rc = run_cli(
            "--quiet",
            "eval",
            "run",
            "--endpoint",
            closed,
            "--model",
            "m",
            "--out",
            str(tmp_path / "run2"),
        )
        assert rc == 1 and time.monotonic() - t0 < 60
        assert not (tmp_path / "run2").exists()
    finally:
        srv.stop()


def test_results_table_is_plain_markdown_in_a_log(tmp_path, synth, capsys):
    """With stdout not a terminal (a log, a pipe) the summary is a Markdown table with every
    number in full, not a box drawing squeezed to 80 columns."""
    srv = answering(synth)
    try:
        assert (
            run_cli(
                "--quiet",
                "eval",
                "run",
                "--endpoint",
                srv.url,
                "--model",
                "m",
                "--out",
                str(tmp_path / "run"),
                "--limit",
                "6",
            )
            == 0
        )
    finally:
        srv.stop()
    out = capsys.readouterr().out
    assert "| benchmark | items | missing | unjudged | acc (avg@1) |" in out
    assert "| Synth (embedded) | 6 | 0 | 0 | 100.00 |" in out
    assert not any(ch in out for ch in "┃━│…")


def test_piped_progress_is_a_plain_line_at_most_once_a_minute():
    now = [0.0]
    lines: list[str] = []
    progress = PipedProgress({"wemath: infer": 1740}, clock=lambda: now[0], write=lines.append)
    progress("wemath: infer", 0)
    for _ in range(119):  # two items a second for 59.5 s: no line yet
        now[0] += 0.5
        progress("wemath: infer", 1)
    assert lines == []
    for _ in range(100):  # at 60 s one line; for the next 49.5 s no other
        now[0] += 0.5
        progress("wemath: infer", 1)
    assert lines == ["wemath: infer: 120/1740, 2.0/s, ETA 13m30s"]
    now[0] += 10.5
    progress("wemath: infer", 1)
    assert lines[-1] == "wemath: infer: 220/1740, 1.8/s, ETA 13m49s" and len(lines) == 2


def test_n_samples_of_greedy_decoding_and_unlike_runs_are_warned_about(tmp_path, synth, capsys):
    srv = answering(synth)
    try:
        assert (
            run_cli(
                "eval",
                "run",
                "--endpoint",
                srv.url,
                "--model",
                "m",
                "--n",
                "2",
                "--out",
                str(tmp_path / "a"),
                "--limit",
                "3",
            )
            == 0
        )
        err = capsys.readouterr().err
        assert "--n 2 with greedy decoding (temperature 0) asks for 2 identical samples" in err
        assert (
            run_cli(
                "--quiet",
                "eval",
                "run",
                "--endpoint",
                srv.url,
                "--model",
                "m",
                "--n",
                "1",
                "--preset",
                "qwen-instruct",
                "--max-tokens",
                "512",
                "--out",
                str(tmp_path / "b"),
                "--limit",
                "3",
            )
            == 0
        )
    finally:
        srv.stop()
    capsys.readouterr()
    cmp = tmp_path / "cmp"
    assert (
        run_cli("eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(cmp)) == 0
    )
    err = " ".join(capsys.readouterr().err.split())
    for what in ("n (a=2, b=1)", "sampling (a=", "max tokens (a=null, b=512)"):
        assert f"the runs differ in {what}" in err
    assert "the runs differ in n (a=2, b=1)" in (cmp / "compare.md").read_text()


def test_a_benchmark_file_of_other_versions_only_says_so(tmp_path, synth, capsys):
    """MathVerse's repository holds testmini_text_only.json (Text Only records) and no Vision
    Only record: the run stops with that said, not with a bare 'no item'."""
    folder = tmp_path / "data" / "MathVerse" / "data"
    folder.mkdir(parents=True)
    rec = {
        "sample_index": "1",
        "problem_index": "1",
        "problem_version": "Text Only",
        "question": "Find x.",
        "image": "",
        "answer": "4",
        "question_type": "free-form",
        "metadata": {"subject": "Algebra"},
        "query_wo": "Find x.",
        "query_cot": "Find x.",
    }
    (folder / "testmini_text_only.json").write_text(json.dumps([rec, {**rec, "sample_index": "2"}]))
    srv = answering(synth)
    try:
        rc = run_cli(
            "--quiet",
            "eval",
            "run",
            "-b",
            "mathverse",
            "--data-dir",
            str(tmp_path / "data"),
            "--endpoint",
            srv.url,
            "--model",
            "m",
            "--out",
            str(tmp_path / "run"),
        )
    finally:
        srv.stop()
    assert rc == 1
    assert "2 record(s) of other sets or versions" in capsys.readouterr().err


def test_a_benchmark_whose_file_is_truncated_fails_alone(tmp_path, synth, capsys):
    """A truncated official JSON stops its benchmark with the file and the place named; the
    other benchmarks of the run are evaluated, the average is partial and the exit code 1."""
    golds = write_logicvista(tmp_path / "data")
    dataset = tmp_path / "data" / "LogicVista" / "data" / "dataset.json"
    dataset.write_text(dataset.read_text()[:-40])
    srv = answering({**golds, **synth})
    out = tmp_path / "run"
    try:
        rc = run_cli(
            "--quiet",
            "eval",
            "run",
            "-b",
            "logic_vista,synth",
            "--data-dir",
            str(tmp_path / "data"),
            "--endpoint",
            srv.url,
            "--model",
            "m",
            "--limit",
            "5",
            "--out",
            str(out),
        )
    finally:
        srv.stop()
    assert rc == 1
    res = json.loads(EvalFiles(out).results.read_text())
    assert res["benchmarks"]["synth"]["accuracy"]["value"] == 1.0
    assert "dataset.json: neither JSON nor JSON lines" in res["failed"]["logic_vista"]
    avg = res["average"]
    assert avg["over"] == ["synth", "logic_vista"] and avg["accuracy"]["partial"]
    assert "failed logic_vista" in " ".join(capsys.readouterr().err.split())
    assert "could not be evaluated" in EvalFiles(out).report_md.read_text()
