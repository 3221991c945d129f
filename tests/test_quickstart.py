"""`deepvision quickstart` end to end on CPU: every stage runs on the real engines (TRL GSPO,
transformers serve, eval), held-out accuracy is measured before and after training on the
colour task, and the summary, report and artifacts agree with each other. (That the model
learns to >= 0.80 takes the full default run, minutes: checked by hand, docs/quickstart.md.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepvision.cli.main import main
from deepvision.data.synth.colour import ANSWER_FORMS, colour_problems, colour_split
from deepvision.data.writer import ProblemWriter
from deepvision.eval.benchmark import LoadReport
from deepvision.eval.benchmarks.synth import Synth
from deepvision.quickstart import STAGES


def _responses(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "synth" / "responses.jsonl").open()]


@pytest.mark.slow
def test_quickstart_measures_heldout_accuracy_before_and_after_gspo(tmp_path, capsys):
    """Small settings (about a minute): the figures, the report and the eval runs agree."""
    out = tmp_path / "qs"
    try:
        small = ["--problems", "8", "--train-problems", "64", "--heldout", "8", "--steps", "2"]
        main(["--quiet", "quickstart", "--out", str(out), *small])
    except SystemExit as exc:
        assert exc.code in (0, None)
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert tuple(summary["seconds"]) == STAGES
    for name, path in summary["artifacts"].items():
        assert name in printed and Path(path).exists(), name
    f = summary["figures"]
    assert f["valid_rows"] == 8 and f["train_steps"] == 2
    assert [p["step"] for p in f["reward_curve"]] == [1, 2]
    assert all(0 <= p["reward"] <= 1 for p in f["reward_curve"])
    assert "bad_words_ids" in summary["constrained_decoding"]
    served = {
        "before": summary["artifacts"]["tiny_model"],
        "after": summary["artifacts"]["checkpoint"],
    }
    for when in ("before", "after"):
        figures, folder = f["heldout"][when], out / f"eval-{when}"
        results = json.loads((folder / "results.json").read_text())["benchmarks"]["synth"]
        # the summary's figure is the eval run's, over all 8 held-out items
        assert f[f"heldout_accuracy_{when}"] == results["accuracy"]["value"] == figures["accuracy"]
        assert results["items"] == 8 and results["missing"] == 0 and figures["unparsed"] == 0
        lines = _responses(folder)
        # served by transformers serve from the model named, constrained to the four answers
        assert {x["model"] for x in lines} == {served[when]}
        assert {x["model_response"] for x in lines} <= set(ANSWER_FORMS)
        hits = sum(x["model_response"] == f"\\boxed{{{x['answer']}}}" for x in lines)
        assert hits / 8 == figures["accuracy"]
    assert "before training" in printed and "after GSPO" in printed
    # the trained checkpoint keeps the restriction transformers serve applies
    generation = json.loads((out / "checkpoint" / "generation_config.json").read_text())
    assert len(generation["bad_words_ids"]) > 100
    report = (out / "report.html").read_text()
    assert "eval-before/report.html" in report and "eval-after/report.html" in report
    assert "reward_curve.png" in report and "bad_words_ids" in report
    assert (out / "reward_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quickstart_never_deletes_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    try:
        main(["--quiet", "quickstart", "--out", str(mine)])
    except SystemExit as exc:
        assert exc.code == 2
    assert (mine / "chapter1.tex").read_text() == "precious"


def test_colour_heldout_images_are_never_training_images():
    train, heldout = colour_split(400, 100, seed=0)
    assert len(train) == 400 and len(heldout) == 100
    seen = {p.images[0].sha1() for p in train}
    assert not seen & {p.images[0].sha1() for p in heldout}
    assert {p.answer for p in heldout} == set("ABCD")
    again = colour_split(400, 100, seed=0)[1]
    assert [p.images[0].bytes for p in again] == [p.images[0].bytes for p in heldout]


def test_synth_benchmark_reads_synth_parquet_from_data_dir(tmp_path):
    problems = colour_problems(5, seed=3)
    with ProblemWriter(tmp_path / "synth.parquet") as w:
        w.write(problems)
    report = LoadReport()
    items = list(Synth().load(tmp_path, report))
    assert [p.id for p in items] == [p.id for p in problems]
    assert report.layout == "problems" and report.rows == 5
    assert items[0].question.endswith("A. red\nB. green\nC. blue\nD. yellow")
    assert items[0].extra["categories"] == {"domain": "Perception", "family": "colour"}
    # without synth.parquet: the embedded items, as before
    assert len(list(Synth().load(tmp_path / "elsewhere"))) == Synth.size
