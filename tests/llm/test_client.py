"""The inference client against a real HTTP server on 127.0.0.1 with injected faults."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from deepvision.llm.client import InferConfig, Request, infer, repair_tail
from deepvision.llm.fake_server import FakeServer, Faults
from deepvision.llm.messages import openai_messages

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def _requests(n, pulled=None, prefix="p"):
    for i in range(n):
        if pulled is not None:
            pulled.append(i)
        yield Request(
            f"{prefix}{i}",
            {"answer": str(i)},
            [{"role": "user", "content": "<image>Find x."}],
            [lambda: (PNG, "image/png")],
        )


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def _cfg(*urls, **kw):
    base = dict(concurrency=8, max_attempts=8, backoff=0.01, timeout=5.0, bench_after=10**6)
    base.update(kw)
    return InferConfig(list(urls), "m", **base)


@pytest.fixture
def server():
    servers = []

    def start(**faults):
        s = FakeServer(Faults(**faults)).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def test_messages_put_each_image_where_its_placeholder_is():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "A<image>B<image>"}]
    out = openai_messages(msgs, [lambda: (b"1", "image/png"), lambda: (b"2", "image/jpeg")])
    parts = out[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text", "image_url"]
    assert parts[1]["image_url"]["url"] == "data:image/png;base64,MQ=="
    assert parts[3]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    bare = openai_messages([{"role": "user", "content": "Q"}], [lambda: (PNG, "image/png")])
    assert [p["type"] for p in bare[0]["content"]] == ["image_url", "text"]
    with pytest.raises(ValueError, match="1 <image> placeholder"):
        openai_messages([{"role": "user", "content": "<image>"}], [])


def test_faults_are_retried_and_every_key_is_written_exactly_once(server, tmp_path):
    s = server(fail_rate=0.15, rate_limit_rate=0.05, reset_rate=0.05, malformed_rate=0.05, seed=3)
    out = tmp_path / "out.jsonl"
    summary = asyncio.run(infer(_requests(300), out, _cfg(s.url)))
    lines = _lines(out)
    assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(300))
    assert summary.done == 300 and summary.failed == 0 and summary.retries > 30
    assert {"500", "429", "reset", "malformed"} <= set(s.stats.by_outcome)
    rec = next(x for x in lines if x["id"] == "p7")
    assert rec["answer"] == "7" and "1 image(s)" in rec["model_response"]
    assert rec["usage"]["completion_tokens"] == 5 and rec["endpoint"] == s.url


def test_non_retryable_errors_are_recorded_at_once_with_the_server_message(server, tmp_path):
    s = server(bad_request_rate=1.0)
    out = tmp_path / "out.jsonl"
    summary = asyncio.run(infer(_requests(3), out, _cfg(s.url)))
    assert summary.failed == 3 and s.stats.requests == 3  # one attempt each
    errors = _lines(tmp_path / "out.errors.jsonl")
    assert "maximum context length" in errors[0]["reason"] and errors[0]["attempts"] == 1


def test_attempts_run_out_into_the_errors_file(server, tmp_path):
    s = server(fail_rate=1.0)
    out = tmp_path / "out.jsonl"
    summary = asyncio.run(infer(_requests(2), out, _cfg(s.url, max_attempts=3)))
    assert summary.failed == 2 and s.stats.requests == 6
    assert all("HTTP 500" in e["reason"] for e in _lines(tmp_path / "out.errors.jsonl"))
    assert not out.read_text()


def test_timeouts_are_retried(server, tmp_path):
    s = server(slow_rate=0.3, slow_s=1.0, seed=1)
    summary = asyncio.run(infer(_requests(20), tmp_path / "o.jsonl", _cfg(s.url, timeout=0.3)))
    assert summary.done == 20 and summary.retries > 0


def test_resume_skips_done_keys_and_repairs_a_torn_line(server, tmp_path):
    s = server()
    out = tmp_path / "out.jsonl"
    asyncio.run(infer(_requests(10), out, _cfg(s.url)))
    text = out.read_text().splitlines(keepends=True)
    out.write_text("".join(text[:6]) + text[6][:20])  # killed mid-line
    assert repair_tail(out) > 0 and len(_lines(out)) == 6
    before = s.stats.requests
    summary = asyncio.run(infer(_requests(10), out, _cfg(s.url)))
    assert (summary.skipped, summary.done) == (6, 4)
    assert s.stats.requests - before == 4
    assert sorted(x["id"] for x in _lines(out)) == sorted(f"p{i}" for i in range(10))


def test_duplicate_ids_are_reported_and_sent_once(server, tmp_path):
    s = server()
    reqs = list(_requests(5)) + list(_requests(2))
    summary = asyncio.run(infer(reqs, tmp_path / "o.jsonl", _cfg(s.url)))
    assert (
        summary.done == 5 and summary.duplicates == 2 and summary.duplicate_examples == ["p0", "p1"]
    )


def test_dead_endpoint_is_benched_and_work_goes_on_elsewhere(server, tmp_path):
    s = server()
    dead = "http://127.0.0.1:9/v1"  # nothing listens there
    cfg = _cfg(dead, s.url, bench_after=2, bench_seconds=60, max_attempts=10)
    summary = asyncio.run(infer(_requests(100), tmp_path / "o.jsonl", cfg))
    assert summary.done == 100 and summary.failed == 0
    assert {x["endpoint"] for x in _lines(tmp_path / "o.jsonl")} == {s.url}


def test_n_samples_fan_out_when_the_server_ignores_n(server, tmp_path):
    s = server(ignore_n=True)
    out = tmp_path / "o.jsonl"
    asyncio.run(infer(_requests(4), out, _cfg(s.url, n=3)))
    for rec in _lines(out):
        assert len(rec["model_responses"]) == 3 and len(rec["finish_reasons"]) == 3
        assert rec["sampling"]["n"] == 3
    assert s.stats.requests == 12


def test_prompts_are_built_lazily_just_ahead_of_dispatch(server, tmp_path):
    s = server()
    pulled, first_seen = [], []
    orig = s.handle_completion

    def spy(h, raw):
        if not first_seen:
            first_seen.append(len(pulled))
        orig(h, raw)

    s.handle_completion = spy
    asyncio.run(infer(_requests(2000, pulled), tmp_path / "o.jsonl", _cfg(s.url, concurrency=4)))
    assert first_seen[0] <= 4 + 4 + 1  # one queue's worth, not the dataset


def test_a_server_restart_mid_run_loses_nothing(tmp_path):
    first = FakeServer(Faults(slow_rate=1.0, slow_s=0.02)).start()
    port = first.port
    out = tmp_path / "o.jsonl"

    def restart():
        time.sleep(0.5)
        first.stop()
        time.sleep(0.5)
        FakeServer(Faults(), port=port).start()

    threading.Thread(target=restart, daemon=True).start()
    summary = asyncio.run(infer(_requests(200), out, _cfg(first.url, max_attempts=20, backoff=0.1)))
    assert summary.done == 200
    assert sorted(x["id"] for x in _lines(out)) == sorted(f"p{i}" for i in range(200))


CHILD = """
import asyncio, sys
from deepvision.llm.client import InferConfig, Request, infer
reqs = (Request(f"p{i}", {}, [{"role": "user", "content": "q"}]) for i in range(400))
asyncio.run(infer(reqs, sys.argv[2], InferConfig([sys.argv[1]], "m", concurrency=8)))
"""


def test_kill_9_mid_run_then_resume_gives_exactly_one_record_per_key(tmp_path):
    s = FakeServer(Faults(slow_rate=1.0, slow_s=0.01)).start()
    try:
        out = tmp_path / "o.jsonl"
        child = subprocess.Popen([sys.executable, "-c", CHILD, s.url, str(out)])
        deadline = time.time() + 30
        while time.time() < deadline and (not out.exists() or out.stat().st_size < 2000):
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        partial = len(out.read_text().splitlines())
        assert 0 < partial < 400
        reqs = (Request(f"p{i}", {}, [{"role": "user", "content": "q"}]) for i in range(400))
        summary = asyncio.run(infer(reqs, out, InferConfig([s.url], "m", concurrency=8)))
        ids = [x["id"] for x in _lines(out)]
        assert sorted(ids) == sorted(f"p{i}" for i in range(400))
        assert summary.skipped >= partial - 1
    finally:
        s.stop()
