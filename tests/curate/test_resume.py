"""Kill -9 in the middle of `curate difficulty`, run it again: it resumes (done chunks are
not redone, replies already written are not asked again) and the result equals an
uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from helpers import problem, read_jsonl, write
from scripted import Scripted, ScriptedServer

from deepvision.data.reader import iter_problems


def script(tag, attempt, body):
    k = int(tag.split("-")[1]) % 9
    return Scripted(texts=["\\boxed{12}"] * k + ["\\boxed{1}"] * (8 - k), delay=0.05)


def command(inp, out, url):
    return [
        sys.executable,
        "-m",
        "deepvision.cli.main",
        "-q",
        "curate",
        "difficulty",
        str(inp),
        str(out),
        "--endpoint",
        url,
        "--model",
        "m",
        "--concurrency",
        "2",
        "--chunk-size",
        "5",
        "--timeout",
        "10",
    ]


def test_kill_and_resume_in_the_middle_of_difficulty(tmp_path):
    problems = [problem(f"p-{i}", f"[p-{i}] Find x.", answer="12") for i in range(20)]
    inp = write(tmp_path / "in.parquet", problems)
    out = tmp_path / "d.parquet"
    with ScriptedServer(script) as s:
        proc = subprocess.Popen(
            command(inp, out, s.url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while sum(s.asked.values()) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not out.exists()
        work = tmp_path / "d.parquet.work"
        assert (work / "chunk-000000.done.json").exists()
        assert not (work / "chunk-000003.done.json").exists()
        before = dict(s.asked)
        done = subprocess.run(command(inp, out, s.url), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        after = dict(s.asked)
    # each problem asked once, except at most the 2 in flight when the process died
    assert set(after) == {f"p-{i}" for i in range(20)}
    assert sum(after.values()) <= 20 + 2
    assert all(after[t] == 1 for t in before if t in ("p-0", "p-1", "p-2", "p-3", "p-4"))
    report = json.loads((tmp_path / "d.report.json").read_text())
    assert report["resumed_chunks"] >= 1 and report["rows_in"] == 20
    got = {p.id: str(p.pass_rate) for p in iter_problems([out])}
    expect = {f"p-{i}": f"{i % 9}/8" for i in range(20) if 1 <= i % 9 <= 7}
    assert got == expect
    drops = {d["id"]: d["reason"] for d in read_jsonl(tmp_path / "d.drops.jsonl")}
    assert drops == {
        f"p-{i}": "too_hard" if i % 9 == 0 else "too_easy" for i in range(20) if i % 9 in (0, 8)
    }
