"""`deepvision quickstart` end to end on CPU: every stage runs on the real engines (TRL GSPO
steps, transformers serve, eval) and leaves the artifacts its summary names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepvision.cli.main import main


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_names_its_artifacts(tmp_path, capsys):
    out = tmp_path / "qs"
    try:
        main(["--quiet", "quickstart", "--out", str(out), "--problems", "16", "--steps", "2",
              "--eval-items", "4"])  # fmt: skip
    except SystemExit as exc:
        assert exc.code in (0, None)
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["seconds"]) == {"synth", "validate", "stats", "export", "tiny-model",
                                       "train", "serve", "eval"}  # fmt: skip
    for name, path in summary["artifacts"].items():
        assert name in printed and Path(path).exists(), name
    f = summary["figures"]
    assert f["valid_rows"] == 16 and f["train_steps"] == 2
    res = json.loads((out / "eval" / "results.json").read_text())["benchmarks"]["synth"]
    assert res["items"] == 4 and res["missing"] == 0 and res["samples"] == 4
    # the served model is the trained checkpoint, and it really answered
    lines = [json.loads(x) for x in (out / "eval" / "synth" / "responses.jsonl").open()]
    assert {x["model"] for x in lines} == {summary["artifacts"]["checkpoint"]}
    assert all(x["usage"]["completion_tokens"] > 0 for x in lines)
    assert (out / "checkpoint" / "config.json").exists()
    assert "<table id='errors'>" in (out / "eval" / "report.html").read_text()


def test_quickstart_never_deletes_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    try:
        main(["--quiet", "quickstart", "--out", str(mine)])
    except SystemExit as exc:
        assert exc.code == 2
    assert (mine / "chapter1.tex").read_text() == "precious"
