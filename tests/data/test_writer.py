"""Table writers: the direct-I/O output gives the same file as the plain one, falls back where
the filesystem refuses direct I/O, and a failing disk leaves no output, no temporary file and
no open descriptor behind."""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepvision.data import writer
from deepvision.data.writer import TableWriter

SCHEMA = pa.schema([("id", pa.string()), ("blob", pa.binary())])


def _batches(n: int = 6) -> list[pa.RecordBatch]:
    # Odd sizes, so that the file ends mid-block and the buffers fill at odd places.
    return [
        pa.record_batch(
            [
                pa.array([f"r{i}-{j}" for j in range(7)]),
                pa.array([os.urandom(9_000 + 37 * j) for j in range(7)]),
            ],
            schema=SCHEMA,
        )
        for i in range(n)
    ]


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _needs_direct_io(w: TableWriter) -> None:
    if w._direct is None:
        w.abort()
        pytest.skip(f"the filesystem of {w._file.tmp.parent} refuses O_DIRECT")


@pytest.fixture
def small_buffers(monkeypatch):
    """Direct-I/O buffers of 16 KB, so a few batches cross many buffer swaps."""
    real = writer._DirectFile.open.__func__
    monkeypatch.setattr(
        writer._DirectFile, "open", classmethod(lambda cls, path: real(cls, path, 16 << 10))
    )


def test_direct_output_equals_plain_output(tmp_path, small_buffers):
    batches = _batches()
    plain, direct = tmp_path / "plain.parquet", tmp_path / "direct.parquet"
    with TableWriter(plain, SCHEMA) as w:
        for b in batches:
            w.write_batch(b)
    with TableWriter(direct, SCHEMA, direct=True) as w:
        _needs_direct_io(w)
        for b in batches:
            w.write_batch(b)
    assert direct.stat().st_size % 4096  # not a whole number of blocks: cut back to its size
    assert direct.read_bytes() == plain.read_bytes()
    assert pq.read_table(direct).equals(pa.Table.from_batches(batches))
    assert not list(tmp_path.glob("*.tmp"))


def test_no_direct_io_falls_back_to_the_page_cache(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "O_DIRECT")
    out = tmp_path / "out.parquet"
    with TableWriter(out, SCHEMA, direct=True) as w:
        assert w._direct is None
        w.write_batch(_batches(1)[0])
    assert pq.read_table(out).num_rows == 7


@pytest.mark.parametrize("fail_after", [0, 40_000])
def test_a_full_disk_is_reported_and_leaves_nothing(
    tmp_path, monkeypatch, small_buffers, fail_after
):
    out = tmp_path / "out.parquet"
    before = _open_fds()
    real_write, written = os.write, [0]

    def full_disk(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("out.parquet.tmp"):
            if written[0] >= fail_after:
                raise OSError(errno.ENOSPC, "No space left on device")
            written[0] += len(data)
        return real_write(fd, data)

    w = TableWriter(out, SCHEMA, direct=True)
    _needs_direct_io(w)
    monkeypatch.setattr(writer.os, "write", full_disk)
    with pytest.raises(OSError) as err, w:
        for b in _batches():
            w.write_batch(b)
    assert err.value.errno == errno.ENOSPC
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
    assert _open_fds() <= before


def test_outputs_of_a_job_appear_together_or_not_at_all(tmp_path):
    """`finish`: when one output cannot be completed (its disk fills while flushing), none
    of the job's outputs is moved into place, so the same command can run again; the error
    is the one raised."""
    table = TableWriter(tmp_path / "out.parquet", SCHEMA)
    table.write_batch(_batches(1)[0])
    rejects = writer.RejectWriter(tmp_path / "bad.jsonl")
    rejects.write([])

    def full_disk():
        raise OSError(errno.ENOSPC, "No space left on device")

    rejects._fh.close = full_disk
    with pytest.raises(OSError) as err:
        writer.finish([table, None, rejects], ok=True)
    assert err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []

    ok_table = TableWriter(tmp_path / "out.parquet", SCHEMA)
    ok_table.write_batch(_batches(1)[0])
    ok_rejects = writer.RejectWriter(tmp_path / "bad.jsonl")
    writer.finish([ok_table, ok_rejects], ok=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "out.parquet"]
    writer.finish([TableWriter(tmp_path / "x.parquet", SCHEMA)], ok=False)
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.tmp").exists()


def test_an_output_that_cannot_be_moved_into_place_leaves_no_tmp_file(tmp_path):
    """The output's name is taken by a folder when the job ends: the error is raised, and
    neither that output nor the job's later ones is left behind under a .tmp name."""
    table = TableWriter(tmp_path / "out.parquet", SCHEMA)
    table.write_batch(_batches(1)[0])
    rejects = writer.RejectWriter(tmp_path / "bad.jsonl")
    (tmp_path / "out.parquet").mkdir()
    (tmp_path / "out.parquet" / "keep.txt").write_text("the user's")
    with pytest.raises(OSError):
        writer.finish([table, rejects], ok=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]
    assert (tmp_path / "out.parquet" / "keep.txt").read_text() == "the user's"
