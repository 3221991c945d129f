"""Kill -9 of a curation command that hashes in worker processes: no worker outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import figure, write

from deepvision.records import Problem, ProblemImage

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process table in /proc"
)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process that is not a zombie."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            out[int(entry.name)] = int(ppid)
    return out


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return pids & set(_parents())


def test_no_hashing_worker_survives_a_kill_9_of_curate_dedup(tmp_path):
    image = [ProblemImage(figure(1), None)]
    problems = [
        Problem(
            id=f"p{i}", question=f"Question {i}: find x in figure {i}.", answer="1", images=image
        )
        for i in range(8000)
    ]
    inp = write(tmp_path / "in.parquet", problems)
    cmd = [
        sys.executable,
        "-m",
        "deepvision.cli.main",
        "-q",
        "curate",
        "dedup",
        str(inp),
        str(tmp_path / "out.parquet"),
        "--workers",
        "2",
        "--chunk-size",
        "100",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            workers = descendants(proc.pid)
        assert len(workers) >= 2, "the hashing workers never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 30
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(workers)
    for pid in left:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert left == set(), f"{len(left)} worker(s) outlived the killed command"
