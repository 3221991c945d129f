"""Outputs that cannot be written for a reason other than a full disk (a path under a file, a
read-only file system): one line naming the path, exit 1, no traceback (`--debug` shows it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import deepvision_row, write_rows

# Data commands, writing their outputs under the folder {o}.
COMMANDS = {
    "export-verl": ["export", "{in}", "--to", "verl", "--out", "{o}/v.parquet"],
    "export-jsonl": ["export", "{in}", "--to", "jsonl", "--out", "{o}/j.jsonl"],
    "validate": ["validate", "{in}", "--rejects", "{o}/rejects.jsonl"],
    "filter": ["filter", "{in}", "--out", "{o}/f.parquet"],
    "stats": ["stats", "{in}", "--out", "{o}/stats"],
}


@pytest.fixture
def small(tmp_path):
    return write_rows(tmp_path / "in.parquet", [deepvision_row(question=f"Q{i}") for i in range(3)])


@pytest.fixture
def read_only(tmpfs):
    """A read-only tmpfs (root writes through permission bits, not through this)."""
    return tmpfs("ro", "ro,size=1m")


def _one_line_naming(res, path) -> str:
    assert res.code == 1, res.text
    assert "Traceback" not in res.text
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], res.err
    return errors[0]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_under_a_file_is_one_line_naming_the_path(cli, tmp_path, small, command):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    args = [a.format(**{"in": small, "o": blocker}) for a in COMMANDS[command]]
    _one_line_naming(cli("data", *args), blocker)
    assert blocker.read_text() == "a file where a folder should be"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_file_system_is_one_line_naming_the_path(cli, small, read_only, command):
    args = [a.format(**{"in": small, "o": read_only}) for a in COMMANDS[command]]
    line = _one_line_naming(cli("data", *args), read_only)
    assert "Read-only file system" in line
    assert list(read_only.iterdir()) == []


def test_debug_shows_the_traceback_of_a_write_error(tmp_path, small):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cmd = [sys.executable, "-m", "deepvision.cli.main", "data", "export", str(small)]
    cmd += ["--to", "verl", "--out", str(blocker / "v.parquet")]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert str(blocker) in plain.stderr
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True)
    assert "Traceback" in debug.stderr
