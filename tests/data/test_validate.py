"""`data validate` and the bad inputs every command must survive: clear place, nothing lost."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DEEPVISION_SCHEMA, deepvision_row, write_rows
from deepvision import records as r


def _rejects(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_clean_file_is_valid(cli, deepvision_file):
    res = cli("data", "validate", deepvision_file)
    assert res.code == 0, res.text
    assert "rows in 12 = 12 valid + 0 rejected" in res.out


def test_embedded_sample_is_valid(cli):
    res = cli("data", "validate")
    assert res.code == 0, res.text
    assert "240 valid + 0 rejected" in res.out


def test_bad_rows_are_named_rejected_and_accounted(cli, tmp_path):
    corrupt = deepvision_row(question="corrupt image")
    corrupt[r.IMAGES] = [{"bytes": b"\x89PNG\r\n\x1a\nthis is not a png", "path": "x.png"}]
    truncated = deepvision_row(question="truncated image")
    good_bytes = truncated[r.IMAGES][0]["bytes"]
    truncated[r.IMAGES] = [{"bytes": good_bytes[: len(good_bytes) // 2], "path": "t.png"}]
    mismatch = deepvision_row(question="two placeholders, one image")
    mismatch[r.PROMPT] = [{"content": "<image><image>Find x.", "role": "user"}]
    rows = [
        deepvision_row(question="good 1"),
        corrupt,
        truncated,
        mismatch,
        deepvision_row(question="bad pass rate", **{r.PASS_RATE: "half"}),
        deepvision_row(question="empty answer", answer="  "),
        deepvision_row(question="bad json", **{r.DOMAIN_ANNO: "{'Level_1': 'Geometry'"}),
        deepvision_row(question="good 1"),  # duplicate of row 0 (same content -> same id)
        deepvision_row(question="good 2"),
    ]
    path = write_rows(tmp_path / "bad.parquet", rows)
    rejects = tmp_path / "rejects.jsonl"
    res = cli("data", "validate", path, "--rejects", rejects)
    assert res.code == 1
    assert "rows in 9 = 2 valid + 7 rejected" in res.out
    expected = {
        1: ("images", "image 0"),
        2: ("images", "image 0"),
        3: ("prompt", "2 <image> placeholder(s) but the problem has 1 image(s)"),
        4: ("mimo-pass_rate", "not of the form k/n"),
        5: ("reward_model", "answer is empty"),
        6: ("domain-anno", "not valid JSON"),
        7: ("id", "first at"),
    }
    for row, (column, needle) in expected.items():
        line = next(x for x in res.out.splitlines() if f"row {row}," in x)
        assert f"column '{column}'" in line and needle in line, line
        assert str(path) in line
    saved = _rejects(rejects)
    assert sorted(x["row"] for x in saved) == sorted(expected)
    # The rejected rows are kept whole: the question and image bytes are all there.
    corrupt_saved = next(x for x in saved if x["row"] == 1)
    assert corrupt_saved["data"]["question"] == "corrupt image"
    assert corrupt_saved["data"]["images"][0]["bytes"].startswith("data:")
    dup = next(x for x in saved if x["row"] == 7)
    assert "row 0" in dup["reasons"][0]["reason"]


def test_missing_required_column_is_a_file_error(cli, tmp_path):
    schema = pa.schema([f for f in DEEPVISION_SCHEMA if f.name != r.REWARD_MODEL])
    row = {k: v for k, v in deepvision_row().items() if k != r.REWARD_MODEL}
    path = write_rows(tmp_path / "nocol.parquet", [row], schema)
    res = cli("data", "validate", path)
    assert res.code == 1
    assert "column 'reward_model'" in res.err and "missing" in res.err and str(path) in res.err
    assert "Traceback" not in res.text


def test_wrong_column_type_is_a_file_error(cli, tmp_path):
    schema = pa.schema(
        [pa.field(r.QUESTION, pa.int64()) if f.name == r.QUESTION else f for f in DEEPVISION_SCHEMA]
    )
    row = deepvision_row()
    row[r.QUESTION] = 7
    path = write_rows(tmp_path / "type.parquet", [row], schema)
    res = cli("data", "stats", path, "--out", tmp_path / "st")
    assert res.code == 1
    assert "column 'question'" in res.err and "int64" in res.err and "expected string" in res.err


def test_zero_byte_and_truncated_parquet(cli, tmp_path, deepvision_file):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    res = cli("data", "validate", empty)
    assert res.code == 1 and "empty (0 bytes)" in res.err and str(empty) in res.err
    data = deepvision_file.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    res = cli("data", "export", cut, "--to", "verl", "--out", tmp_path / "o.parquet")
    assert res.code == 1 and str(cut) in res.err and "truncated" in res.err
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize(
    "command",
    [
        ("data", "validate"),
        ("data", "export", "--to", "verl", "--out", "o.parquet"),
        ("data", "export", "--to", "jsonl", "--out", "o.jsonl"),
        ("data", "filter", "--pass-rate", "0/8..8/8", "--out", "o.parquet"),
    ],
)
def test_a_job_stopped_by_a_broken_file_leaves_no_output_and_runs_again(
    cli, tmp_path, command, monkeypatch
):
    """Rows 0-9 read, then row group 1 is unreadable: the command fails naming the rows, no
    output or rejects file appears (not even a partial one), and the same command, re-run,
    fails the same way instead of refusing to overwrite."""
    rows = [deepvision_row(question=f"q{i}") for i in range(30)]
    rows[3][r.REWARD_MODEL] = None  # one rejected row before the damage
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), path, row_group_size=10)
    chunk = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 400] = b"\x00" * 400
    path.write_bytes(bytes(data))
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    for _ in range(2):
        res = cli(*command, path, "--rejects", "bad.jsonl")
        assert res.code == 1, res.text
        assert str(path) in res.err and "rows 10-19" in res.err
        assert set(tmp_path.iterdir()) == before  # no jsonl images folder either


def test_corrupt_row_group_mid_file_names_the_rows(tmp_path):
    from deepvision.data.reader import iter_problems
    from deepvision.errors import DataError

    rows = [deepvision_row(question=f"q{i}") for i in range(40)]
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=DEEPVISION_SCHEMA), path, row_group_size=10)
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(2).column(0)
    start = min(o for o in (chunk.dictionary_page_offset, chunk.data_page_offset) if o)
    data = bytearray(path.read_bytes())
    data[start : start + 400] = b"\x00" * 400
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        list(iter_problems([path], batch_size=10))
    assert str(path) in str(exc.value) and "rows 20-29" in str(exc.value)


def test_jsonl_bad_lines_are_rejected_with_line_numbers(cli, tmp_path):
    path = tmp_path / "p.jsonl"
    good = json.dumps({"id": "a", "question": "Q?", "answer": "1"}).encode()
    path.write_bytes(
        good + b"\n"
        + b'{"id": "b", "question": "caf\xe9", "answer": "2"}\n'  # latin-1, not UTF-8
        + b"{not json}\n"
        + b"[1, 2]\n"
        + json.dumps({"id": "e", "question": "no answer"}).encode() + b"\n"
        + json.dumps({"id": "a", "question": "Q again", "answer": "1"}).encode() + b"\n"
    )  # fmt: skip
    rejects = tmp_path / "rej.jsonl"
    res = cli("data", "validate", path, "--rejects", rejects)
    assert res.code == 1
    assert "rows in 6 = 1 valid + 5 rejected" in res.out
    out = res.out
    assert "row 2, line is not UTF-8" in out
    assert "row 3, line is not JSON" in out
    assert "row 4, line is JSON but not an object" in out
    assert "row 5, column 'reward_model'" in out
    assert "row 6, column 'id': duplicate id 'a'" in out
    assert len(_rejects(rejects)) == 5


def test_rejects_output_is_not_overwritten_silently(cli, tmp_path, deepvision_file):
    rejects = tmp_path / "rej.jsonl"
    rejects.write_text("keep me\n")
    res = cli("data", "validate", deepvision_file, "--rejects", rejects)
    assert res.code == 2 and "--overwrite" in res.err
    assert rejects.read_text() == "keep me\n"


def test_fast_image_mode_still_catches_corrupt_png(cli, tmp_path):
    row = deepvision_row()
    data = bytearray(row[r.IMAGES][0]["bytes"])
    data[60] ^= 0xFF  # flip a byte inside the image data: the chunk checksum breaks
    row[r.IMAGES] = [{"bytes": bytes(data), "path": "p.png"}]
    path = write_rows(tmp_path / "flip.parquet", [row])
    for flag in ([], ["--fast-images"]):
        res = cli("data", "validate", path, *flag)
        assert res.code == 1 and "image 0" in res.out, (flag, res.text)
