"""`deepvision judge`: rule verdicts, LLM re-judging against a local test server, resume."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deepvision.verify.judge import parse_judgement, pass_at_k


class JudgeServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 with scripted behaviour."""

    def __init__(self):
        self.requests = []
        self.script = []  # per request: "Correct" | "Incorrect" | 500 | "timeout" | "garbage"
        self.default = "Correct"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                action = server.script.pop(0) if server.script else server.default
                if action == 500:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"overloaded")
                    return
                if action == "timeout":
                    time.sleep(1.5)
                    action = "Correct"
                payload = (
                    b"{not json"
                    if action == "garbage"
                    else json.dumps({"choices": [{"message": {"content": action}}]}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


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
    assert summary["pass_at_1"] == pytest.approx(0.25) and summary["pass_at_n"] == 0.5
    verdicts = [json.loads(x) for x in (tmp_path / "run.verdicts.jsonl").read_text().splitlines()]
    assert {(v["problem_id"], v["sample"]) for v in verdicts} == {
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
    }
    errors = (tmp_path / "run.errors.jsonl").read_text().splitlines()
    assert len(errors) == 3
    assert "accuracy 25.00%" in res.out


def test_rejudge_overturns_only_rule_negatives_with_an_answer(cli, tmp_path, server):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    server.script = ["Correct", "Incorrect"]
    res = cli(
        "judge",
        src,
        "--rejudge",
        "--judge-base-url",
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
    assert "judge overturned 1" in res.out


def test_judge_failures_are_retried_then_counted_and_resumed(cli, tmp_path, server):
    src = _outputs(tmp_path / "run.jsonl", ROWS)
    args = (
        "--rejudge",
        "--judge-base-url",
        server.url,
        "--judge-model",
        "j",
        "--max-attempts",
        "2",
        "--request-timeout",
        "0.5",
        "--concurrency",
        "1",
    )
    # first item: 500 then garbage (two failed attempts); second: a timeout then Incorrect.
    server.script = [500, "garbage", "timeout", "Incorrect"]
    res = cli("judge", src, *args)
    assert res.code == 1
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert summary["errors"] == 1 and summary["samples"] == 3
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
        "line 2: not a JSON object",
        "line 3: no model_response",
        "line 4: no reference",
        "line 5: not a JSON object",
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
