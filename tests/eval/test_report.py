"""Reports of an evaluation run: text from the data is inert in both report.md and
report.html, partial figures are shown as bounds, the n = 1 table shows each figure once, the
charts have ticked axes and readable bars and labels, the item browser has one row per item
with its samples inside (math typeset by the vendored KaTeX), and compare.html shows each
run's settings, CIs and per-category deltas. Pages are checked in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_run import render

from deepvision.eval import get_benchmark, load_problems
from deepvision.eval.metrics import collect_items, compute_metrics
from deepvision.eval.report import (
    MIN_BAR_PX,
    browser_items,
    compare_html,
    html_report,
    markdown_report,
    summary_rows,
    write_reports,
)
from deepvision.eval.run import average
from deepvision.records import Completion, EvalFiles, Verdict

HOSTILE = "<script>alert(1)</script>"
PIPED = "area | perimeter"


def _item(pid: str, category: str, correct: bool, judged: bool = True) -> dict:
    sample = {
        "correct": correct,
        "judged": judged,
        "extracted": "A",
        "method": "choice",
        "rule_correct": correct,
        "finish": "stop",
    }
    return {
        "id": pid,
        "categories": {"subject": category},
        "bench": {},
        "tokens": 5,
        "samples": [sample],
    }


def _run(n: int = 1, **extra) -> dict:
    return {
        "name": f"run {PIPED}",
        "model": HOSTILE,
        "n": n,
        "sampling": {},
        "max_tokens": None,
        "judge": None,
        "deepvision": "test",
        **extra,
    }


def _results(items: list[dict]) -> dict:
    bench = compute_metrics(get_benchmark("mathvision"), items, 1)
    bench["load"] = {"layout": "release", "path": f"data/{HOSTILE}.jsonl", "skipped": 0}
    benchmarks = {"mathvision": bench}
    return {"run": _run(), "benchmarks": benchmarks, "average": average(benchmarks)}


def test_category_names_are_escaped_in_markdown_and_html():
    results = _results([_item("1", HOSTILE, True), _item("2", PIPED, False)])
    md = markdown_report(results)
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "area" in line]
    assert rows == ["| area \\| perimeter | 1 | 0.00 |"], "a pipe must not split the row"
    # every table row keeps its columns
    for line in md.splitlines():
        if line.startswith("| &lt;script"):
            assert line.replace("\\|", "").count("|") == 4
    page = html_report(results, [], {})
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "area | perimeter" in page  # a pipe means nothing in HTML


def test_a_partial_set_shows_bounds_not_the_decided_share():
    items = [_item("1", "x", True), _item("2", "x", True), _item("3", "x", False, judged=False)]
    results = _results(items)
    acc = results["benchmarks"]["mathvision"]["accuracy"]
    assert acc["value"] is None and acc["over_decided"] == 1.0
    md = markdown_report(results)
    assert "| partial 66.67-100.00 |" in md
    assert "| 100.00 |" not in md, "the share of the decided items is not the result"
    assert "partial: 66.67%-100.00% (1 of 3 undecided; 100.00% of the 2 decided)" in md
    assert results["average"]["accuracy"]["value"] is None
    page = html_report(results, [], {})
    assert "partial 66.67-100.00" in page and ">100.00<" not in page


def test_an_n1_table_shows_each_figure_once():
    results = _results([_item("1", "x", True), _item("2", "x", False)])
    head, rows = summary_rows(results)
    assert not any(h.startswith(("maj@", "pass@")) for h in head), "all three are avg@1"
    assert all(len(r) == len(head) for r in rows)
    assert [r[head.index("acc (avg@1)")] for r in rows] == ["50.00", "50.00"]
    assert rows[0].count("50.00") == 1, "the accuracy once"
    results["run"]["n"] = 4
    head4, _ = summary_rows(results)
    assert {"acc (avg@4)", "pass@1", "pass@4", "maj@4"} <= set(head4)


# ------------------------------------------------------------------ a run on disk

QUESTION = "<image>\nThe line meets the axis at $x=\\frac{1}{3}$. Is it \\boxed{x^2}?"


def _verdict(pid: str, k: int, right: bool, answer: str | None) -> dict:
    method = "symbolic" if answer is not None else "none"
    return Verdict(right, answer, method, "", pid, k).to_json()


def write_run(out: Path, plan: list[list[bool]], options: bool = False) -> list[str]:
    """A finished synth run in `out`: item i's samples right or wrong as `plan[i]` says (n =
    len(plan[0])), 7 completion tokens per sample, a math question and TeX answers. Returns
    the ids."""
    problems = list(load_problems("synth", None))[: len(plan)]
    files = EvalFiles(out)
    files.bench_dir("synth").mkdir(parents=True)
    n = len(plan[0])
    lines, verdicts = [], []
    for p, row in zip(problems, plan, strict=True):
        texts = [  # markup a model may write stays text
            f"{HOSTILE} So the answer is \\boxed{{{p.answer if right else '-7'}}}." + " more" * k
            for k, right in enumerate(row)
        ]
        samples = [
            Completion(p.id, k, t, "stop", {"completion_tokens": 7 * n})
            for k, t in enumerate(texts)
        ]
        fields = {
            "question": QUESTION + ("\nA. 1\nB. 2" if options else ""),
            "answer": "\\frac{1}{3}",
            "options": ["1", "2"] if options else None,
            "categories": p.extra["categories"],
        }
        lines.append(Completion.to_output_line(fields, samples))
        verdicts += [
            _verdict(p.id, k, right, "\\frac{1}{3}" if right else "-7")
            for k, right in enumerate(row)
        ]
    files.responses("synth").write_text("".join(json.dumps(x) + "\n" for x in lines))
    files.judge("synth").verdicts.write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    return [p.id for p in problems]


def results_of(out: Path, n: int) -> dict:
    files = EvalFiles(out)
    items = collect_items(files.responses("synth"), files.judge("synth").verdicts)
    bench = {"synth": compute_metrics(get_benchmark("synth"), items, n)}
    run = _run(n, name=out.name, sampling={"temperature": 0.6, "top_p": 0.95}, max_tokens=512)
    return {"run": run, "benchmarks": bench, "average": average(bench)}


def _plan(items: int) -> list[list[bool]]:
    """Three samples per item: all right, all wrong, or mixed, in turn."""
    return [[i % 3 == 0, i % 3 != 1 and i % 2 == 0, i % 3 == 0] for i in range(items)]


def test_the_browser_has_one_row_per_item_with_its_samples_and_math_typeset(tmp_path):
    out = tmp_path / "run"
    plan = _plan(60)
    write_run(out, plan, options=True)
    results = results_of(out, 3)
    write_reports(out, results)
    page = (out / "report.html").read_text()
    with_wrong = sum(not all(r) for r in plan)
    with_right = sum(any(r) for r in plan)
    assert page.count("<tr class='item'") == len(plan), "one row per item, never per sample"
    assert page.count("<tr class='sample ") == 3 * len(plan)
    # The page carries the responses of two samples per verdict and item: the rest are named.
    kept = sum(min(r.count(True), 2) + min(r.count(False), 2) for r in plan)
    assert page.count("<div class='resp tex'>") == kept < 3 * len(plan)
    assert (
        page.count("Responses of 1 more sample(s) are in responses.jsonl") == 3 * len(plan) - kept
    )
    # Options the question lists already are not listed again; tokens per sample are shown
    # (a reply counts all 3 samples together: split by length, marked as estimates).
    assert "<ol type='A'>" not in page
    assert re.search(r"≈\d+ tokens", page)
    # Without JavaScript the math is there as written; no markup from the data survives.
    assert "x=\\frac{1}{3}" in page and "&lt;image&gt;" in page
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt; So the answer" in page

    dom, console = render(out.as_uri() + "/report.html", tmp_path / "profile")
    assert console == [], console
    assert f'data-rows="{with_wrong}"' in dom and 'data-page-rows="25"' in dom
    assert f"showing 1-25 of {with_wrong}" in dom
    assert dom.count('class="katex"') >= 25 * 3, "question, \\boxed{} and gold typeset per row"
    assert 'class="katex-error"' not in dom

    dom, console = render(out.as_uri() + "/report.html#view=right&page=2", tmp_path / "p2")
    assert console == [], console
    assert f'data-rows="{with_right}"' in dom and with_right > 25
    assert f'data-page-rows="{with_right - 25}"' in dom


def test_options_the_question_does_not_show_are_listed(tmp_path):
    out = tmp_path / "run"
    write_run(out, _plan(3))
    lines = [json.loads(x) for x in EvalFiles(out).responses("synth").open()]
    for line in lines:
        line["options"] = ["twelve", "$\\pi$"]
    EvalFiles(out).responses("synth").write_text("".join(json.dumps(x) + "\n" for x in lines))
    items, _ = browser_items(out, results_of(out, 3), None)
    page = html_report(results_of(out, 3), items, {})
    assert page.count("<ol type='A'>") == len(items) == 3
    assert "<li class='tex'>$\\pi$</li>" in page


def test_a_capped_browser_says_how_many_more(tmp_path):
    out = tmp_path / "run"
    plan = _plan(30)
    write_run(out, plan)
    results = results_of(out, 3)
    items, counts = browser_items(out, results, None, max_items=5)
    with_wrong = sum(not all(r) for r in plan)
    assert counts["synth"].total["wrong"] == with_wrong and counts["synth"].shown["wrong"] == 5
    assert sum("wrong" in it["views"] for it in items) == 5
    page = html_report(results, items, counts)
    assert (
        f"5 of {with_wrong} items with a wrong sample are shown here ({with_wrong - 5} more)"
        in (page)
    )


def _chart_results() -> dict:
    """Four benchmarks: one at 2.5%, two at nearly the same accuracy and tokens (labels that
    would collide), one far off."""
    benchmarks = {}
    for name, right, tokens in (
        ("mathvision", 1, 812),
        ("mathverse", 30, 800),
        ("mathvista", 31, 805),
        ("wemath", 36, 2950),
    ):
        items = [_item(str(i), "x", i < right) for i in range(40)]
        for it in items:
            it["tokens"] = tokens
        benchmarks[name] = compute_metrics(get_benchmark("mathvision"), items, 1)
        benchmarks[name]["title"] = f"{name} (a long benchmark title)"
    return {"run": _run(), "benchmarks": benchmarks, "average": average(benchmarks)}


# Measured by the browser: the label boxes of the scatter that overlap, and per chart the
# ticks on each axis, written on the body for --dump-dom to show.
_MEASURE = """<script>
var labels = [].slice.call(document.querySelectorAll('#scatter text.label')).map(function(t){
  return t.getBBox();});
var overlaps = 0;
labels.forEach(function(a, i){ labels.slice(i + 1).forEach(function(b){
  if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height)
    overlaps += 1; }); });
var bars = [].slice.call(document.querySelectorAll('#bars rect.bar')).map(function(r){
  return r.getBBox().width;});
document.body.setAttribute('data-measured', JSON.stringify({overlaps: overlaps,
  labels: labels.length, narrowest: Math.min.apply(null, bars),
  bars_x: document.querySelectorAll('#bars .tick.x').length,
  scatter_x: document.querySelectorAll('#scatter .tick.x').length,
  scatter_y: document.querySelectorAll('#scatter .tick.y').length}));
</script></body>"""


def test_charts_have_ticked_axes_readable_bars_and_labels_apart(tmp_path):
    results = _chart_results()
    page = html_report(results, [], {})
    path = tmp_path / "report.html"
    path.write_text(page.replace("</body>", _MEASURE))
    dom, console = render(path.as_uri(), tmp_path / "profile")
    assert console == [], console
    measured = json.loads(
        re.search(r'data-measured="([^"]*)"', dom).group(1).replace("&quot;", '"')
    )
    assert measured["labels"] == 4 and measured["overlaps"] == 0
    assert measured["narrowest"] >= MIN_BAR_PX
    assert min(measured["bars_x"], measured["scatter_x"], measured["scatter_y"]) >= 3
    assert ">2.50</text>" in page, "the 2.5% bar carries its value"
    assert "accuracy (%)" in page and "mean completion tokens per sample" in page


def test_the_page_stays_small_and_works_offline():
    page = html_report(_chart_results(), [], {})
    assert len(page.encode()) < 1_000_000, "KaTeX with its fonts adds well under 1 MB"
    assert "url(fonts/" not in page and "font/woff2;base64," in page
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "Copyright (c) 2013-2020 Khan Academy" in page, "KaTeX's licence travels with it"


def test_compare_html_shows_settings_ci_and_category_deltas(tmp_path):
    runs = []
    for name, plan in (("base", _plan(12)), ("better", [[True, True, True]] * 12)):
        write_run(tmp_path / name, plan)
        runs.append(results_of(tmp_path / name, 3))
    runs[1]["run"]["sampling"] = {"temperature": 1.0, "top_p": 0.95, "top_k": 20}
    page = compare_html(runs)
    assert "<td>base</td><td>&lt;script&gt;" in page
    assert "<td>3</td><td>0.6</td><td>0.95</td><td>512</td>" in page
    assert "<td>3</td><td>1.0</td><td>0.95</td><td>512</td><td>{&quot;top_k&quot;: 20}" in page
    assert "Warning: the runs differ in sampling" in page
    base = runs[0]["benchmarks"]["synth"]
    lo, hi = base["ci95"]
    assert f"{100 * base['accuracy']['value']:.2f} [{100 * lo:.2f}-{100 * hi:.2f}]" in page
    for family, g in base["breakdowns"]["family"].items():
        delta = 100 * (1 - g["accuracy"]["value"])
        assert f"<td>family = {family}</td>" in page
        assert f"<td>100.00</td><td>{delta:+.2f}</td>" in page
