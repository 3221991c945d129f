"""Parquet inputs are read by parts (in worker processes, or read ahead in a thread); results
match a one-process run and keep the input order."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DEEPVISION_SCHEMA, deepvision_row, png_bytes, write_rows
from deepvision import records as r
from deepvision.data import export as export_mod
from deepvision.data import sources
from deepvision.data.export import export
from deepvision.data.reader import map_batches, open_sources
from deepvision.data.stats import collect_stats
from deepvision.errors import DataError


@pytest.fixture
def many_parts(tmp_path, monkeypatch):
    """40 rows in row groups of 5, split into parts of 10 rows; row 27 has no reward model."""
    monkeypatch.setattr(sources, "PART_ROWS", 10)
    rows = [deepvision_row(question=f"Q{i}: find x.", answer=str(i)) for i in range(40)]
    rows[27][r.REWARD_MODEL] = None
    path = tmp_path / "many.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), path, row_group_size=5)
    return path


def _first_question(batch):
    return [p.question for p in batch.problems], [j.row for j in batch.rejects]


def test_parts_are_mapped_in_input_order(many_parts):
    srcs = open_sources([many_parts])
    assert len(srcs[0].parts()) == 4
    got = list(map_batches(srcs, _first_question, batch_size=4, workers=2))
    questions = [q for qs, _ in got for q in qs]
    assert questions == [f"Q{i}: find x." for i in range(40) if i != 27]
    assert [row for _, rej in got for row in rej] == [27]


def test_export_numbers_rows_in_the_output_and_keeps_rejects(many_parts, tmp_path):
    out, rej = tmp_path / "out.parquet", tmp_path / "rejects.jsonl"
    rep = export([many_parts], out, "verl", rejects=rej)
    assert (rep.rows_in, rep.written, rep.rejected) == (40, 39, 1)
    extra = pq.read_table(out).column("extra_info").to_pylist()
    assert [e["index"] for e in extra] == list(range(39))  # numbered in the output
    assert [e["question"] for e in extra][27] == "Q28: find x."
    saved = [json.loads(line) for line in rej.read_text().splitlines()]
    assert [s["row"] for s in saved] == [27]
    assert saved[0]["data"]["question"] == "Q27: find x."
    assert saved[0]["data"]["images"][0]["bytes"].startswith("data:")  # bytes kept, not a view


def test_export_ignores_columns_its_format_does_not_use(tmp_path):
    rows = [deepvision_row(question=f"Q{i}") for i in range(3)]
    rows[1][r.PASS_RATE] = "most of them"
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), src)
    rep = export([src], tmp_path / "out.parquet", "verl")
    assert (rep.written, rep.rejected) == (3, 0)
    rep = export([src], tmp_path / "out.jsonl", "jsonl")  # JSONL carries the pass rate
    assert (rep.written, rep.rejected) == (2, 1)


@pytest.fixture
def varied_images(tmp_path):
    """Rows with 0, 1, 2 and null image lists, and one rejected row (placeholder count)."""
    rows = [deepvision_row(question=f"Q{i}", n_images=i % 3) for i in range(9)]
    rows[4][r.IMAGES] = None
    rows[4][r.PROMPT][1]["content"] = "no image here"
    rows[7][r.PROMPT][1]["content"] = "<image><image><image> too many"
    path = tmp_path / "varied.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), path, row_group_size=4)
    return path


@pytest.mark.parametrize("to", ["verl", "trl", "easyr1"])
@pytest.mark.parametrize("batch_size", [3, 256])
def test_images_taken_column_wise_equal_images_from_problems(
    varied_images, tmp_path, monkeypatch, to, batch_size
):
    """Table exports take the images column from Arrow; the Problems' own bytes give the
    same file (the path used for inputs without an Arrow images column)."""
    fast, slow = tmp_path / "fast.parquet", tmp_path / "slow.parquet"
    export([varied_images], fast, to, batch_size=batch_size)
    monkeypatch.setattr(export_mod, "_arrow_images", lambda *a, **k: None)
    monkeypatch.setattr(export_mod, "_verl_columns", lambda *a: None)
    export([varied_images], slow, to, batch_size=batch_size)
    a, b = pq.read_table(fast), pq.read_table(slow)
    assert a.num_rows == 8 and a.equals(b) and a.schema.equals(b.schema, check_metadata=True)
    counts = [len(x) for x in a.column("images").to_pylist()]
    assert counts == [0, 1, 2, 0, 0, 2, 0, 2]  # the null list exported as no images


def test_parallel_stats_equal_single_process(many_parts):
    one = collect_stats([many_parts], workers=1)
    two = collect_stats([many_parts], workers=2)
    assert two.rows == one.rows == 39 and two.rejected == one.rejected == 1
    assert two.topics == one.topics and two.answer_kinds == one.answer_kinds
    assert list(two.question_chars) == list(one.question_chars)
    assert list(two.image_widths) == list(one.image_widths) == [32] * 39
    assert [j.row for j in two.rejects] == [27]


def test_corrupt_row_group_is_named_when_read_ahead(many_parts, tmp_path):
    data = bytearray(many_parts.read_bytes())
    meta = pq.ParquetFile(many_parts).metadata
    col = meta.row_group(5).column(1)  # images of rows 25-29
    start = col.data_page_offset
    data[start : start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        export([bad], tmp_path / "out.parquet", "verl")
    assert err.value.file == str(bad)
    assert "row group 5 (rows 25-29)" in err.value.reason
    assert not (tmp_path / "out.parquet").exists()


def test_mixed_inputs_keep_their_order(many_parts, tmp_path, cli):
    jsonl = tmp_path / "more.jsonl"
    assert cli("data", "export", "--to", "jsonl", "--out", jsonl).code == 0  # the sample, 240 rows
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    export([many_parts, jsonl], one, "verl")
    rep = export([jsonl, many_parts], two, "verl")
    assert rep.written == 240 + 39
    a, b = (
        pq.read_table(one).column("extra_info").to_pylist(),
        pq.read_table(two).column("extra_info").to_pylist(),
    )
    assert [x["id"] for x in a[:39]] == [x["id"] for x in b[240:]]
    assert [x["id"] for x in a[39:]] == [x["id"] for x in b[:240]]
    assert [x["index"] for x in b] == list(range(279))


def test_parallel_validate_matches_one_process_and_keeps_duplicate_rows_whole(
    tmp_path, monkeypatch
):
    from deepvision.data.validate import validate

    monkeypatch.setattr(sources, "PART_ROWS", 10)
    rows = [deepvision_row(question=f"Q{i}: find x.", answer=str(i)) for i in range(40)]
    rows[33] = deepvision_row(question="Q3: find x.", answer="3")  # same content as row 3
    rows[12][r.PASS_RATE] = "most"
    path = tmp_path / "dups.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), path, row_group_size=5)
    reports = []
    for workers in (1, 2):
        rej = tmp_path / f"rejects-{workers}.jsonl"
        rep = validate([path], rejects_path=rej, workers=workers)
        saved = {x["row"]: x for x in map(json.loads, rej.read_text().splitlines())}
        assert (rep.rows_in, rep.valid, rep.rejected) == (40, 38, 2)
        assert sorted(saved) == [12, 33]
        assert saved[33]["data"]["question"] == "Q3: find x."  # the raw row, re-read
        assert (
            "first at" in saved[33]["reasons"][0]["reason"]
            and "row 3" in saved[33]["reasons"][0]["reason"]
        )
        reports.append((rep.issues_by_column, sorted(rep.examples)))
    assert reports[0] == reports[1]


def _verl_rows(with_ids: bool) -> list[dict]:
    rows = [deepvision_row(question=f"Q{i}", answer=str(i), n_images=i % 3) for i in range(10)]
    rows[1][r.REWARD_MODEL]["equivalent_answers"] = [r.EMPTY_SENTINEL]
    rows[2][r.REWARD_MODEL]["equivalent_answers"] = None
    rows[3][r.DATA_SOURCE] = ""
    rows[4][r.ABILITY] = None
    rows[5][r.PROMPT] = None  # the question is the user text
    rows[6][r.DOMAIN_ANNO] = None
    rows[7][r.PROMPT][1]["content"] = "Which one?"  # no placeholder: put in front
    for i, row in enumerate(rows):
        row[r.OPTIONS] = ["1", "2", "3"] if i % 4 == 0 else ([] if i == 9 else None)
        row[r.ID] = f"p{i}" if with_ids and i != 8 else None
    return rows


@pytest.mark.parametrize("with_ids", [True, False])
@pytest.mark.parametrize("system_prompt", [None, "Be brief."])
def test_verl_built_column_wise_equals_problem_by_problem(
    tmp_path, monkeypatch, with_ids, system_prompt
):
    schema = pa.schema(
        [*DEEPVISION_SCHEMA, (r.ID, pa.string()), (r.OPTIONS, pa.list_(pa.string()))]
    )
    src = write_rows(tmp_path / "in.parquet", _verl_rows(with_ids), schema)
    fast, slow = tmp_path / "fast.parquet", tmp_path / "slow.parquet"
    opts = export_mod.ExportOptions(system_prompt=system_prompt)
    calls = []
    real = export_mod._verl_columns
    monkeypatch.setattr(export_mod, "_verl_columns", lambda *a: calls.append(1) or real(*a))
    export([src], fast, "verl", opts, batch_size=4)
    batches = open_sources([src])[0].batches(4)
    assert calls and all(real(rb, opts, export_mod.Admission()) is not None for rb in batches)
    monkeypatch.setattr(export_mod, "_verl_columns", lambda *a: None)
    export([src], slow, "verl", opts, batch_size=4)
    a, b = pq.read_table(fast), pq.read_table(slow)
    assert a.num_rows == 10 and a.equals(b) and a.schema.equals(b.schema, check_metadata=True)


def test_verl_batches_with_a_bad_row_go_problem_by_problem(tmp_path):
    rows = _verl_rows(with_ids=False)
    rows[5][r.PROMPT] = [{"content": "<image><image> x", "role": "user"}]  # 2 for 2 images
    rows[6][r.PROMPT] = [{"content": "<image><image> x", "role": "user"}]  # 2 for 0 images
    schema = pa.schema(
        [*DEEPVISION_SCHEMA, (r.ID, pa.string()), (r.OPTIONS, pa.list_(pa.string()))]
    )
    src = write_rows(tmp_path / "in.parquet", rows, schema)
    rep = export([src], tmp_path / "out.parquet", "verl", batch_size=4)
    assert (rep.written, rep.rejected) == (9, 1)
    assert "row 6" in rep.reject_examples[0] and "placeholder" in rep.reject_examples[0]


def test_items_hidden_under_null_lists_stay_hidden(tmp_path, cli):
    """Arrow lets a null list still span items (parquet never writes that; an Arrow file of a
    `save_to_disk` folder can). Row 0's images list is null over its own image: it has no
    images, and every other row keeps its own image in validate, stats and the verl export."""
    import datasets

    rows = [
        deepvision_row(question=f"q{i}", images=[{"bytes": png_bytes((9 * i, 80, 20)), "path": ""}])
        for i in range(6)
    ]
    rows[0][r.PROMPT][1]["content"] = "q0"  # no placeholder: a row without images is valid
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    (arrow_file,) = folder.glob("*.arrow")
    with pa.ipc.open_stream(pa.BufferReader(arrow_file.read_bytes())) as reader:
        table = reader.read_all().combine_chunks()
    images = table.column(r.IMAGES).chunk(0)
    hidden = pa.ListArray.from_arrays(
        images.offsets, images.values, mask=pa.array([True] + [False] * 5)
    )
    assert hidden.null_count == 1 and len(hidden.flatten()) == 5  # flatten drops the hidden one
    table = table.set_column(table.schema.get_field_index(r.IMAGES), r.IMAGES, hidden)
    with pa.ipc.new_stream(arrow_file, table.schema) as writer:
        writer.write_table(table)

    assert cli("data", "validate", folder).code == 0
    out = tmp_path / "verl.parquet"
    assert cli("data", "export", folder, "--to", "verl", "--out", out).code == 0
    exported = pq.read_table(out).column("images").to_pylist()
    assert [[im["bytes"] for im in ims] for ims in exported] == [[]] + [
        [row[r.IMAGES][0]["bytes"]] for row in rows[1:]
    ]
    stats = collect_stats([folder], workers=1)
    assert (stats.rows, stats.rejected) == (6, 0)
    assert list(stats.image_widths) == [32] * 5


def _children(psutil, pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
def test_pool_workers_end_when_their_command_is_killed(tmp_path):
    """`kill -9` of `data validate` while its pool works: no worker outlives it (they would
    wait on the task queue for ever, holding their memory)."""
    psutil = pytest.importorskip("psutil", reason="finds the worker processes")
    import io
    import subprocess
    import sys
    import time

    from PIL import Image

    buf = io.BytesIO()
    Image.effect_noise((160, 160), 60).convert("RGB").save(buf, format="PNG")
    image = [{"bytes": buf.getvalue(), "path": "noise.png"}]
    rows = [deepvision_row(question=f"Q{i}", images=image) for i in range(3 * 1024)]
    path = tmp_path / "big.parquet"  # 3 parts of 1024 rows
    table = pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA)
    pq.write_table(table, path, row_group_size=256)
    cmd = [sys.executable, "-m", "deepvision.cli.main", "data", "validate", str(path)]
    proc = subprocess.Popen([*cmd, "--workers", "2", "-q"], stdout=subprocess.DEVNULL)
    workers: list = []
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and len(workers) < 2:
        workers = _children(psutil, proc.pid)
        time.sleep(0.005)
    assert len(workers) >= 2, "validate ended before its workers were seen"
    proc.kill()
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:  # do not leave them behind for the next test
        p.kill()
    assert alive == [], f"{len(alive)} worker(s) outlived their command"
