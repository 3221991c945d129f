"""AppendLog and iter_jsonl: the exactly-once JSONL contract every resumable command uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from deepvision.errors import DataError
from deepvision.records import AppendLog, iter_jsonl, repair_tail


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_append_then_reopen_knows_the_keys_and_refuses_a_second_write(tmp_path):
    path = tmp_path / "out.jsonl"
    with AppendLog(path) as log:
        log.append({"id": "a", "x": 1})
        log.append({"id": "b", "x": 2})
    again = AppendLog(path)
    assert again.keys == {"a", "b"}
    assert "a" in again
    with pytest.raises(ValueError, match="written twice"):
        again.append({"id": "a", "x": 3})
    again.close()
    assert [r["id"] for r in _lines(path)] == ["a", "b"]


def test_torn_tail_is_cut_block_wise_and_the_rest_kept(tmp_path):
    path = tmp_path / "out.jsonl"
    body = "".join(json.dumps({"id": str(k), "pad": "x" * 5000}) + "\n" for k in range(40))
    path.write_text(body + '{"id": "torn", "pa')
    log = AppendLog(path)
    assert log.repaired == len('{"id": "torn", "pa')
    assert len(log.keys) == 40 and "torn" not in log.keys
    log.close()
    assert path.read_text() == body


def test_a_file_with_no_newline_at_all_is_emptied(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": 1')
    assert repair_tail(path) == 8
    assert path.read_bytes() == b""


def test_a_bad_line_that_is_not_the_tail_names_file_and_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(DataError, match=r"out\.jsonl:2: not JSON"):
        AppendLog(path)


def test_a_line_without_the_key_is_named(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\n{"other": 1}\n')
    with pytest.raises(DataError, match=r"out\.jsonl:2: record has no key field"):
        AppendLog(path)


def test_composite_keys(tmp_path):
    path = tmp_path / "v.jsonl"
    key = lambda r: (r["problem_id"], r["sample"])  # noqa: E731
    with AppendLog(path, key) as log:
        log.append({"problem_id": "p", "sample": 0})
        log.append({"problem_id": "p", "sample": 1})
    assert AppendLog(path, key).keys == {("p", 0), ("p", 1)}


def test_lines_are_batched_until_flush_or_close(tmp_path):
    path = tmp_path / "out.jsonl"
    log = AppendLog(path, flush_lines=10, flush_seconds=3600)
    for k in range(9):
        log.append({"id": k})
    assert not path.exists() or path.read_text() == ""
    log.append({"id": 9})  # the tenth line flushes the batch
    assert len(_lines(path)) == 10
    log.append({"id": 10})
    log.close()
    assert len(_lines(path)) == 11


def test_iter_jsonl_counts_bad_lines_through_on_bad(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n\xff\n{"a": 2}\n', encoding="latin-1")
    bad: list[DataError] = []
    got = list(iter_jsonl(path, on_bad=bad.append))
    assert got == [(1, {"a": 1}), (5, {"a": 2})]
    assert [e.line for e in bad] == [3, 4]
    assert list(iter_jsonl(tmp_path / "missing.jsonl")) == []


def test_kill_9_mid_run_then_resume_writes_every_key_exactly_once(tmp_path):
    path = tmp_path / "out.jsonl"
    script = textwrap.dedent(
        f"""
        import sys, time
        from deepvision.records import AppendLog
        log = AppendLog({str(path)!r}, flush_lines=7)
        for k in range(100000):
            if k not in log:
                log.append({{"id": k, "pad": "y" * 300}})
            if k == 2000:
                print("go", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"go"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with AppendLog(path) as log:
        for k in range(3000):
            if k not in log:
                log.append({"id": k, "pad": "y" * 300})
    ids = [r["id"] for r in _lines(path)]
    assert sorted(ids) == list(range(max(ids) + 1))  # none lost, none twice
    assert len(ids) >= 3000


def test_a_failed_write_is_undone_and_nothing_is_written_after_it(tmp_path, monkeypatch):
    """A full disk mid-batch: the partial batch is cut off, its keys forgotten, and neither a
    later flush nor close writes it again (once space is back, a rerun redoes exactly those)."""
    import errno
    import os as os_mod

    from deepvision.records import log as log_mod

    path = tmp_path / "out.jsonl"
    real_write = os_mod.write
    calls = {"n": 0}

    def half_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:  # the second batch: half of it lands, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(log_mod.os, "write", half_then_full)
    log = AppendLog(path, flush_lines=2)
    log.append({"id": "a"})
    log.append({"id": "b"})  # first batch written
    log.append({"id": "c"})
    with pytest.raises(OSError):
        log.append({"id": "d"})  # second batch fails half-way
    assert "c" not in log and "d" not in log and "a" in log
    with pytest.raises(OSError):
        log.flush()
    log.close()
    monkeypatch.undo()
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]
    again = AppendLog(path)  # a rerun after space came back
    assert again.keys == {"a", "b"}
    again.append({"id": "c"})
    again.close()
    assert len(path.read_text().splitlines()) == 3
