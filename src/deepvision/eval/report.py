"""Reports of evaluation runs: `report.md` and a self-contained `report.html` (summary table,
accuracy bars, accuracy vs tokens, per-category tables, and an error browser with the image,
question, options, gold, extracted answer, verdict method and response of each wrong sample,
filterable by benchmark and category), and the comparison of several runs.

The HTML has no external resource: styles, script, charts (SVG) and thumbnails are inline.
Filters can be set from the address: `report.html#bench=wemath&cat=step=one-step`.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from deepvision.eval.metrics import read_outputs
from deepvision.eval.registry import get_benchmark
from deepvision.records import EvalFiles, Verdict, data_uri
from deepvision.verify.judge import iter_verdicts

MAX_ERRORS_SHOWN = 100  # wrong samples per benchmark in the error browser
_RESPONSE_CHARS = 3000


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _tok(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    n = results["run"]["n"]
    head = ["benchmark", "items", f"acc (avg@{n})", "95% CI", "pass@1", f"pass@{n}", f"maj@{n}",
            "mean tokens", "median tokens", "truncated %", "unparsed", "missing"]  # fmt: skip
    rows = []
    for name, b in results["benchmarks"].items():
        pk = b.get("pass_at_k", {})
        rows.append(
            [
                b.get("title", name),
                str(b["items"]),
                _pct(b["accuracy"]),
                f"{_pct(b['ci95'][0])}-{_pct(b['ci95'][1])}",
                _pct(pk.get("1")),
                _pct(pk.get(str(n))),
                _pct(b["maj_at_n"]),
                _tok(b["mean_tokens"]),
                _tok(b["median_tokens"]),
                _pct(b["truncated"]),
                str(b["unparsed"]),
                str(b["missing"]),
            ]
        )
    avg = results.get("average") or {}
    rows.append(["**average**", "", _pct(avg.get("accuracy")), "", "", "", "",
                 _tok(avg.get("mean_tokens")), "", "", "", ""])  # fmt: skip
    return head, rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _wemath_rows(w: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["mode", "score", "IK %", "IG %", "CM %", "RM %"]
    rows = [
        [mode, _pct(w[mode]["score"]), _pct(w[mode]["IK"]), _pct(w[mode]["IG"]),
         _pct(w[mode]["CM"]), _pct(w[mode]["RM"])]
        for mode in ("strict", "loose")
    ]  # fmt: skip
    return head, rows


def markdown_report(results: dict[str, Any]) -> str:
    run = results["run"]
    out = [
        f"# Evaluation: {run['name']}",
        "",
        f"Model `{run['model']}`, n = {run['n']}, sampling `{json.dumps(run['sampling'])}`, "
        f"max tokens {run['max_tokens'] or 'server default'}, LLM judge: "
        f"{run['judge'] or 'none (rules only)'}; deepvision {run['deepvision']}.",
        "",
        _md_table(*summary_rows(results)),
        "",
        "Accuracy is the mean over the n samples (avg@n), in percent; the 95% CI is over items. "
        "Unparsed answers and missing items count as wrong.",
    ]
    for name, b in results["benchmarks"].items():
        out += ["", f"## {b.get('title', name)}", ""]
        load = b.get("load") or {}
        out.append(
            f"Data: {load.get('layout', '?')} layout, `{load.get('path', '?')}`"
            + (f", fields {json.dumps(load.get('fields'))}" if load.get("fields") else "")
            + (
                f"; **{load['skipped']} record(s) unusable, counted as wrong**"
                if load.get("skipped")
                else ""
            )
            + "."
        )
        if b.get("overturned_by_judge"):
            out.append(
                f"Rule accuracy {_pct(b['rule_accuracy'])}; the LLM judge overturned "
                f"{b['overturned_by_judge']} verdict(s)."
            )
        if "wemath_4d" in b:
            out += ["", "Four-dimensional metrics:", "", _md_table(*_wemath_rows(b["wemath_4d"]))]
        for key, groups in (b.get("breakdowns") or {}).items():
            out += ["", f"By {key}:", "", "| " + key + " | items | acc |", "|---|---|---|"]
            out += [f"| {v} | {g['items']} | {_pct(g['accuracy'])} |" for v, g in groups.items()]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- HTML


def _thumb(data: bytes | None) -> str | None:
    if not data:
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            im.thumbnail((320, 320))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=70)
    except Exception:  # an image we cannot draw is shown as missing, not a failed report
        return None
    return data_uri(buf.getvalue(), "image/jpeg")


def _clip(text: str) -> str:
    if len(text) <= _RESPONSE_CHARS:
        return text
    half = _RESPONSE_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters ...]\n{text[-half:]}"


def error_rows(
    run_dir: Path, results: dict[str, Any], data_dir: Path | None, max_per_bench: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The wrong samples shown in the browser (at most `max_per_bench` per benchmark) and how
    many wrong samples each benchmark has in all."""
    rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    files = EvalFiles(run_dir)
    for name in results["benchmarks"]:
        wrong: dict[str, list[Verdict]] = {}
        for v in iter_verdicts(files.judge(name).verdicts):
            if not v.correct:
                wrong.setdefault(str(v.problem_id), []).append(v)
        totals[name] = sum(len(v) for v in wrong.values())
        shown: dict[str, list[dict[str, Any]]] = {}
        budget = max_per_bench
        for line, samples in read_outputs(files.responses(name)):
            pid = samples[0].problem_id
            if pid not in wrong or budget <= 0:
                continue
            texts = [c.text for c in samples]
            for v in wrong[pid][:budget]:
                k = v.sample if v.sample is not None else 0
                shown.setdefault(pid, []).append(
                    {
                        "bench": name,
                        "id": pid,
                        "sample": k,
                        "categories": line.get("categories") or {},
                        "question": line.get("question") or "",
                        "options": line.get("options") or [],
                        "gold": line.get("answer") or "",
                        "extracted": v.extracted,
                        "method": v.method,
                        "reason": v.reason,
                        "response": _clip(str(texts[k] if k < len(texts) else "")),
                        "images": [],
                    }
                )
                budget -= 1
        if shown:
            _attach_images(name, data_dir, shown)
        rows += [r for pid_rows in shown.values() for r in pid_rows]
    return rows, totals


def _attach_images(name: str, data_dir: Path | None, shown: dict[str, list[dict]]) -> None:
    try:
        bench = get_benchmark(name)
        for p in bench.load(data_dir):
            if p.id in shown:
                thumbs = [t for t in (_thumb(im.bytes) for im in p.images) if t]
                for r in shown[p.id]:
                    r["images"] = thumbs
    except Exception:  # the data may have moved since the run: the report goes without images
        return


def _bars_svg(results: dict[str, Any]) -> str:
    items = list(results["benchmarks"].items())
    w, bar, gap, left = 640, 22, 8, 190
    h = len(items) * (bar + gap) + 30
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
             'aria-label="accuracy per benchmark">']  # fmt: skip
    for i, (name, b) in enumerate(items):
        y = 10 + i * (bar + gap)
        width = (w - left - 70) * b["accuracy"]
        lo, hi = b["ci95"]
        x_lo, x_hi = left + (w - left - 70) * lo, left + (w - left - 70) * hi
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">'
            f"{html.escape(b.get('title', name))}</text>"
            f'<rect x="{left}" y="{y}" width="{width:.1f}" height="{bar}" fill="#4c78a8"/>'
            f'<line x1="{x_lo:.1f}" x2="{x_hi:.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" '
            'stroke="#222" stroke-width="1.5"/>'
            f'<text x="{left + width + 6:.1f}" y="{y + 16}">{_pct(b["accuracy"])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _scatter_svg(results: dict[str, Any]) -> str:
    pts = [(n, b) for n, b in results["benchmarks"].items() if b.get("mean_tokens") is not None]
    w, h, pad = 640, 320, 50
    if not pts:
        return "<p>No token counts in the outputs (the server reported no usage).</p>"
    tmax = max(b["mean_tokens"] for _, b in pts) * 1.1 or 1.0
    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="accuracy vs tokens">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#888"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#888"/>',
        f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">mean completion tokens</text>',
        f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
        "accuracy %</text>",
        f'<text x="{pad - 6}" y="{h - pad}" text-anchor="end">0</text>'
        f'<text x="{pad - 6}" y="16" text-anchor="end">100</text>'
        f'<text x="{w - 10}" y="{h - pad + 16}" text-anchor="end">{tmax:.0f}</text>',
    ]
    for name, b in pts:
        x = pad + (w - pad - 20) * b["mean_tokens"] / tmax
        y = (h - pad) - (h - pad - 10) * b["accuracy"]
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="#f58518"/>'
            f'<text x="{x + 9:.1f}" y="{y + 4:.1f}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip('*'))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


_ASSETS = Path(__file__).parent / "assets"


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def html_report(
    results: dict[str, Any], errors: list[dict[str, Any]], totals: dict[str, int],
    max_per_bench: int = MAX_ERRORS_SHOWN,
) -> str:  # fmt: skip
    run = results["run"]
    sections = [
        f"<h1>Evaluation: {html.escape(run['name'])}</h1>",
        f"<p>Model <code>{html.escape(str(run['model']))}</code>, n = {run['n']}, sampling "
        f"<code>{html.escape(json.dumps(run['sampling']))}</code>, LLM judge: "
        f"{html.escape(str(run['judge'] or 'none (rules only)'))}.</p>",
        _html_table(*summary_rows(results)),
        "<h2>Accuracy per benchmark</h2>",
        _bars_svg(results),
        "<h2>Accuracy vs mean completion tokens</h2>",
        _scatter_svg(results),
        "<h2>By category</h2>",
    ]
    for name, b in results["benchmarks"].items():
        inner = []
        if "wemath_4d" in b:
            inner.append(
                "<h4>Four-dimensional metrics</h4>" + _html_table(*_wemath_rows(b["wemath_4d"]))
            )
        for key, groups in (b.get("breakdowns") or {}).items():
            rows = [[v, str(g["items"]), _pct(g["accuracy"])] for v, g in groups.items()]
            inner.append(
                f"<h4>By {html.escape(key)}</h4>" + _html_table([key, "items", "acc"], rows)
            )
        title = html.escape(b.get("title", name))
        sections.append(f"<details><summary>{title}</summary>{''.join(inner)}</details>")
    note = "; ".join(f"{n}: {min(t, max_per_bench)} of {t} shown" for n, t in totals.items() if t)
    sections += [
        "<h2>Error browser</h2>",
        f"<p>Wrong samples ({html.escape(note or 'none')}). Showing <span id='shown'>0</span>.</p>",
        "<p class='filters'>Benchmark <select id='f-bench'><option value=''>all</option></select>"
        "Category <select id='f-cat'><option value=''>all</option></select></p>",
        "<table id='errors'><thead><tr><th>item</th><th>image</th><th>question / options</th>"
        "<th>gold</th><th>extracted</th><th>verdict</th><th>response</th></tr></thead>"
        "<tbody></tbody></table>",
    ]
    # Inside <script>, only `<` can end or confuse the block (`</script>`, `<!--`): escape it
    # (and `>` and `&`) as JSON unicode escapes, which JSON.parse reads back unchanged.
    payload = (
        json.dumps(errors, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>DeepVision evaluation: {html.escape(run['name'])}</title>"
        f"<style>{_asset('report.css')}</style></head><body>{''.join(sections)}"
        f"<script type='application/json' id='error-data'>{payload}</script>"
        f"<script>{_asset('report.js')}</script></body></html>\n"
    )


def write_reports(
    run_dir: Path, results: dict[str, Any], data_dir: Path | None = None,
    max_errors: int = MAX_ERRORS_SHOWN,
) -> None:  # fmt: skip
    files = EvalFiles(run_dir)
    files.report_md.write_text(markdown_report(results), encoding="utf-8")
    errors, totals = error_rows(run_dir, results, data_dir, max_errors)
    page = html_report(results, errors, totals, max_errors)
    files.report_html.write_text(page, encoding="utf-8")


# -------------------------------------------------------------------------- compare


def load_results(run_dir: Path) -> dict[str, Any]:
    path = EvalFiles(run_dir).results
    if not path.is_file():
        from deepvision.errors import UsageError

        raise UsageError(f"{run_dir}: no results.json (run `deepvision eval run` first)")
    return json.loads(path.read_text(encoding="utf-8"))


def compare_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The reference-style table: a row per run, "acc / tokens" per benchmark and the
    average; runs after the first also get a row of deltas against the first."""
    names: list[str] = []
    for r in runs:
        names += [b for b in r["benchmarks"] if b not in names]
    head = ["run", *[runs[0]["benchmarks"].get(b, {}).get("title", b) for b in names], "average"]

    def cell(b: dict[str, Any] | None) -> str:
        if not b:
            return "-"
        return f"{_pct(b['accuracy'])} / {_tok(b.get('mean_tokens'))}"

    rows = []
    base = runs[0]
    for r in runs:
        rows.append([r["run"]["name"], *[cell(r["benchmarks"].get(b)) for b in names],
                     cell(r.get("average"))])  # fmt: skip
        if r is base:
            continue
        deltas = []
        common = [b for b in names if b in r["benchmarks"] and b in base["benchmarks"]]
        for b in [*names, None]:
            if b is None:  # the average delta is over the benchmarks both runs have
                x, y = average_of(r, common), average_of(base, common)
            else:
                x, y = r["benchmarks"].get(b), base["benchmarks"].get(b)
            if not x or not y:
                deltas.append("-")
                continue
            dt = (
                f"{x['mean_tokens'] - y['mean_tokens']:+.0f}"
                if x.get("mean_tokens") is not None and y.get("mean_tokens") is not None
                else "-"
            )
            deltas.append(f"{100 * (x['accuracy'] - y['accuracy']):+.2f} / {dt}")
        rows.append([f"  delta vs {base['run']['name']}", *deltas])
    return head, rows


def average_of(run: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    if not names:
        return None
    bs = [run["benchmarks"][b] for b in names]
    toks = [b["mean_tokens"] for b in bs if b.get("mean_tokens") is not None]
    return {
        "accuracy": sum(b["accuracy"] for b in bs) / len(bs),
        "mean_tokens": sum(toks) / len(toks) if len(toks) == len(bs) else None,
    }


def compare_markdown(runs: list[dict[str, Any]]) -> str:
    head, rows = compare_table(runs)
    return (
        "# Run comparison\n\nAccuracy (%) / mean completion tokens per benchmark; deltas are "
        f"against `{runs[0]['run']['name']}`.\n\n{_md_table(head, rows)}\n"
    )


def compare_html(runs: list[dict[str, Any]]) -> str:
    head, rows = compare_table(runs)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Run comparison"
        f"</title><style>{_asset('report.css')}</style></head><body><h1>Run comparison</h1>"
        "<p>Accuracy (%) / "
        f"mean completion tokens; deltas against {html.escape(runs[0]['run']['name'])}.</p>"
        f"{_html_table(head, rows)}</body></html>\n"
    )
