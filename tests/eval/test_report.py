"""Reports of an evaluation run: text from the data is inert in both report.md and
report.html, and partial figures are shown as bounds, never as the result."""

from __future__ import annotations

from deepvision.eval import get_benchmark
from deepvision.eval.metrics import compute_metrics
from deepvision.eval.report import html_report, markdown_report
from deepvision.eval.run import average

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


def _results(items: list[dict]) -> dict:
    bench = compute_metrics(get_benchmark("mathvision"), items, 1)
    bench["load"] = {"layout": "release", "path": f"data/{HOSTILE}.jsonl", "skipped": 0}
    benchmarks = {"mathvision": bench}
    run = {
        "name": f"run {PIPED}",
        "model": HOSTILE,
        "n": 1,
        "sampling": {},
        "max_tokens": None,
        "judge": None,
        "deepvision": "test",
    }
    return {"run": run, "benchmarks": benchmarks, "average": average(benchmarks)}


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
