"""`data export`: what each trainer reads is what it expects."""

import json

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import deepvision_row, write_rows
from deepvision import records as r
from deepvision.data import export as export_mod
from deepvision.data.export import FORMATS, ExportFormat, Written, export
from deepvision.data.prompts import DEFAULT_SYSTEM_PROMPT
from deepvision.data.reader import iter_problems
from deepvision.data.writer import TextOutput
from deepvision.errors import UsageError


def _export(cli, src, tmp_path, fmt, *extra):
    out = tmp_path / (f"{fmt}.jsonl" if fmt == "jsonl" else f"{fmt}.parquet")
    res = cli("data", "export", src, "--to", fmt, "--out", out, *extra)
    assert res.code == 0, res.text
    return out


def test_verl_layout(cli, tmp_path, deepvision_file):
    out = _export(cli, deepvision_file, tmp_path, "verl")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert set(ds.column_names) == {
        "data_source",
        "prompt",
        "images",
        "ability",
        "reward_model",
        "extra_info",
    }
    for i, row in enumerate(ds):
        user = row["prompt"][-1]
        assert row["prompt"][0] == {"role": "system", "content": "Think step by step."}
        assert user["role"] == "user"
        assert user["content"].count("<image>") == len(row["images"]) == 1 + i % 2
        assert set(row["images"][0]) == {"bytes"}
        assert row["reward_model"]["style"] == "rule"
        assert row["reward_model"]["ground_truth"] == str(i)
        assert row["extra_info"]["index"] == i and row["extra_info"]["id"]
        assert row["extra_info"]["equivalent_answers"] == ["37/2", "18.5"]


def test_verl_adds_placeholders_and_options_to_bare_questions(cli, tmp_path, synth_file):
    out = _export(cli, synth_file, tmp_path, "verl", "--system-prompt", "Be brief.")
    rows = pq.read_table(out).to_pylist()
    assert rows[0]["prompt"][0]["content"] == "Be brief."
    mc = next(x for x in rows if x["extra_info"]["options"])
    assert "A. " in mc["prompt"][-1]["content"] and mc["reward_model"]["ground_truth"] in "ABCD"


def test_trl_layout_has_no_placeholder_text_and_pil_images(cli, tmp_path, deepvision_file):
    out = _export(cli, deepvision_file, tmp_path, "trl", "--no-system-prompt")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    row = ds[1]
    assert [m["role"] for m in row["prompt"]] == ["user"]
    assert "<image>" not in row["prompt"][0]["content"]
    assert len(row["images"]) == 2 and all(isinstance(im, Image.Image) for im in row["images"])
    assert row["answer"] == "1" and row["equivalent_answers"] == ["37/2", "18.5"]


def test_easyr1_layout(cli, tmp_path, deepvision_file):
    out = _export(cli, deepvision_file, tmp_path, "easyr1")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert {"problem", "answer", "images"} <= set(ds.column_names)
    assert ds[1]["problem"].count("<image>") == len(ds[1]["images"]) == 2


def test_easyr1_answer_carries_equivalents_and_options(cli, tmp_path, synth_file):
    out = _export(cli, synth_file, tmp_path, "easyr1")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    answers = ds["answer"]
    assert all(set(a) == {"ground_truth", "equivalent_answers", "options"} for a in answers)
    mc = next(a for a in answers if a["options"])
    assert mc["ground_truth"] in "ABCD" and len(mc["options"]) >= 2
    assert any(a["equivalent_answers"] for a in answers)


def _prompt_rows(tmp_path):
    """A row with a stored prompt (system "Think step by step.") and one without any."""
    bare = deepvision_row(question="No stored prompt: find y.")
    bare[r.PROMPT] = None
    return write_rows(tmp_path / "in.parquet", [deepvision_row(), bare])


@pytest.mark.parametrize("fmt", ["verl", "trl", "jsonl"])
def test_export_keeps_each_rows_stored_system_prompt(cli, tmp_path, fmt):
    out = _export(cli, _prompt_rows(tmp_path), tmp_path, fmt)
    if fmt == "jsonl":
        prompts = [json.loads(x)["messages"] for x in out.read_text().splitlines()]
    else:
        prompts = pq.read_table(out).column("prompt").to_pylist()
    assert prompts[0][0] == {"role": "system", "content": "Think step by step."}
    assert prompts[1][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}


@pytest.mark.parametrize(
    ("option", "system"),
    [(("--system-prompt", "Be brief."), ["Be brief."]), (("--no-system-prompt",), [])],
)
def test_a_chosen_system_prompt_replaces_the_stored_one(cli, tmp_path, option, system):
    out = _export(cli, _prompt_rows(tmp_path), tmp_path, "verl", *option)
    for prompt in pq.read_table(out).column("prompt").to_pylist():
        assert [m["content"] for m in prompt if m["role"] == "system"] == system


@pytest.mark.parametrize("fmt", ["verl", "trl", "easyr1", "jsonl"])
@pytest.mark.parametrize("batch_size", ["1", "256"])
def test_rows_that_can_never_be_rewarded_are_rejected(cli, tmp_path, fmt, batch_size):
    rows = [
        deepvision_row(question="q0"),
        deepvision_row(question="q1", answer=" "),
        deepvision_row(question="q2"),
        deepvision_row(question="q0"),  # same question and image: the same id as row 0
    ]
    src = write_rows(tmp_path / "in.parquet", rows)
    out = tmp_path / ("o.jsonl" if fmt == "jsonl" else "o.parquet")
    rej = tmp_path / "rej.jsonl"
    args = ("--out", out, "--rejects", rej, "--batch-size", batch_size)
    res = cli("data", "export", src, "--to", fmt, *args)
    assert res.code == 1, res.text
    assert f"rows in: 4 = 2 written to {out} + 2 rejected" in res.err
    rejected = {x["row"]: x for x in map(json.loads, rej.read_text().splitlines())}
    assert sorted(rejected) == [1, 3]
    assert "ground_truth is empty" in json.dumps(rejected[1])
    assert "duplicate id" in json.dumps(rejected[3]) and "row 0" in json.dumps(rejected[3])
    if fmt == "jsonl":
        written = [json.loads(x)["question"] for x in out.read_text().splitlines()]
    else:
        written = [len(pq.read_table(out))]
    assert written in (["q0", "q2"], [2])


def test_jsonl_writes_each_image_once_and_reads_back(cli, tmp_path):
    rows = [deepvision_row(question=f"q{i}") for i in range(4)]  # all share one image
    src = write_rows(tmp_path / "in.parquet", rows)
    out = _export(cli, src, tmp_path, "jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["question"] for x in lines] == ["q0", "q1", "q2", "q3"]
    assert {"id", "question", "options", "answer", "images", "messages"} <= set(lines[0])
    images = list((tmp_path / "jsonl_images").iterdir())
    assert len(images) == 1 and lines[0]["images"] == [f"jsonl_images/{images[0].name}"]
    back = list(iter_problems([out]))
    assert back[2].images[0].bytes == rows[2][r.IMAGES][0]["bytes"]
    assert back[2].pass_rate.correct == 2 and back[2].topic[0] == "Geometry"


def test_jsonl_inline_images(cli, tmp_path, deepvision_file):
    out = _export(cli, deepvision_file, tmp_path, "jsonl", "--inline-images")
    first = json.loads(out.read_text().splitlines()[0])
    assert first["images"][0].startswith("data:image/png;base64,")
    assert not (tmp_path / "jsonl_images").exists()


def test_placeholder_mismatch_rows_are_rejected_not_exported(cli, tmp_path):
    bad = deepvision_row(question="two images, one placeholder", n_images=2)
    bad[r.PROMPT] = [{"content": "<image>Find x.", "role": "user"}]
    src = write_rows(tmp_path / "in.parquet", [deepvision_row(), bad])
    out, rej = tmp_path / "v.parquet", tmp_path / "rej.jsonl"
    res = cli("data", "export", src, "--to", "verl", "--out", out, "--rejects", rej)
    assert res.code == 1
    assert f"rows in: 2 = 1 written to {out} + 1 rejected" in res.err
    assert "1 <image> placeholder(s) but the problem has 2 image(s)" in res.err
    assert pq.read_metadata(out).num_rows == 1
    assert json.loads(rej.read_text())["row"] == 1


def test_the_export_registry_is_what_the_cli_offers(cli, tmp_path, deepvision_file):
    assert list(FORMATS) == ["verl", "trl", "easyr1", "jsonl"]
    assert all(issubclass(f, ExportFormat) and f.name == name for name, f in FORMATS.items())
    assert {f.suffix for f in FORMATS.values()} == {".parquet", ".jsonl"}
    assert " | ".join(FORMATS) in cli("data", "export", "--help").out
    res = cli("data", "export", "--to", "csv", "--out", tmp_path / "x.csv")
    assert res.code == 2 and "verl, trl, easyr1, jsonl" in res.err
    with pytest.raises(UsageError) as info:
        export([deepvision_file], tmp_path / "x.csv", "csv")
    assert info.value.param == "to" and not (tmp_path / "x.csv").exists()


def test_a_format_added_to_the_registry_is_exported(cli, tmp_path, monkeypatch, synth_file):
    class _Ids(TextOutput):
        pass

    class IdsFormat(ExportFormat):
        name, suffix, columns, description = "ids", ".txt", (r.ID,), "one id a line"

        def __init__(self, out, opts):
            super().__init__(out, opts)
            self.file = _Ids(out)

        def outputs(self):
            return [self.file]

        def write(self, rb, first_index):
            for k, sr in enumerate(rb.rows):  # only the columns asked for were read
                assert set(sr.fields) == {r.ID}
                self.file._fh.write(f"{first_index + k}:{sr.fields[r.ID]}\n")
            return Written(len(rb.rows), len(rb.rows), [])

    monkeypatch.setitem(export_mod.FORMATS, "ids", IdsFormat)
    res = cli("data", "export", synth_file, "--to", "ids", "--out", tmp_path / "ids.txt")
    assert res.code == 0, res.text
    ids = [p.id for p in iter_problems([synth_file])]
    assert (tmp_path / "ids.txt").read_text() == "".join(f"{i}:{x}\n" for i, x in enumerate(ids))
