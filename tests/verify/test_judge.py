"""`deepvision judge`: rule verdicts, LLM re-judging against the fake server, resume, and
figures that are never shown over less than the whole set."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from deepvision.llm.fake_server import FakeServer, Scripted
from deepvision.verify.judge import judge_outputs, parse_judgement, pass_at_k


class ScriptedJudge:
    """The judge's replies, one per request in order (`script`; `default` after it): a word,
    or a `Scripted` error status / delay. Records every request body."""

    def __init__(self):
        self.requests = []
        self.script = []
        self.default = "Correct"
        self.url = ""

    def __call__(self, body):
        self.requests.append(body)
        return self.script.pop(0) if self.script else self.default


@pytest.fixture
def server():
    judge = ScriptedJudge()
    fake = FakeServer(responder=judge).start()
    judge.url = fake.url
    yield judge
    fake.stop()


def _outputs(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {
        "id": "p1",
        "question": "Area?",
        "answer": "12",
        "model_responses": [r"\boxed{12}", r"\boxed{twelve}"],
    },
    {
        "id": "p2",
        "question": "Which?",
        "gdt": "B",
        "model_responses": [r"\boxed{C}", "no box at all"],
    },
]


def test_rules_only_summary_and_files(cli, tmp_path):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    res = cli("judge", src)
    assert res.code == 0, res.text
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["samples"], summary["correct"], summary["wrong"]) == (4, 1, 3)
    assert summary["pass_at_1"]["value"] == pytest.approx(0.25)
    assert summary["pass_at_n"]["value"] == 0.5
    verdicts = [json.loads(x) for x in (tmp_path / "run.verdicts.jsonl").read_text().splitlines()]
    assert {(v["problem_id"], v["sample"]) for v in verdicts} == {
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
    }
    wrong = [json.loads(x) for x in (tmp_path / "run.wrong.jsonl").read_text().splitlines()]
    assert len(wrong) == 3 and not any(w["correct"] for w in wrong)
    # judging writes its own files only: never the inference errors file beside its input
    assert not (tmp_path / "run.errors.jsonl").exists()
    assert not (tmp_path / "run.judge-errors.jsonl").exists()
    assert "accuracy 25.00%" in res.out


def test_rejudge_overturns_only_rule_negatives_with_an_answer(cli, tmp_path, server):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    server.script = ["Correct", "Incorrect"]
    res = cli(
        "judge",
        src,
        "--rejudge",
        "--judge-endpoint",
        server.url,
        "--judge-model",
        "j",
        "--concurrency",
        "1",
    )
    assert res.code == 0, res.text
    # 'twelve' and 'C' go to the judge; the empty extraction does not.
    assert len(server.requests) == 2
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "Reference answer:\n12" in prompt and "twelve" in prompt and "boxed" not in prompt
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["correct"], summary["rule_correct"], summary["overturned"]) == (2, 1, 1)
    assert "judge overturned 1" in res.out and "accuracy 50.00% (4 of 4)" in res.out


def test_judge_failures_are_retried_then_counted_and_resumed(cli, tmp_path, server):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    args = (
        "--rejudge",
        "--judge-endpoint",
        server.url,
        "--judge-model",
        "j",
        "--attempts",
        "2",
        "--timeout",
        "0.5",
        "--concurrency",
        "1",
    )
    # first item: 500 then 502 (two failed attempts); second: a timeout then Incorrect.
    server.script = [
        Scripted(status=500),
        Scripted(status=502),
        Scripted(["Correct"], delay=1.5),
        "Incorrect",
    ]
    res = cli("judge", src, *args)
    assert res.code == 1
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert summary["errors"] == 1 and (summary["decided"], summary["samples"]) == (3, 4)
    # 1 right of 3 decided is not the result: the figure is its bounds, labelled partial
    assert "accuracy partial: 25.00%-50.00% (1 of 4 undecided; 33.33% of the 3 decided)" in res.out
    assert summary["accuracy"]["value"] is None and summary["accuracy"]["partial"] is True
    assert "run the same command again" in res.err
    # The failed call is on disk with its reason, apart from the rule-negatives.
    (failed,) = [json.loads(x) for x in (tmp_path / "run.judge-errors.jsonl").open()]
    assert (failed["problem_id"], failed["sample"]) == ("p1", 1) and failed["reason"]
    assert len((tmp_path / "run.wrong.jsonl").read_text().splitlines()) == 2
    # Re-run: only the failed item is asked again; nothing is duplicated.
    server.requests.clear()
    server.script = ["Correct"]
    res = cli("judge", src, *args)
    assert res.code == 0, res.text
    assert len(server.requests) == 1
    lines = (tmp_path / "run.verdicts.jsonl").read_text().splitlines()
    assert len(lines) == 4
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["samples"], summary["errors"], summary["skipped_done"]) == (4, 0, 3)
    assert summary["accuracy"]["value"] == 0.5 and "accuracy 50.00% (4 of 4)" in res.out
    # the failure list is this run's: the retried call succeeded
    assert not (tmp_path / "run.judge-errors.jsonl").exists()


def test_bad_lines_are_reported_with_line_numbers_and_counted(cli, tmp_path):
    src = tmp_path / "run.jsonl"
    src.write_bytes(
        json.dumps(ROWS[0]).encode()
        + b"\n{broken\n"
        + b'{"id": "x", "answer": "1"}\n'
        + b'{"id": "y", "model_response": "1"}\n'
        + b"\xff\xfe\n"
    )
    res = cli("judge", src)
    assert res.code == 1
    for msg in (
        "run.jsonl:2: not JSON",
        "run.jsonl:3: no model_response",
        "run.jsonl:4: no reference",
        "run.jsonl:5: not JSON",
    ):
        assert msg in res.err
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["lines"], summary["bad_lines"], summary["samples"]) == (5, 4, 2)


def test_torn_last_verdict_line_is_repaired_on_resume(cli, tmp_path):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    assert cli("judge", src).code == 0
    verdicts = tmp_path / "run.verdicts.jsonl"
    lines = verdicts.read_text().splitlines(keepends=True)
    verdicts.write_text("".join(lines[:2]) + lines[2][:15])  # killed mid-write
    assert cli("judge", src).code == 0
    keys = [
        (json.loads(x)["problem_id"], json.loads(x)["sample"])
        for x in verdicts.read_text().splitlines()
    ]
    assert sorted(keys) == [("p1", 0), ("p1", 1), ("p2", 0), ("p2", 1)]


def test_parse_judgement_is_strict():
    assert parse_judgement("Correct") is True
    assert parse_judgement("correct.") is True
    assert parse_judgement("Incorrect") is False
    assert parse_judgement("Correct? No, incorrect") is None
    assert parse_judgement("The answer is correct") is None
    assert parse_judgement("") is None


def test_unbiased_pass_at_k():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == 0.25
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_a_bad_verdict_line_is_named_by_file_and_line(cli, tmp_path):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    verdicts = tmp_path / "run.verdicts.jsonl"
    verdicts.write_text(
        json.dumps({"problem_id": "p1", "sample": 0, "correct": True, "method": "exact"})
        + "\n"
        + json.dumps({"problem_id": "p1", "sample": 1, "extracted": "12"})
        + "\n"
    )
    res = cli("judge", src)
    assert res.code == 1
    assert "run.verdicts.jsonl:2" in res.err
    assert verdicts.read_text().count("\n") == 2, "nothing is appended to a file it cannot read"


def test_killed_judge_resumes_with_exactly_one_verdict_per_sample(tmp_path):
    """Kill a judge (in a child process) while it appends verdicts, then run it again: every
    sample ends with exactly one verdict, none twice, whatever the kill tore."""
    rows = [
        {
            "id": f"q{i}",
            "answer": str(i),
            "model_responses": [f"\\boxed{{{i + k % 2}}}" for k in range(4)],
        }
        for i in range(3000)
    ]
    src = _outputs(tmp_path / "run.jsonl", rows)
    verdicts = tmp_path / "run.verdicts.jsonl"
    code = (
        "import sys; from deepvision.verify.judge import judge_outputs; judge_outputs(sys.argv[1])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(src)], start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if verdicts.exists() and verdicts.stat().st_size > 20_000:
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    summary = judge_outputs(src)
    keys = [(json.loads(x)["problem_id"], json.loads(x)["sample"]) for x in verdicts.open()]
    assert len(keys) == len(set(keys)) == 4 * len(rows)
    assert summary.samples == 4 * len(rows) and summary.correct == 2 * len(rows)
    # the second run kept what the killed one wrote and judged only the rest
    assert 0 < summary.skipped_done < 4 * len(rows)


def test_duplicate_problem_ids_are_bad_lines_not_second_verdicts(cli, tmp_path):
    src = _outputs(tmp_path / "run.jsonl", [ROWS[0], ROWS[1], {**ROWS[0], "answer": "13"}])
    res = cli("judge", src)
    assert res.code == 1
    assert "run.jsonl:3: id 'p1' again (first at line 1)" in res.err
    keys = [
        (json.loads(x)["problem_id"], json.loads(x)["sample"])
        for x in (tmp_path / "run.verdicts.jsonl").open()
    ]
    assert sorted(keys) == [("p1", 0), ("p1", 1), ("p2", 0), ("p2", 1)]


def test_a_new_judge_forgets_only_rule_negatives_with_an_answer(cli, tmp_path):
    from deepvision.records import JudgeFiles
    from deepvision.verify.judge import forget_rule_negatives

    src = _outputs(tmp_path / "run.jsonl", ROWS)
    assert cli("judge", src).code == 0
    files = JudgeFiles.for_responses(src)
    text = files.verdicts.read_text()
    files.verdicts.write_text(text + text.splitlines()[0][:20])  # a killed run's torn tail
    # wrong with an answer: 'twelve' and 'C'; the sample with no answer keeps its verdict
    assert forget_rule_negatives(files) == 2
    kept = [json.loads(x) for x in files.verdicts.open()]
    assert sorted((v["problem_id"], v["sample"]) for v in kept) == [("p1", 0), ("p2", 1)]


def _rejudge_args(url, *extra):
    return ("--rejudge", "--judge-endpoint", url, "--judge-model", "j", *extra)


def test_an_accuracy_over_judged_samples_only_is_never_the_result(cli, tmp_path):
    """The case seen in the field: 234 of 600 judge calls failed and `judge` printed 72.95%
    (the share of the 366 decided) as the accuracy; it was 44.50% once all were judged."""
    rows = []
    for i in range(600):
        if i < 267:
            response = rf"\boxed{{{i}}}"  # right by the rules
        elif i < 366:
            response = r"\boxed{no}"  # wrong; the judge agrees
        else:
            response = r"\boxed{ask-fails}"  # wrong by the rules; its judge call fails
        rows.append({"id": f"q{i}", "question": "?", "answer": str(i), "model_response": response})
    src = _outputs(tmp_path / "run.jsonl", rows)

    def judge(body):
        failing = "ask-fails" in body["messages"][-1]["content"]
        return Scripted(status=500) if failing else "Incorrect"

    fake = FakeServer(responder=judge).start()
    try:
        res = cli("judge", src, *_rejudge_args(fake.url, "--attempts", "1"))
    finally:
        fake.stop()
    assert res.code == 1
    assert "accuracy 72.95%" not in res.out
    assert (
        "accuracy partial: 44.50%-83.50% (234 of 600 undecided; 72.95% of the 366 decided)"
        in res.out
    )
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    acc = summary["accuracy"]
    assert acc["value"] is None and (acc["lower_bound"], acc["upper_bound"]) == (0.445, 0.835)
    assert (summary["samples"], summary["decided"], summary["errors"]) == (600, 366, 234)
    assert all(summary[k]["value"] is None for k in ("rule_accuracy", "pass_at_1", "pass_at_n"))
    failed = (tmp_path / "run.judge-errors.jsonl").read_text().splitlines()
    assert len(failed) == 234


def test_a_judge_that_answers_500_to_everything_ends_partial(cli, tmp_path):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    fake = FakeServer(responder=lambda body: Scripted(status=500)).start()
    t0 = time.monotonic()
    try:
        res = cli("judge", src, *_rejudge_args(fake.url, "--attempts", "2", "--timeout", "2"))
    finally:
        fake.stop()
    assert time.monotonic() - t0 < 60, "a failing judge must not hold the run"
    assert res.code == 1
    assert "accuracy partial: 25.00%-75.00% (2 of 4 undecided; 50.00% of the 2 decided)" in res.out
    assert "pass@2 partial:" in res.out
    assert "judge calls failed 2" in res.out


def test_items_inference_gave_up_on_belong_to_the_set(cli, tmp_path):
    """`X.errors.jsonl` beside the input lists items with no response: their samples are
    undecided, so the accuracy of the answered ones is not the result."""
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    (tmp_path / "run.errors.jsonl").write_text(
        "".join(json.dumps({"id": f"gone{i}", "reason": "HTTP 500"}) + "\n" for i in range(2))
        + json.dumps({"id": "p1", "reason": "an old failure, answered since"})
        + "\n"
    )
    res = cli("judge", src)
    assert res.code == 1
    # 1 right of the 4 answered samples; 2 failed items of n = 2 samples each are undecided
    assert "accuracy partial: 12.50%-62.50% (4 of 8 undecided; 25.00% of the 4 decided)" in res.out
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["problems"], summary["failed_items"], summary["samples"]) == (4, 2, 8)
    assert summary["pass_at_n"]["total"] == 4 and summary["pass_at_n"]["decided"] == 2
    assert "`deepvision infer` again" in res.err
    assert not (tmp_path / "run.judge-errors.jsonl").exists()


def test_undecided_checks_are_not_wrong_and_are_decided_on_the_rerun(cli, tmp_path, monkeypatch):
    """An answer the verifier could not decide in time (a busy worker pool) has no verdict:
    the figure is partial, the sample is listed, and the next run decides it alone."""
    import deepvision.verify.judge as judge_module
    from deepvision.records import Verdict

    real = judge_module.verify_batch

    def busy_for_twelve(items, **kwargs):
        items = list(items)
        out = real(items, **kwargs)
        return [
            Verdict(False, "twelve", Verdict.UNDECIDED, "no worker within the time limit")
            if "twelve" in (it.pred or "")
            else v
            for it, v in zip(items, out, strict=True)
        ]

    src = _outputs(tmp_path / "run.jsonl", ROWS)
    monkeypatch.setattr(judge_module, "verify_batch", busy_for_twelve)
    res = cli("judge", src)
    assert res.code == 1
    assert "accuracy partial: 25.00%-50.00% (1 of 4 undecided" in res.out
    assert "checks undecided 1" in res.out
    (listed,) = [json.loads(x) for x in (tmp_path / "run.judge-errors.jsonl").open()]
    assert (listed["problem_id"], listed["sample"]) == ("p1", 1)
    assert "verifier undecided" in listed["reason"]
    wrong = [json.loads(x) for x in (tmp_path / "run.wrong.jsonl").open()]
    assert ("p1", 1) not in {(w["problem_id"], w["sample"]) for w in wrong}
    monkeypatch.setattr(judge_module, "verify_batch", real)
    res = cli("judge", src)
    assert res.code == 0, res.text
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert (summary["skipped_done"], summary["decided"]) == (3, 4)
    assert "accuracy 25.00% (4 of 4)" in res.out
