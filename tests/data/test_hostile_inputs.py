"""Hostile inputs to the data commands: bad text, paths that leave the data folder, mixed
folders, images that do not decode, outputs that are inputs, and malformed files of every
kind. Each is a named rejection or a one-line error, never a traceback or a silent skip."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import DEEPVISION_SCHEMA, deepvision_row, png_bytes, write_rows
from deepvision import records as r
from deepvision.data import export as export_mod
from deepvision.data.export import ExportFormat, Written
from deepvision.data.writer import TextOutput

# Every data command that reads inputs, as (arguments after the input, outputs it writes).
COMMANDS = {
    "validate": ("validate", []),
    "stats": ("stats", ["--out", "st"]),
    "filter": ("filter", ["--out", "f.parquet"]),
    "sample": ("sample", ["--n", "2", "--out", "s.parquet"]),
    "split": ("split", ["--train", "tr.parquet", "--test", "te.parquet", "--test-size", "0.5"]),
    "dedup": ("dedup", ["--out", "d.parquet"]),
    "export-verl": ("export", ["--to", "verl", "--out", "v.parquet"]),
    "export-trl": ("export", ["--to", "trl", "--out", "t.parquet"]),
    "export-easyr1": ("export", ["--to", "easyr1", "--out", "e.parquet"]),
    "export-jsonl": ("export", ["--to", "jsonl", "--out", "j.jsonl"]),
}
REJECTING = [c for c in COMMANDS if c != "stats"]  # stats has no --rejects


def _run(cli, tmp_path, command, *inputs, rejects=None, extra=()):
    name, args = COMMANDS[command]
    out = [
        str(tmp_path / a) if a.endswith((".parquet", ".jsonl")) or a == "st" else a for a in args
    ]
    more = ["--rejects", str(rejects)] if rejects else []
    return cli("data", name, *inputs, *out, *more, *extra)


def _saved(path: Path) -> dict[int, dict]:
    return {x["row"]: x for x in map(json.loads, path.read_text().splitlines())}


def _with_raw_text(path: Path, rows: list[dict], column: str, bad: dict[int, bytes]) -> Path:
    """`rows` as parquet whose string `column` holds the raw bytes `bad` (row -> bytes)."""
    table = pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA)
    i = table.schema.get_field_index(column)
    values = [None if v is None else v.encode() for v in table.column(i).to_pylist()]
    for row, raw in bad.items():
        values[row] = raw
    text = pa.array(values, pa.binary()).view(pa.string())  # not checked: any bytes go in
    pq.write_table(table.set_column(i, column, text), path)
    return path


# ------------------------------------------------------------------ item 6: invalid UTF-8


@pytest.fixture
def bad_text(tmp_path):
    """4 rows; row 2's question holds bytes that are not UTF-8."""
    rows = [deepvision_row(question=f"Q{i}: find x.", answer=str(i)) for i in range(4)]
    return _with_raw_text(tmp_path / "bad-text.parquet", rows, r.QUESTION, {2: b"caf\xe9 \xff"})


@pytest.mark.parametrize("command", REJECTING)
def test_invalid_utf8_rejects_the_row_naming_row_and_column(cli, tmp_path, bad_text, command):
    rejects = tmp_path / "rejects.jsonl"
    res = _run(cli, tmp_path, command, bad_text, rejects=rejects)
    assert res.code == 1, res.text
    assert "Traceback" not in res.text
    assert "row 2" in res.text and "column 'question'" in res.text and "UTF-8" in res.text
    if command != "validate":
        assert "rows in: 4 = " in res.err and "+ 1 rejected" in res.err
    else:
        assert "rows in 4 = 3 valid + 1 rejected" in res.out
    saved = _saved(rejects)
    assert list(saved) == [2]
    assert saved[2]["reasons"][0]["column"] == "question"
    # The row is kept whole: the undecodable text as its bytes, the rest as read.
    raw = saved[2]["data"][r.QUESTION]
    assert base64.b64decode(raw.split(",", 1)[1]) == b"caf\xe9 \xff"
    assert saved[2]["data"][r.REWARD_MODEL]["ground_truth"] == "2"


def test_stats_counts_invalid_utf8_rows_as_rejected(cli, tmp_path, bad_text):
    res = _run(cli, tmp_path, "stats", bad_text)
    assert res.code == 1, res.text
    assert "row 2" in res.err and "UTF-8" in res.err
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())
    assert (stats["rows"], stats["rejected_rows"]) == (3, 1)


def test_invalid_utf8_in_an_annotation_column_goes_the_problem_way(cli, tmp_path):
    """Column-wise readers (stats, verl export) leave such a batch to the Problem path."""
    rows = [deepvision_row(question=f"Q{i}", answer=str(i)) for i in range(3)]
    path = _with_raw_text(
        tmp_path / "anno.parquet", rows, r.DOMAIN_ANNO, {0: b'{"Level_1": "\xc3"}'}
    )
    res = _run(cli, tmp_path, "export-verl", path)
    assert res.code == 1 and "row 0" in res.err and "column 'domain-anno'" in res.err
    assert pq.read_metadata(tmp_path / "v.parquet").num_rows == 2
    res = _run(cli, tmp_path, "stats", path)
    assert res.code == 1
    assert json.loads((tmp_path / "st" / "stats.json").read_text())["rejected_rows"] == 1


# ------------------------------------------------------------------ item 7: paths in JSONL


@pytest.fixture
def escaping_jsonl(tmp_path):
    """A JSONL whose rows 2-5 name images outside its folder; row 1's image is inside."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes((1, 2, 3)))
    data = tmp_path / "data" / "deep"
    data.mkdir(parents=True)
    (data / "in.png").write_bytes(png_bytes())
    refs = ["in.png", "../../secret.png", str(secret), "/etc/passwd", "../deep/../../secret.png"]
    path = data / "problems.jsonl"
    lines = [
        {"question": f"<image>Q{i}", "answer": "3", "images": [ref]} for i, ref in enumerate(refs)
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path, secret


@pytest.mark.parametrize("command", ["validate", "export-verl", "export-jsonl", "filter"])
def test_jsonl_paths_outside_the_folder_are_named_rejections_never_read(
    cli, tmp_path, escaping_jsonl, command
):
    path, secret = escaping_jsonl
    rejects = tmp_path / "rejects.jsonl"
    res = _run(cli, tmp_path, command, path, rejects=rejects)
    assert res.code == 1, res.text
    saved = _saved(rejects)
    assert sorted(saved) == [2, 3, 4, 5]
    assert all(s["reasons"][0]["column"] == "images" for s in saved.values())
    assert "'../../secret.png' leaves the data folder" in saved[2]["reasons"][0]["reason"]
    assert "'/etc/passwd' is absolute" in saved[4]["reasons"][0]["reason"]
    assert saved[4]["data"]["images"] == ["/etc/passwd"]  # the line as written, nothing read
    written = rejects.read_text()
    assert "root:" not in written and base64.b64encode(secret.read_bytes()).decode() not in written
    for made in tmp_path.rglob("*"):  # no output holds the bytes from outside
        assert made.is_dir() or made == secret or secret.read_bytes() not in made.read_bytes()


def test_allow_absolute_paths_admits_absolute_paths_only(cli, tmp_path, escaping_jsonl):
    path, secret = escaping_jsonl
    rejects = tmp_path / "rejects.jsonl"
    res = _run(cli, tmp_path, "validate", path, rejects=rejects, extra=["--allow-absolute-paths"])
    assert res.code == 1, res.text
    saved = _saved(rejects)
    assert sorted(saved) == [2, 4, 5]  # row 3 (absolute, a PNG) is read; `..` stays refused
    assert "image 0" in saved[4]["reasons"][0]["reason"]  # /etc/passwd read: not an image
    res = _run(cli, tmp_path, "export-verl", path, extra=["--allow-absolute-paths"])
    images = pq.read_table(tmp_path / "v.parquet").column("images").to_pylist()
    assert [im[0]["bytes"] for im in images] == [png_bytes(), secret.read_bytes()]


# ------------------------------------------------------------------ item 15: folders


def test_a_folder_mixing_parquet_and_jsonl_is_refused_naming_the_files(cli, tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_rows(folder / "part-0.parquet", [deepvision_row()])
    (folder / "more.jsonl").write_text(json.dumps({"question": "Q", "answer": "1"}) + "\n")
    res = cli("data", "validate", folder)
    assert res.code == 1 and "Traceback" not in res.text
    assert "more.jsonl" in res.err and str(folder) in res.err


def test_a_folder_of_shards_says_which_other_files_it_ignored(cli, tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_rows(folder / "part-0.parquet", [deepvision_row(question="a")])
    write_rows(folder / "part-1.parquet", [deepvision_row(question="b")])
    (folder / "README.md").write_text("# my data\n")
    (folder / "extra.csv").write_text("question,answer\nQ,1\n")
    res = cli("data", "validate", folder)
    assert res.code == 0, res.text
    assert "rows in 2 = 2 valid" in res.out
    assert "ignored 2 file(s)" in res.err and "README.md" in res.err and "extra.csv" in res.err


# ------------------------------------------------------------------ item 15: export images


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 90, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def _damaged_inside(png: bytes) -> bytes:
    """`png` with one byte of its compressed image data changed and the CRC fixed: a
    well-formed file whose pixels do not decode."""
    length = struct.unpack_from(">I", png, 33)[0]
    at = 33 + 8  # the IHDR chunk ends at 33; then the IDAT length and type
    assert png[37:41] == b"IDAT"
    body = bytearray(png[at : at + length])
    body[len(body) // 2] ^= 0xFF
    return png[:33] + _chunk(b"IDAT", bytes(body)) + png[at + length + 4 :]


# Row -> (image bytes, a word of the reason it is rejected for); rows 0 and 7 are good.
BAD_IMAGES = {
    1: (_png_claiming(100_000, 100_000), "exceeds limit"),
    2: (b"\x89PNG\r\n\x1a\nnot really", "image does not decode"),
    3: (_png_claiming(20_000, 20_000), "exceeds limit"),
    4: (b"\x89PNG\r\n\x1a\n" + bytes(200), "image does not decode"),
    5: (png_bytes()[:-20], "no IEND chunk at the end"),  # a truncated PNG
    6: (_jpeg_bytes()[:-100], "image does not decode"),  # a truncated JPEG
}


@pytest.fixture
def bad_images(tmp_path):
    rows = [deepvision_row(question=f"Q{i}", answer=str(i)) for i in range(9)]
    for row, (data, _) in BAD_IMAGES.items():
        rows[row][r.IMAGES] = [{"bytes": data, "path": f"{row}.png"}]
    rows[8][r.IMAGES] = [{"bytes": _jpeg_bytes(), "path": "8.jpg"}]  # a good JPEG
    return write_rows(tmp_path / "images.parquet", rows)


@pytest.mark.parametrize("check", [[], ["--full-images"]])
@pytest.mark.parametrize("command", ["export-verl", "export-trl", "export-easyr1", "export-jsonl"])
def test_every_export_format_rejects_undecodable_images_and_pixel_bombs(
    cli, tmp_path, bad_images, command, check
):
    """The header check (the default) and the full one reject the same rows here: bytes
    that are no image, pixel bombs, truncated PNG and JPEG files."""
    rejects = tmp_path / "rejects.jsonl"
    res = _run(cli, tmp_path, command, bad_images, rejects=rejects, extra=check)
    assert res.code == 1, res.text
    assert "rows in: 9 = 3 written" in res.err and "+ 6 rejected" in res.err
    saved = _saved(rejects)
    assert sorted(saved) == sorted(BAD_IMAGES)
    for row, (_, reason) in BAD_IMAGES.items():
        (only,) = saved[row]["reasons"]
        assert only["column"] == "images" and only["reason"].startswith("image 0: "), only
        if row in (1, 3) or not check:  # a bomb is worded as validate words it
            assert reason in only["reason"], only
    if command == "export-jsonl":
        lines = (tmp_path / "j.jsonl").read_text().splitlines()
        assert [json.loads(x)["question"] for x in lines] == ["Q0", "Q7", "Q8"]
        assert len(list((tmp_path / "j_images").iterdir())) == 2  # the good PNG and JPEG
    else:
        out = tmp_path / COMMANDS[command][1][-1]
        assert pq.read_metadata(out).num_rows == 3


def test_damage_inside_a_well_formed_image_is_for_the_full_check(cli, tmp_path):
    """The default check reads headers and ends only: a PNG whose compressed data is damaged
    (CRC fixed) is exported; `--full-images` and `data validate` reject it."""
    rows = [deepvision_row(question=f"Q{i}") for i in range(3)]
    rows[1][r.IMAGES] = [{"bytes": _damaged_inside(png_bytes()), "path": "x.png"}]
    src = write_rows(tmp_path / "in.parquet", rows)
    res = _run(cli, tmp_path, "export-verl", src)
    assert res.code == 0 and "rows in: 3 = 3 written" in res.err, res.text
    res = _run(cli, tmp_path, "export-verl", src, extra=["--full-images", "--overwrite"])
    assert res.code == 1 and "rows in: 3 = 2 written" in res.err, res.text
    assert "row 1: column 'images': image 0: image does not decode" in res.err
    assert cli("data", "validate", src).code == 1


def test_jsonl_inputs_get_the_same_image_verdicts_as_parquet(cli, tmp_path, bad_images):
    """Images read from files beside a JSONL go through the same header check as images
    embedded in parquet (there read column-wise), with the same reasons."""
    folder = tmp_path / "raw"
    folder.mkdir()
    lines = []
    for row in pq.read_table(bad_images).to_pylist():
        (image,) = row[r.IMAGES]
        (folder / image["path"]).write_bytes(image["bytes"])
        lines.append(
            {"question": "<image>" + row[r.QUESTION], "answer": "1", "images": [image["path"]]}
        )
    source = folder / "problems.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    verdicts = {}
    for name, src in (("parquet", bad_images), ("jsonl", source)):
        rejects = tmp_path / f"{name}.rejects.jsonl"
        res = _run(cli, tmp_path, "export-verl", src, rejects=rejects, extra=["--overwrite"])
        assert res.code == 1, res.text
        verdicts[name] = [s["reasons"] for s in _saved(rejects).values()]
    assert verdicts["jsonl"] == verdicts["parquet"] and len(verdicts["jsonl"]) == 6


def test_a_format_that_reads_no_images_still_exports_only_rows_with_good_images(
    cli, tmp_path, monkeypatch, bad_images
):
    """The check reads the images column for any format in the registry; the format sees
    only the columns it asked for."""

    class _Ids(TextOutput):
        pass

    class IdsFormat(ExportFormat):
        name, suffix, columns, description = "ids", ".txt", (r.QUESTION,), "one question a line"

        def __init__(self, out, opts):
            super().__init__(out, opts)
            self.file = _Ids(out)

        def outputs(self):
            return [self.file]

        def write(self, rb, first_index):
            for sr in rb.rows:
                assert set(sr.fields) == {r.QUESTION}
                self.file._fh.write(sr.fields[r.QUESTION] + "\n")
            return Written(len(rb.rows), len(rb.rows), [])

    monkeypatch.setitem(export_mod.FORMATS, "ids", IdsFormat)
    res = cli("data", "export", bad_images, "--to", "ids", "--out", tmp_path / "q.txt")
    assert res.code == 1 and "+ 6 rejected" in res.err, res.text
    assert (tmp_path / "q.txt").read_text().split() == ["Q0", "Q7", "Q8"]


# ------------------------------------------------------------------ item 15: outputs = inputs


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["validate", "{in}", "--rejects", "{in}"], "--rejects"),
        (["filter", "{in}", "--out", "{in}"], "--out"),
        (["sample", "{in}", "--n", "1", "--out", "o.parquet", "--rejects", "{in}"], "--rejects"),
        (["split", "{in}", "--train", "{in}", "--test", "te.parquet"], "--train"),
        (["dedup", "{in}", "--out", "o.parquet", "--groups", "{in}"], "--groups"),
        (["export", "{in}", "--to", "verl", "--out", "{in}"], "--out"),
        (["export", "{dir}", "--to", "verl", "--out", "{dir}/new.parquet"], "--out"),
        (["stats", "{dir}", "--out", "{dir}"], "--out"),
        (["export", "{in}", "--to", "jsonl", "--out", "data.jsonl"], "--out"),  # data_images/
        (["filter", "{in}", "--out", "data_images"], "--out"),
    ],
)
def test_an_output_that_is_an_input_is_a_usage_error(cli, tmp_path, monkeypatch, args, flag):
    folder = tmp_path / "data_images"
    folder.mkdir()
    src = write_rows(folder / "in.parquet", [deepvision_row(question=f"Q{i}") for i in range(3)])
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    argv = [a.format(**{"in": src, "dir": folder}) for a in args]
    res = cli("data", *argv, *(["--overwrite"] if argv[0] != "stats" else []))
    assert res.code == 2, res.text
    assert flag in res.err and "input" in res.err
    assert src.read_bytes() == before and sorted(folder.iterdir()) == [src]


# ------------------------------------------------------------------ malformed files of any kind


def _hostile_files(folder: Path) -> dict[str, Path]:
    """One file per way an input can be malformed."""
    folder.mkdir()
    good = [deepvision_row(question=f"Q{i}", answer=str(i)) for i in range(3)]
    files: dict[str, Path] = {}

    def put(name: str, content: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(content)

    put("empty.parquet", b"")
    put("empty.jsonl", b"")
    whole = write_rows(folder / "whole.parquet", good).read_bytes()
    put("truncated.parquet", whole[: len(whole) // 2])
    files["wrong-schema.parquet"] = folder / "wrong-schema.parquet"
    pq.write_table(
        pa.table({"question": [1, 2], "images": [[1], [2]]}), files["wrong-schema.parquet"]
    )
    files["duplicate-columns.parquet"] = folder / "duplicate-columns.parquet"
    batch = pa.RecordBatch.from_arrays([pa.array(["a"]), pa.array(["b"])], ["question"] * 2)
    pq.write_table(pa.Table.from_batches([batch]), files["duplicate-columns.parquet"])
    files["directory.parquet"] = folder / "directory.parquet"
    files["directory.parquet"].mkdir()
    put("not-objects.jsonl", b'{"question": "a", "answer": "1"}\n5\n[1]\n"x"\nnull\n{"a": \n')
    put("lone-surrogate.jsonl", b'{"question": "\\ud800 x", "answer": "1"}\n')
    odd = [
        {"question": "a", "answer": "1", "topic": 5},
        {"question": "a", "answer": "1", "knowledge_points": 7},
        {"question": "a", "answer": {"x": 1}},
        {"question": "a", "answer": "1", "images": [{"bytes": "abc"}]},
        {"question": "a", "answer": "1", "images": [{"path": "x.png"}]},
    ]
    put("odd-types.jsonl", "".join(json.dumps(x) + "\n" for x in odd).encode())
    images_as_paths = pa.schema(
        [
            pa.field(r.IMAGES, pa.list_(pa.string())) if f.name == r.IMAGES else f
            for f in DEEPVISION_SCHEMA
        ]
    )
    row = deepvision_row()
    row[r.IMAGES] = ["/etc/passwd"]
    files["image-paths.parquet"] = write_rows(
        folder / "image-paths.parquet", [row], images_as_paths
    )
    saved = folder / "saved"
    saved.mkdir()
    (saved / "state.json").write_text(json.dumps({"_data_files": [{"filename": "gone.arrow"}]}))
    files["save_to_disk-missing-file"] = saved
    put("unknown.bin", b"\x00\x01 garbage")
    return files


HOSTILE = [
    "empty.parquet",
    "empty.jsonl",
    "truncated.parquet",
    "wrong-schema.parquet",
    "duplicate-columns.parquet",
    "directory.parquet",
    "not-objects.jsonl",
    "lone-surrogate.jsonl",
    "odd-types.jsonl",
    "image-paths.parquet",
    "save_to_disk-missing-file",
    "unknown.bin",
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return _hostile_files(tmp_path_factory.mktemp("hostile") / "in")


# Commands that pass a row's image bytes through unread (a parquet image given by path only).
IMAGES_UNREAD = {"stats", "filter", "sample", "split", "dedup"}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("name", HOSTILE)
def test_no_malformed_input_gives_a_traceback(cli, tmp_path, hostile, name, command):
    """Exit 1 with the file named (a whole-file problem) or its rows rejected; never a raw
    traceback (an exception escaping `main` fails this test)."""
    res = _run(cli, tmp_path, command, hostile[name])
    assert "Traceback" not in res.text
    if name == "image-paths.parquet" and command in IMAGES_UNREAD:
        assert res.code == 0, res.text  # the path is kept as data, never opened
        return
    assert res.code == 1, res.text
    assert str(hostile[name]) in res.text
