"""`deepvision eval run` end to end against a scripted server on 127.0.0.1: exact metrics,
reports (checked in headless Chromium), resume after a kill, settings pinned to the folder."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_server import ScriptedServer

from deepvision.cli.main import main
from deepvision.eval import load_problems

N = 2


@pytest.fixture(scope="module")
def synth_items():
    items = list(load_problems("synth", None))
    keys = {base64.b64encode(p.images[0].bytes).decode(): p.id for p in items}
    assert len(keys) == len(items), "synth items must have distinct first images"
    return items, keys


def plan(index: int, sample: int) -> str:
    """What the scripted model does for item `index`, sample `sample`."""
    if sample == 0:
        return "right" if index % 2 == 0 else "wrong"
    if index % 5 == 0:
        return "unparsed"
    return "right" if index % 3 == 0 else "wrong"


def make_script(items):
    by_id = {p.id: (i, p) for i, p in enumerate(items)}

    def script(pid: str, sample: int) -> tuple[str, str]:
        i, p = by_id[pid]
        what = plan(i, sample)
        finish = "length" if i % 7 == 0 and sample == 1 else "stop"
        if what == "right":
            return f"Reading the figure, the result follows. \\boxed{{{p.answer}}}", finish
        if what == "wrong":  # markup a model may write must not break the report page
            return "After <!--<script> & </script> work: \\boxed{-98765}", finish
        return "I am not sure.", finish

    return script


def expected(items) -> dict:
    rows = [[plan(i, s) for s in range(N)] for i in range(len(items))]
    right = [[x == "right" for x in r] for r in rows]
    acc = sum(sum(r) / N for r in right) / len(items)
    pass2 = sum(any(r) for r in right) / len(items)
    # Majority over parsed answers; a tie goes to the first sample's answer.
    # Sample 0 always parses, so it always wins the vote (alone, or by the tie rule).
    maj = sum(r[0] == "right" for r in rows) / len(items)
    unparsed = sum(r.count("unparsed") for r in rows)
    truncated = sum(1 for i in range(len(items)) if i % 7 == 0) / (N * len(items))
    return dict(acc=acc, pass2=pass2, maj=maj, unparsed=unparsed, truncated=truncated)


@pytest.fixture()
def server(synth_items):
    items, keys = synth_items
    s = ScriptedServer(keys, make_script(items)).start()
    yield s
    s.stop()


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_run_gives_exact_metrics_and_reports(tmp_path, server, synth_items):
    items, _ = synth_items
    out = tmp_path / "run"
    rc = run_cli("--quiet", "eval", "run", "--benchmarks", "synth", "--endpoint", server.url,
                 "--model", "scripted", "--n", str(N), "--out", str(out))  # fmt: skip
    assert rc == 0
    assert server.unknown == 0
    res = json.loads((out / "results.json").read_text())
    b = res["benchmarks"]["synth"]
    want = expected(items)
    assert b["items"] == b["expected"] == len(items) and b["missing"] == 0 and b["unjudged"] == 0
    assert not b["accuracy"]["partial"] and b["accuracy"]["total"] == N * len(items)
    assert b["accuracy"]["value"] == pytest.approx(want["acc"])
    assert b["pass_at_k"]["1"]["value"] == pytest.approx(want["acc"])
    assert b["pass_at_k"]["2"]["value"] == pytest.approx(want["pass2"])
    assert b["maj_at_n"]["value"] == pytest.approx(want["maj"])
    assert b["unparsed"] == want["unparsed"]
    assert b["truncated"]["value"] == pytest.approx(want["truncated"])
    assert b["mean_tokens"] == pytest.approx(7) and b["median_tokens"] == pytest.approx(7)
    lo, hi = b["ci95"]
    assert lo < b["accuracy"]["value"] < hi and hi - lo < 0.4
    # Breakdowns add up to the items; every family appears.
    fam = b["breakdowns"]["family"]
    assert sum(g["items"] for g in fam.values()) == len(items)
    assert all(not g["accuracy"]["partial"] for g in fam.values())
    assert res["average"]["accuracy"]["value"] == pytest.approx(want["acc"])
    # One verdict per sample; unparsed answers are wrong with no extracted answer.
    verdicts = [json.loads(x) for x in (out / "synth" / "responses.verdicts.jsonl").open()]
    assert len(verdicts) == N * len(items)
    assert sum(v["extracted"] is None for v in verdicts) == want["unparsed"]
    md = (out / "report.md").read_text()
    assert "Synth (embedded)" in md and f"{100 * want['acc']:.2f}" in md
    wrong_items = len({v["problem_id"] for v in verdicts if not v["correct"]})
    check_html(out / "report.html", expect_rows=wrong_items)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is needed for the report test: apt-get install chromium"
    return path


def render(page: str, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the console messages (errors included)."""
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--dump-dom", page]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout.split("<script")[0], console  # rows live before the scripts


def check_html(path: Path, expect_rows: int) -> None:
    """The item browser lists `expect_rows` items with a wrong sample, a page at a time, and
    filters them by the category named in the address."""
    dom, console = render(path.as_uri(), path.parent / "chrome-profile")
    assert console == [], console
    assert f'data-rows="{expect_rows}"' in dom
    shown = sum("hidden" not in tr for tr in re.findall(r'<tr class="item"[^>]*>', dom))
    assert shown == min(expect_rows, 25) and f'data-page-rows="{shown}"' in dom
    # A filter from the address: one family only.
    dom, console = render(path.as_uri() + "#bench=synth&cat=family=shape_count",
                          path.parent / "chrome-profile2")  # fmt: skip
    assert console == []
    rows = int(re.search(r'data-rows="(\d+)"', dom).group(1))
    assert 0 < rows < expect_rows


def test_rerun_resumes_and_pinned_settings(tmp_path, server):
    out = tmp_path / "run"
    args = ["--quiet", "eval", "run", "--endpoint", server.url, "--model", "scripted",
            "--n", str(N), "--out", str(out), "--limit", "10"]  # fmt: skip
    assert run_cli(*args) == 0
    before = (out / "synth" / "responses.jsonl").read_text()
    requests = server.stats.requests
    assert run_cli(*args) == 0
    assert server.stats.requests == requests, "a finished run sends nothing again"
    assert (out / "synth" / "responses.jsonl").read_text() == before
    # Other settings in the same folder: a clear error, nothing touched.
    rc = run_cli("--quiet", "eval", "run", "--endpoint", server.url, "--model", "scripted",
                 "--n", "4", "--out", str(out), "--limit", "10")  # fmt: skip
    assert rc != 0
    assert (out / "synth" / "responses.jsonl").read_text() == before


@pytest.mark.slow
def test_kill_mid_run_then_resume(tmp_path, synth_items):
    items, keys = synth_items
    slow = ScriptedServer(keys, make_script(items), slow_rate=1.0, slow_s=0.15).start()
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "deepvision.cli.main", "--quiet", "eval", "run",
           "--endpoint", slow.url, "--model", "scripted", "--n", str(N), "--out", str(out),
           "--concurrency", "2"]  # fmt: skip
    try:
        proc = subprocess.Popen(cmd, start_new_session=True)
        responses = out / "synth" / "responses.jsonl"
        deadline = time.monotonic() + 180  # generous: a loaded machine starts slowly
        while time.monotonic() < deadline:
            if responses.exists() and responses.read_text().count("\n") >= 8:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = responses.read_text().count("\n")
        assert 8 <= done_before < len(items)
        assert not (out / "results.json").exists()
    finally:
        slow.stop()
    fast = ScriptedServer(keys, make_script(items)).start()
    try:
        cmd[cmd.index(slow.url)] = fast.url
        assert subprocess.run(cmd, timeout=300).returncode == 0
        assert fast.stats.requests == len(items) - done_before
    finally:
        fast.stop()
    lines = [json.loads(x) for x in (out / "synth" / "responses.jsonl").open()]
    assert sorted(x["id"] for x in lines) == sorted(p.id for p in items)
    res = json.loads((out / "results.json").read_text())
    assert res["benchmarks"]["synth"]["accuracy"]["value"] == pytest.approx(expected(items)["acc"])


def test_compare_two_runs_and_list(tmp_path, server, synth_items, capsys):
    items, keys = synth_items
    a, b = tmp_path / "base", tmp_path / "better"
    common = ["--quiet", "eval", "run", "--model", "m", "--n", "1", "--limit", "10"]
    assert run_cli(*common, "--endpoint", server.url, "--out", str(a)) == 0
    perfect = ScriptedServer(keys, lambda pid, k: (f"\\boxed{{{by_id[pid].answer}}}", "stop"))
    by_id = {p.id: p for p in items}
    perfect.start()
    try:
        assert run_cli(*common, "--endpoint", perfect.url, "--out", str(b)) == 0
    finally:
        perfect.stop()
    acc_a = json.loads((a / "results.json").read_text())["benchmarks"]["synth"]["accuracy"]
    acc_a = acc_a["value"]
    assert run_cli("eval", "compare", str(a), str(b), "--out", str(tmp_path / "cmp")) == 0
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| base |" in md and "| better |" in md
    assert f"{100 * acc_a:.2f} / 7" in md and "100.00 / 7" in md
    assert f"{100 * (1 - acc_a):+.2f} / +0" in md
    assert "<table>" in (tmp_path / "cmp" / "compare.html").read_text()
    assert run_cli("eval", "compare", str(tmp_path / "nothing")) == 2
    capsys.readouterr()
    assert run_cli("eval", "list", "--data-dir", str(tmp_path)) == 0
    listing = capsys.readouterr().out
    assert "synth" in listing and "not found" in listing and "60" in listing


def test_list_shows_synth_problems_read_from_the_data_folder(tmp_path, capsys):
    from deepvision.data.synth import generate
    from deepvision.data.writer import ProblemWriter

    with ProblemWriter(tmp_path / "synth.parquet") as w:
        w.write(list(generate(7, seed=3)))
    assert run_cli("eval", "list", "--data-dir", str(tmp_path)) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if "synth" in x)
    assert "problems" in row and "embedded" not in row and row.rstrip(" │|").endswith("7")


def test_llm_judge_overrides_rule_negatives_and_an_unreachable_judge_is_loud(
    tmp_path, server, synth_items
):
    from deepvision.llm.fake_server import FakeServer, Faults

    items, _ = synth_items
    judge = FakeServer(Faults(reply="Correct")).start()
    out = tmp_path / "judged"
    args = ["--quiet", "eval", "run", "--endpoint", server.url, "--model", "scripted",
            "--n", str(N), "--out", str(out)]  # fmt: skip
    try:
        rc = run_cli(*args, "--judge-endpoint", judge.url, "--judge-model", "j")
    finally:
        judge.stop()
    assert rc == 0
    b = json.loads((out / "results.json").read_text())["benchmarks"]["synth"]
    want = expected(items)
    # Every wrong but parsed sample is overturned; unparsed ones never reach the judge.
    samples = N * len(items)
    assert b["accuracy"]["value"] == pytest.approx((samples - want["unparsed"]) / samples)
    assert b["overturned_by_judge"] == samples - want["unparsed"] - round(want["acc"] * samples)
    assert b["rule_accuracy"]["value"] == pytest.approx(want["acc"])
    # A judge that fails every call: verdicts are missing, counted, and the command says so.
    out2 = tmp_path / "failing"
    args2 = [a if a != str(out) else str(out2) for a in args]
    failing = FakeServer(Faults(bad_request_rate=1.0)).start()
    try:
        rc = run_cli(*args2, "--judge-endpoint", failing.url, "--judge-model", "j")
    finally:
        failing.stop()
    assert rc == 1
    b2 = json.loads((out2 / "results.json").read_text())["benchmarks"]["synth"]
    unjudged = samples - want["unparsed"] - round(want["acc"] * samples)
    assert b2["unjudged"] == unjudged
    # the share of the decided samples is not the result: the bounds are, labelled partial
    acc2 = b2["accuracy"]
    assert acc2["value"] is None and acc2["partial"] and acc2["total"] == samples
    assert acc2["lower_bound"] == pytest.approx(want["acc"])
    assert acc2["upper_bound"] == pytest.approx(want["acc"] + unjudged / samples)
    # A judge nobody answers stops the run in seconds, before any inference.
    out3 = tmp_path / "unreachable"
    args3 = [a if a != str(out) else str(out3) for a in args]
    before = server.stats.requests
    rc = run_cli(*args3, "--judge-endpoint", "http://127.0.0.1:9/v1", "--judge-model", "j")
    assert rc == 1 and server.stats.requests == before
    assert not (out3 / "results.json").exists()


def test_a_benchmark_with_no_usable_item_is_an_error_not_zero_percent(tmp_path, server):
    (tmp_path / "m3cot.jsonl").write_text(
        json.dumps({"id": 1, "question": "q", "image": "gone.png", "answer": "A"}) + "\n"
    )
    rc = run_cli("--quiet", "eval", "run", "--benchmarks", "m3cot", "--data-dir", str(tmp_path),
                 "--endpoint", server.url, "--model", "m",
                 "--out", str(tmp_path / "run"))  # fmt: skip
    assert rc == 1
    assert not (tmp_path / "run" / "results.json").exists()


def test_adding_a_judge_to_a_finished_run_rejudges_its_rule_negatives(
    tmp_path, server, synth_items
):
    from deepvision.llm.fake_server import FakeServer, Faults

    items, _ = synth_items
    out = tmp_path / "run"
    args = ["--quiet", "eval", "run", "--endpoint", server.url, "--model", "scripted",
            "--n", str(N), "--out", str(out)]  # fmt: skip
    assert run_cli(*args) == 0
    want = expected(items)
    before = json.loads((out / "results.json").read_text())["benchmarks"]["synth"]
    assert before["accuracy"]["value"] == pytest.approx(want["acc"])
    requests = server.stats.requests
    judge = FakeServer(Faults(reply="Correct")).start()
    try:
        assert run_cli(*args, "--judge-endpoint", judge.url, "--judge-model", "j") == 0
    finally:
        judge.stop()
    assert server.stats.requests == requests, "the model is not asked again"
    after = json.loads((out / "results.json").read_text())["benchmarks"]["synth"]
    samples = N * len(items)
    assert after["accuracy"]["value"] == pytest.approx((samples - want["unparsed"]) / samples)
    verdicts = (out / "synth" / "responses.verdicts.jsonl").read_text().splitlines()
    assert len(verdicts) == samples
    # another model in the same folder is still refused
    assert run_cli(*[a if a != "scripted" else "other" for a in args]) == 1


def test_inference_failure_reasons_survive_judging(tmp_path, synth_items, capsys):
    """Each step writes its own files: the judge never writes over the reasons inference
    recorded for the items it gave up on (it once did, through a shared errors file)."""
    from deepvision.records import EvalFiles

    items, keys = synth_items
    flaky = ScriptedServer(keys, make_script(items), fail_rate=0.3).start()
    out = tmp_path / "run"
    try:
        rc = run_cli(
            "--quiet",
            "eval",
            "run",
            "--endpoint",
            flaky.url,
            "--model",
            "scripted",
            "--n",
            str(N),
            "--out",
            str(out),
            "--attempts",
            "1",
        )
    finally:
        flaky.stop()
    assert rc == 1  # items are missing: the command says so
    files = EvalFiles(out)
    infer_files, judge_files = files.infer("synth"), files.judge("synth")
    b = json.loads(files.results.read_text())["benchmarks"]["synth"]
    failed = [json.loads(x) for x in infer_files.errors.open()]
    assert 0 < len(failed) == b["inference"]["failed"] == b["missing"]
    assert all("500" in f["reason"] and f["id"] for f in failed)
    # the failed items are part of the set: the headline is partial, never over the answered
    assert b["expected"] == len(items) and b["items"] == len(items) - len(failed)
    acc = b["accuracy"]
    assert acc["value"] is None and acc["partial"] and acc["total"] == N * len(items)
    assert acc["decided"] == N * b["items"] and b["ci95"] is None
    assert all(f["value"] is None for f in (*b["pass_at_k"].values(), b["maj_at_n"]))
    err = capsys.readouterr().err
    assert f"partial synth: accuracy partial: {100 * acc['lower_bound']:.2f}%" in err
    assert f"{len(failed)} of {len(items)} items without an answer" in err
    assert "re-run the same command to finish" in err
    md = files.report_md.read_text()
    assert "partial " in md and f"{len(failed)} of {len(items)} items without an answer" in md
    answered = {json.loads(x)["id"] for x in infer_files.out.open()}
    assert not answered & {f["id"] for f in failed}
    # the judge's files are its own, and hold verdicts of the answered items only
    paths = [infer_files.out, infer_files.errors, *judge_files.all().values()]
    assert len(set(paths)) == len(paths)
    wrong = [json.loads(x) for x in judge_files.wrong.open()]
    assert wrong and all(w["problem_id"] in answered and not w["correct"] for w in wrong)
    assert not judge_files.judge_errors.exists()


def test_a_bad_line_in_a_run_folder_is_named_by_file_and_line(tmp_path, server, capsys):
    from deepvision.errors import DataError
    from deepvision.eval.metrics import collect_items
    from deepvision.records import EvalFiles

    out = tmp_path / "run"
    args = [
        "--quiet",
        "eval",
        "run",
        "--endpoint",
        server.url,
        "--model",
        "scripted",
        "--n",
        str(N),
        "--out",
        str(out),
        "--limit",
        "5",
    ]
    assert run_cli(*args) == 0
    files = EvalFiles(out)
    verdicts, responses = files.judge("synth").verdicts, files.responses("synth")
    lines = verdicts.read_text().splitlines(keepends=True)
    lines[2] = json.dumps({"problem_id": "x", "sample": 0, "extracted": "1"}) + "\n"
    verdicts.write_text("".join(lines))
    with pytest.raises(DataError, match=r"responses\.verdicts\.jsonl:3: .*correct"):
        collect_items(responses, verdicts)
    capsys.readouterr()
    assert run_cli(*args) == 1  # the re-run stops at the bad line instead of skipping it
    assert "responses.verdicts.jsonl:3" in capsys.readouterr().err
    # a damaged output line is named the same way, not skipped
    verdicts.write_text("")
    answers = responses.read_text().splitlines(keepends=True)
    responses.write_text("".join(answers[:1]) + "{not json\n" + "".join(answers[1:]))
    with pytest.raises(DataError, match=r"responses\.jsonl:2: not JSON"):
        collect_items(responses, verdicts)


def test_a_judge_answering_500_to_everything_ends_partial_in_bounded_time(tmp_path, capsys):
    """Every rule-negative goes to a judge that fails every call: the run ends (no hang),
    exits 1, and says partial, with the bounds, in results.json, report.md and the summary."""
    from deepvision.llm.fake_server import FakeServer, Faults, Scripted

    model = FakeServer(Faults(reply="I think \\boxed{-98765}")).start()  # parsed, always wrong
    judge = FakeServer(responder=lambda body: Scripted(status=500)).start()
    out = tmp_path / "run"
    t0 = time.monotonic()
    try:
        args = ["--quiet", "eval", "run", "--endpoint", model.url, "--model", "m"]
        args += ["--n", str(N), "--limit", "10", "--out", str(out), "--attempts", "2"]
        args += ["--timeout", "5", "--judge-endpoint", judge.url, "--judge-model", "j"]
        rc = run_cli(*args)
    finally:
        model.stop()
        judge.stop()
    assert time.monotonic() - t0 < 120, "a failing judge must not hold the run"
    assert rc == 1
    b = json.loads((out / "results.json").read_text())["benchmarks"]["synth"]
    assert b["unjudged"] == b["samples"] == 10 * N and b["judge"]["judge_errors"] == 10 * N
    acc = b["accuracy"]
    assert acc["value"] is None and (acc["lower_bound"], acc["upper_bound"]) == (0.0, 1.0)
    err = capsys.readouterr().err
    assert "partial synth: accuracy partial: 0.00%-100.00% (20 of 20 undecided)" in err
    assert "| partial 0.00-100.00 |" in (out / "report.md").read_text()
    failed = (out / "synth" / "responses.judge-errors.jsonl").read_text().splitlines()
    assert len(failed) == 10 * N


def test_benchmark_images_outside_the_data_folder_are_never_sent(tmp_path):
    """A benchmark record naming `../secret.png` or an absolute path is rejected at load time
    (counted, named in the report): its bytes never reach the model server or report.html.
    `--allow-absolute-paths` admits the absolute one, never the relative one."""
    from conftest import png_bytes
    from deepvision.llm.fake_server import FakeServer

    data = tmp_path / "bench"
    data.mkdir()
    (data / "ok.png").write_bytes(png_bytes((10, 200, 10)))
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes((1, 2, 3), size=(9, 7)))
    images = {"ok": "ok.png", "up": "../secret.png", "abs": str(secret)}
    rows = [{"id": k, "question": "Which?", "image": v, "answer": "A"} for k, v in images.items()]
    (data / "m3cot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    sent: list[str] = []

    def model(body):
        for m in body["messages"]:
            for part in m["content"] if isinstance(m.get("content"), list) else []:
                if part.get("type") == "image_url":
                    sent.append(part["image_url"]["url"])
        return "\\boxed{B}"

    secret_b64 = base64.b64encode(secret.read_bytes()).decode()
    fake = FakeServer(responder=model).start()
    args = ["--quiet", "eval", "run", "-b", "m3cot", "--data-dir", str(data)]
    args += ["--endpoint", fake.url, "--model", "m"]
    try:
        rc = run_cli(*args, "--out", str(tmp_path / "run"))
        assert len(sent) == 1 and not any(secret_b64 in url for url in sent)
        rc_abs = run_cli(*args, "--out", str(tmp_path / "abs"), "--allow-absolute-paths")
    finally:
        fake.stop()
    assert rc == 1, "rejected records leave the result partial"
    b = json.loads((tmp_path / "run" / "results.json").read_text())["benchmarks"]["m3cot"]
    assert (b["expected"], b["items"], b["skipped_records"]) == (3, 1, 2)
    assert b["accuracy"]["value"] is None
    md = (tmp_path / "run" / "report.md").read_text()
    assert "image path '../secret.png' leaves the data folder" in md
    assert f"image path '{secret}' is absolute" in md
    assert secret_b64 not in (tmp_path / "run" / "report.html").read_text()
    # the explicit option: the absolute path is read and sent; `../` still is not
    assert rc_abs == 1 and sum(secret_b64 in url for url in sent) == 1
    b = json.loads((tmp_path / "abs" / "results.json").read_text())["benchmarks"]["m3cot"]
    assert (b["items"], b["skipped_records"]) == (2, 1)
