"""Ingest: JSONL with image paths, an image folder with a CSV index, a datasets folder."""

from __future__ import annotations

import json

from helpers import figure, read_jsonl

from deepvision.data.reader import iter_problems
from deepvision.records import content_hash


def test_image_folder_with_csv_index_and_field_names(tmp_path, cli):
    raw = tmp_path / "raw"
    (raw / "img").mkdir(parents=True)
    (raw / "img" / "a.png").write_bytes(figure(1))
    (raw / "img" / "b.png").write_bytes(figure(2))
    (raw / "index.csv").write_text(
        "problem,gt,image\n"
        "Find x.,3,img/a.png\n"
        "Find the two angles.,40,img/a.png;img/b.png\n"
        "Missing picture.,1,img/zzz.png\n"
    )
    out = tmp_path / "raw.parquet"
    res = cli("curate", "ingest", raw, out, "--field", "question=problem,answer=gt,images=image")
    assert res.code == 1, res.text  # one unreadable row
    ps = list(iter_problems([out]))
    assert [(p.question, p.answer, len(p.images)) for p in ps] == [
        ("Find x.", "3", 1),
        ("Find the two angles.", "40", 2),
    ]
    assert ps[0].id == content_hash("Find x.", ps[0].images)
    assert ps[0].images[0].bytes == figure(1)
    (drop,) = read_jsonl(tmp_path / "raw.drops.jsonl")
    assert drop["row"] == 4 and "zzz.png" in drop["detail"]


def test_jsonl_and_datasets_folder(tmp_path, cli):
    (tmp_path / "a.png").write_bytes(figure(3))
    lines = [{"question": "Find y.", "answer": 7, "images": ["a.png"], "id": "q1"}]
    (tmp_path / "raw.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert cli("curate", "ingest", tmp_path / "raw.jsonl", tmp_path / "j.parquet").code == 0
    (p,) = iter_problems([tmp_path / "j.parquet"])
    assert (p.id, p.answer, p.images[0].bytes) == ("q1", "7", figure(3))
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {
                "question": "Find z.",
                "images": [{"bytes": figure(4), "path": "z.png"}],
                "reward_model": {"ground_truth": "2", "equivalent_answers": [], "style": "rule"},
            }
        ]
    )
    ds.save_to_disk(str(tmp_path / "hf"))
    assert cli("curate", "ingest", tmp_path / "hf", tmp_path / "h.parquet").code == 0
    (h,) = iter_problems([tmp_path / "h.parquet"])
    assert (h.question, h.answer) == ("Find z.", "2") and h.id


def test_image_paths_outside_the_folder_are_dropped_unless_absolute_ones_are_allowed(tmp_path, cli):
    outside = tmp_path / "outside.png"
    outside.write_bytes(figure(5))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "in.png").write_bytes(figure(6))
    (raw / "index.csv").write_text(
        f"question,answer,images\nInside.,1,in.png\nUp.,2,../outside.png\nAbs.,3,{outside}\n"
    )
    out = tmp_path / "raw.parquet"
    res = cli("curate", "ingest", raw, out)
    assert res.code == 1, res.text
    assert [p.question for p in iter_problems([out])] == ["Inside."]
    drops = {d["row"]: d["detail"] for d in read_jsonl(tmp_path / "raw.drops.jsonl")}
    assert drops == {
        3: f"image path '../outside.png' leaves the data folder {raw}",
        4: f"image path {str(outside)!r} is absolute (outside the data folder)",
    }
    res = cli("curate", "ingest", raw, out, "--allow-absolute-paths", "--overwrite")
    assert res.code == 1, res.text  # `..` stays refused
    ps = list(iter_problems([out]))
    assert [p.question for p in ps] == ["Inside.", "Abs."] and ps[1].images[0].bytes == figure(5)
