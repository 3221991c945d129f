"""Readers and writers: every input format, lossless round trip, streaming in batches."""

import base64
import json

import pyarrow.parquet as pq
import pytest

from conftest import deepvision_row, png_bytes, write_rows
from deepvision.data.reader import common_schema, iter_problems, open_sources
from deepvision.data.sources import HFDiskSource, JsonlSource, ParquetShardsSource, open_source
from deepvision.data.writer import ProblemWriter
from deepvision.errors import DataError


def test_deepvision_parquet_round_trip_is_lossless(deepvision_file, tmp_path):
    sources = open_sources([deepvision_file])
    out = tmp_path / "back.parquet"
    with ProblemWriter(out, common_schema(sources)) as w:
        w.write(list(iter_problems([deepvision_file])))
    before, after = pq.read_table(deepvision_file), pq.read_table(out)
    assert after.schema.equals(before.schema)
    assert after.equals(before)


def test_our_problem_parquet_round_trip_keeps_every_field(synth_file, synth_problems):
    back = list(iter_problems([synth_file]))
    assert [p.id for p in back] == [p.id for p in synth_problems]
    for a, b in zip(back, synth_problems, strict=True):
        assert (a.question, a.answer, a.options, a.topic) == (
            b.question,
            b.answer,
            b.options,
            b.topic,
        )
        assert a.visual_elements == b.visual_elements
        assert a.images[0].bytes == b.images[0].bytes


def test_visual_logic_file_without_annotation_columns_reads(tmp_path):
    import pyarrow as pa

    from conftest import DEEPVISION_SCHEMA

    keep = ["question", "images", "data_source", "prompt", "reward_model"]
    schema = pa.schema([DEEPVISION_SCHEMA.field(c) for c in keep])
    rows = [{k: v for k, v in deepvision_row(answer="C").items() if k in keep}]
    path = write_rows(tmp_path / "visual_logic-26k.parquet", rows, schema)
    (p,) = iter_problems([path])
    assert p.answer == "C" and p.topic == [] and p.pass_rate is None


def test_reader_streams_in_bounded_batches(synth_file):
    src = open_source(synth_file)
    sizes = [len(b.rows) for b in src.batches(batch_size=16)]
    assert sum(sizes) == 60 and max(sizes) == 16
    rows = [r.row for b in src.batches(batch_size=16) for r in b.rows]
    assert rows == list(range(60))


def test_parquet_shards_folder(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_rows(folder / "part-0.parquet", [deepvision_row(question="q0")])
    write_rows(
        folder / "part-1.parquet", [deepvision_row(question="q1"), deepvision_row(question="q2")]
    )
    src = open_source(folder)
    assert isinstance(src, ParquetShardsSource)
    assert [p.question for p in iter_problems([folder])] == ["q0", "q1", "q2"]


def test_datasets_save_to_disk_folder(tmp_path):
    import datasets

    rows = [deepvision_row(question=f"q{i}") for i in range(5)]
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "saved"))
    src = open_source(tmp_path / "saved")
    assert isinstance(src, HFDiskSource)
    ps = list(iter_problems([tmp_path / "saved"]))
    assert [p.question for p in ps] == [f"q{i}" for i in range(5)]
    assert ps[0].images[0].bytes == rows[0]["images"][0]["bytes"]
    assert ps[0].pass_rate.correct == 2


def test_jsonl_with_relative_paths_and_data_uris(tmp_path):
    (tmp_path / "imgs").mkdir()
    img = png_bytes((10, 200, 10))
    (tmp_path / "imgs" / "a.png").write_bytes(img)
    uri = "data:image/png;base64," + base64.b64encode(img).decode()
    lines = [
        {"id": "p1", "question": "Find x.", "images": ["imgs/a.png"], "answer": "3",
         "topic": "Geometry/Plane Geometry", "pass_rate": "1/8"},
        {"id": "p2", "question": "Which?", "images": [uri], "answer": "B", "options": ["1", "2"]},
    ]  # fmt: skip
    path = tmp_path / "problems.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert isinstance(open_source(path), JsonlSource)
    p1, p2 = iter_problems([path])
    assert p1.images[0].bytes == img and p1.images[0].path == "imgs/a.png"
    assert p1.topic == ["Geometry", "Plane Geometry"] and str(p1.pass_rate) == "1/8"
    assert p2.images[0].bytes == img and p2.options == ["1", "2"]


def test_jsonl_image_paths_outside_the_data_folder_are_rejected_unread(tmp_path, cli, monkeypatch):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes((1, 2, 3)))  # a valid image: reading it would pass the row
    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    (data / "imgs" / "ok.png").write_bytes(png_bytes())
    (data / "imgs" / "link.png").symlink_to(outside)
    refs = ["imgs/ok.png", "../secret.png", str(outside), "imgs/../../secret.png", "imgs/link.png"]
    path = data / "problems.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "question": "Find x.", "images": [ref], "answer": "3"})
            + "\n"
            for i, ref in enumerate(refs)
        )
    )
    read = []
    real_read_bytes = type(outside).read_bytes
    monkeypatch.setattr(
        type(outside),
        "read_bytes",
        lambda self: read.append(self.resolve()) or real_read_bytes(self),
    )
    rejects = tmp_path / "rejects.jsonl"
    res = cli("data", "validate", path, "--rejects", rejects)
    assert res.code == 1
    assert "rows in 5 = 1 valid + 4 rejected" in res.out
    reasons = {
        json.loads(line)["row"]: json.loads(line)["reasons"][0]["reason"]
        for line in rejects.read_text().splitlines()
    }
    assert reasons == {
        2: f"image path '../secret.png' leaves the data folder {data}",
        3: f"image path {str(outside)!r} is absolute (outside the data folder)",
        4: f"image path 'imgs/../../secret.png' leaves the data folder {data}",
        5: f"image path 'imgs/link.png' leaves the data folder {data}",
    }
    assert outside.resolve() not in read and read  # the image inside was read, none outside


def test_missing_input_names_the_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_source(tmp_path / "nope.parquet")


def test_writer_is_atomic_on_failure(tmp_path, synth_problems):
    out = tmp_path / "o.parquet"
    with pytest.raises(RuntimeError), ProblemWriter(out) as w:
        w.write(synth_problems[:3])
        raise RuntimeError("crash mid-write")
    assert not out.exists()
    assert not (tmp_path / "o.parquet.tmp").exists()
