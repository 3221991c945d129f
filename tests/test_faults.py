"""The fault principle (ARCHITECTURE.md), enforced: every verb that talks to a model (infer,
judge's LLM second opinion, eval run, a curation stage) is run through every mode of the one
fault-injecting server, and must end within its time limits, lose and duplicate nothing, exit 0
only when nothing was skipped, and label a figure over part of the set as partial.

The commands run in-process through the CLI's own entry point (`deepvision.cli.main.main`), the
way a user's shell would run them, minus the interpreter start-up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepvision.cli.main import main
from deepvision.data.synth import generate
from deepvision.llm.fake_server import MODES, FakeServer, Faults, Scripted
from deepvision.records import PROBLEM_SCHEMA, JudgeFiles, problem_to_row

# Each mode once per request; a run must end within (timeout x attempts + slack).
TIMEOUT_S, ATTEMPTS = 1.0, 1
BOUND_S = 45.0  # generous: CI is a loaded 2-core machine; a hang is what this catches
N = 3


class ModeServer:
    """The fault server with the mode every request gets now (`None`: a good answer)."""

    def __init__(self) -> None:
        self.mode: str | None = None
        self.text = "\\boxed{4}"
        self.server = FakeServer(
            Faults(slow_s=0.2, trickle_s=1.0, huge_bytes=2 << 20, retry_after=0.05),
            responder=self.respond,
            models=["m"],
        ).start()
        self.url = self.server.url

    def respond(self, body):
        return Scripted(mode=self.mode) if self.mode else self.text


@pytest.fixture(scope="module")
def srv():
    s = ModeServer()
    yield s
    s.server.stop()


def run_cli(args: list[object], capsys) -> tuple[int, str, float]:
    """(exit code, everything printed, seconds) of `deepvision ARGS`."""
    t = time.monotonic()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out + out.err, time.monotonic() - t


def model_flags(url: str, *, judge: bool = False) -> list[str]:
    prefix = "--judge-" if judge else "--"
    flags = [f"{prefix}endpoint", url, f"{prefix}model", "m"]
    return [*flags, "--timeout", str(TIMEOUT_S), "--attempts", str(ATTEMPTS)]


def ids_in(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [str(json.loads(line)["id"]) for line in path.read_text().splitlines() if line.strip()]


def lines_in(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_ended(code: int, text: str, wall: float) -> None:
    assert wall < BOUND_S, f"ran {wall:.0f} s"
    assert code in (0, 1), text[-400:]
    assert "Traceback" not in text, text[-2000:]


MODE_NAMES = sorted(MODES)
# Modes in which no usable answer comes back within one attempt of TIMEOUT_S (a `usage` that is
# not an object of counts makes the reply malformed: retried, then an error); a slow or a huge
# reply still carries its answer.
NO_ANSWER = {"400", "429", "429_date", "429_huge", "500", "hang", "html", "malformed"}
NO_ANSWER |= {"null_content", "null_message", "reset", "trickle"}
NO_ANSWER |= {"usage_fields", "usage_list", "usage_str"}


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_infer_survives_every_mode(mode, srv, tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": f"{i}+1?"}]}) + "\n"
            for i in range(N)
        )
    )
    out = tmp_path / "out.jsonl"
    srv.mode = mode
    code, text, wall = run_cli(["infer", src, "--out", out, *model_flags(srv.url)], capsys)
    assert_ended(code, text, wall)
    done, failed = ids_in(out), ids_in(tmp_path / "out.errors.jsonl")
    assert sorted(done + failed) == [f"q{i}" for i in range(N)]  # nothing lost, nothing twice
    assert code == (1 if failed else 0)
    assert len(failed) == (N if mode in NO_ANSWER else 0), mode
    for line in out.read_text().splitlines():  # a success is a real answer
        assert json.loads(line)["model_response"], mode


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_judge_second_opinion_survives_every_mode(mode, srv, tmp_path, capsys):
    src = tmp_path / "answers.jsonl"
    src.write_text(
        "".join(
            json.dumps(
                {"id": f"q{i}", "question": "2+2?", "answer": "4", "model_response": "\\boxed{5}"}
            )
            + "\n"
            for i in range(N)
        )
    )
    srv.mode = mode
    args = ["judge", src, "--out", tmp_path / "j", "--rejudge", *model_flags(srv.url, judge=True)]
    code, text, wall = run_cli(args, capsys)
    assert_ended(code, text, wall)
    files = JudgeFiles(tmp_path / "j")
    judged = lines_in(files.verdicts)
    unjudged = lines_in(files.judge_errors)
    assert len(judged) + len(unjudged) == N  # each sample decided, or waiting for a rerun
    assert len(unjudged) == (N if mode in NO_ANSWER else 0), mode
    summary = json.loads(files.summary.read_text())
    if unjudged:  # the accuracy is not a figure over the judged samples only
        assert code == 1 and "partial" in text.lower(), text[-400:]
        assert summary["accuracy"]["value"] is None and summary["accuracy"]["partial"]
    else:
        assert code == 0 and summary["accuracy"]["value"] is not None


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_eval_survives_every_mode(mode, srv, tmp_path, capsys):
    srv.mode = mode
    run = tmp_path / "run"
    args = ["eval", "run", "--benchmarks", "synth", "--limit", N, "--out", run]
    code, text, wall = run_cli([*args, *model_flags(srv.url)], capsys)
    assert_ended(code, text, wall)
    assert (run / "report.md").exists(), text[-400:]
    failed = sum(len(ids_in(p)) for p in run.rglob("*.errors.jsonl"))
    assert (failed > 0) == (mode in NO_ANSWER), (mode, failed)
    if failed:  # the headline may not be a figure over the answered items only
        assert code == 1 and "partial" in text.lower(), text[-400:]
        assert "partial" in (run / "report.md").read_text().lower()


@pytest.mark.parametrize("mode", MODE_NAMES)
def test_curation_stage_survives_every_mode(mode, srv, tmp_path, capsys):
    src = tmp_path / "p.parquet"
    rows = [problem_to_row(p, PROBLEM_SCHEMA.names) for p in generate(N, seed=5)]
    pq.write_table(pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA), src)
    srv.mode = mode
    srv.text = '{"answers": 1, "image_required": true, "checkable": true, "reason": "ok"}'
    out = tmp_path / "v.parquet"
    try:
        code, text, wall = run_cli(["curate", "validity", src, out, *model_flags(srv.url)], capsys)
    finally:
        srv.text = "\\boxed{4}"
    assert_ended(code, text, wall)
    kept = pq.read_metadata(out).num_rows if out.exists() else 0
    drops = tmp_path / "v.drops.jsonl"
    dropped = len(drops.read_text().splitlines()) if drops.exists() else 0
    assert kept + dropped == N, text[-400:]  # rows in = kept + dropped, whatever the server did
