"""Reports of evaluation runs: `report.md` and a self-contained `report.html` (summary table,
accuracy bars, accuracy vs tokens, per-category tables, and an error browser with the image,
question, options, gold, extracted answer, verdict method and response of each wrong sample,
filterable by benchmark and category), and the comparison of several runs.

The HTML has no external resource: styles, script, charts (SVG) and thumbnails are inline.
Filters can be set from the address: `report.html#bench=wemath&cat=step=one-step`.

Every figure is shown as its `records.Share` says: the value when the whole set was decided,
else `partial lo-hi` (the bounds), never the share of the decided items as the result. Text
from the data (titles, category names, paths) is escaped in both reports: HTML entities and
table pipes in markdown, HTML entities in the page.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from deepvision.errors import UsageError
from deepvision.eval.metrics import mean_share, read_outputs
from deepvision.eval.registry import get_benchmark
from deepvision.records import EvalFiles, Share, Verdict, data_uri
from deepvision.verify.judge import iter_verdicts

MAX_ERRORS_SHOWN = 100  # wrong samples per benchmark in the error browser
_RESPONSE_CHARS = 3000


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _tok(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def _figure(share: dict[str, Any] | None) -> str:
    """A table cell for a `Share.to_json()` figure: the value over the whole set, or
    `partial lo-hi` (percent) while part of the set is undecided; `-` when there is none."""
    if not share or share.get("lower_bound") is None:
        return "-"
    if not share["partial"]:
        return _pct(share["value"])
    return f"partial {_pct(share['lower_bound'])}-{_pct(share['upper_bound'])}"


def share_text(share: dict[str, Any]) -> str:
    """The one-line `Share.text()` of a figure read back from results.json."""
    return Share(share["hits"], share["decided"], share["total"]).text()


def undecided_text(b: dict[str, Any]) -> str:
    """What keeps a benchmark's figures partial, in words."""
    parts = []
    if b["missing"]:
        unusable = b.get("skipped_records", 0)
        parts.append(
            f"{b['missing']} of {b['expected']} items without an answer"
            + (f" ({unusable} unusable record(s))" if unusable else "")
        )
    if b["unjudged"]:
        parts.append(f"{b['unjudged']} answered sample(s) without a verdict")
    return ", ".join(parts)


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    n = results["run"]["n"]
    head = ["benchmark", "items", "missing", "unjudged", f"acc (avg@{n})", "95% CI"]
    head += ["pass@1", f"pass@{n}", f"maj@{n}", "mean tokens", "median tokens", "truncated %"]
    head += ["unparsed"]
    rows = []
    for name, b in results["benchmarks"].items():
        pk = b.get("pass_at_k", {})
        ci = b.get("ci95")
        rows.append(
            [
                b.get("title", name),
                str(b["expected"]),
                str(b["missing"]),
                str(b["unjudged"]),
                _figure(b["accuracy"]),
                f"{_pct(ci[0])}-{_pct(ci[1])}" if ci else "-",
                _figure(pk.get("1")),
                _figure(pk.get(str(n))),
                _figure(b["maj_at_n"]),
                _tok(b["mean_tokens"]),
                _tok(b["median_tokens"]),
                _figure(b["truncated"]),
                str(b["unparsed"]),
            ]
        )
    avg = results.get("average") or {}
    average = ["**average**", "", "", "", _figure(avg.get("accuracy")), "", "", "", ""]
    rows.append([*average, _tok(avg.get("mean_tokens")), "", "", ""])
    return head, rows


def summary_markdown(results: dict[str, Any]) -> str:
    """The summary table as plain Markdown, every number in full (for logs and pipes)."""
    return _md_table(*summary_rows(results))


# Settings that change the numbers: runs compared side by side should share them.
_COMPARED_SETTINGS = ("n", "sampling", "max_tokens", "system_prompt")


def setting_differences(runs: list[dict[str, Any]]) -> list[str]:
    """Each setting in which the runs differ, with every run's value (`n: base=1, new=8`); a
    setting a run does not record (an older results.json) is not compared."""
    out = []
    for key in _COMPARED_SETTINGS:
        values = [(r["run"]["name"], r["run"][key]) for r in runs if key in r["run"]]
        if len({json.dumps(v, sort_keys=True) for _, v in values}) > 1:
            shown = ", ".join(f"{name}={_short(v)}" for name, v in values)
            out.append(f"{key.replace('_', ' ')} ({shown})")
    return out


def _short(value: Any, chars: int = 40) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _md(text: Any) -> str:
    """Data text made inert in markdown: HTML entities (no tag or script survives), escaped
    pipes and backslashes (a table keeps its columns), code-span backticks, one line."""
    out = html.escape(" ".join(str(text).split()), quote=False)
    for ch in "\\|`*[]":
        out = out.replace(ch, "\\" + ch)
    return out


def _load_notes(load: dict[str, Any]) -> list[str]:
    """What the loader did not take as shipped, one line each: records skipped (undecided
    until the data folder is fixed) and excluded (out of the set), golds normalized, option
    strings sent as shipped or lettered again; each list ends with a blank line."""
    lines = [f"- unusable, undecided: {_md(x)}" for x in load.get("skipped_examples") or []]
    lines += [f"- excluded from the set: {_md(x)}" for x in load.get("excluded") or []]
    lines += [
        f"- gold of {_md(g['id'])} normalized: `{_md(repr(g['stored']))}` -> `{_md(g['used'])}`"
        for g in load.get("golds_normalized") or []
    ]
    if load.get("options_unparsed"):
        ids = ", ".join(_md(x) for x in load["options_unparsed"])
        lines.append(f"- options sent as shipped (could not be split), scored apart: {ids}")
    if load.get("options_relettered"):
        ids = ", ".join(_md(x) for x in load["options_relettered"])
        lines.append(f"- options that skipped a letter, lettered again with the gold: {ids}")
    return [*lines, ""] if lines else []


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _wemath_rows(w: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["mode", "score", "IK %", "IG %", "CM %", "RM %"]
    if w.get("partial"):  # no four-dimensional figure over a partial set
        cell = f"partial: {w['undecided_composites']} of {w['composites']} composites undecided"
        return head, [[mode, cell, "-", "-", "-", "-"] for mode in ("strict", "loose")]
    rows = [
        [mode, _pct(w[mode]["score"]), _pct(w[mode]["IK"]), _pct(w[mode]["IG"]),
         _pct(w[mode]["CM"]), _pct(w[mode]["RM"])]
        for mode in ("strict", "loose")
    ]  # fmt: skip
    return head, rows


def _category_rows(groups: dict[str, Any]) -> list[list[str]]:
    return [[v, str(g["items"]), _figure(g["accuracy"])] for v, g in groups.items()]


def markdown_report(results: dict[str, Any]) -> str:
    run = results["run"]
    out = [
        f"# Evaluation: {_md(run['name'])}",
        "",
        f"Model {_md(run['model'])}, n = {run['n']}, sampling {_md(json.dumps(run['sampling']))}, "
        f"max tokens {run['max_tokens'] or 'server default'}, LLM judge: "
        f"{_md(run['judge'] or 'none (rules only)')}; deepvision {_md(run['deepvision'])}.",
        "",
        _md_table(*summary_rows(results)),
        "",
        "Accuracy is the mean over the n samples (avg@n), in percent; the 95% CI is over items. "
        "Unparsed answers count as wrong. A figure over a set with undecided samples (items "
        "without an answer, samples without a verdict) is shown as `partial lo-hi`: the bounds "
        "it lies between whatever those samples turn out to be; it is not the result.",
    ]
    partial = [(name, b) for name, b in results["benchmarks"].items() if b["accuracy"]["partial"]]
    if partial:
        out += ["", "**Partial results** (re-run the same command to finish):", ""]
        for name, b in partial:
            acc = share_text(b["accuracy"])
            out.append(f"- {_md(b.get('title', name))}: accuracy {acc}; {undecided_text(b)}")
    failed = results.get("failed") or {}
    if failed:
        out += ["", "**Benchmarks that could not be evaluated** (fix the data, re-run):", ""]
        out += [f"- {_md(name)}: {_md(why)}" for name, why in failed.items()]
    for name, b in results["benchmarks"].items():
        out += ["", f"## {_md(b.get('title', name))}", ""]
        load = b.get("load") or {}
        out.append(
            f"Data: {_md(load.get('layout', '?'))} layout, {_md(load.get('path', '?'))}"
            + (f", fields {_md(json.dumps(load.get('fields')))}" if load.get("fields") else "")
            + (
                f"; **{load['skipped']} record(s) unusable, undecided**"
                if load.get("skipped")
                else ""
            )
            + "."
        )
        out += ["", *_load_notes(load)]
        out.append(
            f"Items {b['expected']}: answered {b['items']}, without an answer {b['missing']}; "
            f"samples without a verdict {b['unjudged']}; accuracy {share_text(b['accuracy'])}."
        )
        if b.get("overturned_by_judge"):
            out.append(
                f"Rule accuracy {_figure(b['rule_accuracy'])}; the LLM judge overturned "
                f"{b['overturned_by_judge']} verdict(s)."
            )
        if "wemath_4d" in b:
            out += ["", "Four-dimensional metrics:", "", _md_table(*_wemath_rows(b["wemath_4d"]))]
        for key, groups in (b.get("breakdowns") or {}).items():
            rows = [[_md(v), items, acc] for v, items, acc in _category_rows(groups)]
            out += ["", f"By {_md(key)}:", "", _md_table([_md(key), "items", "acc"], rows)]
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
    run_dir: Path,
    results: dict[str, Any],
    data_dir: Path | None,
    max_per_bench: int,
    allow_absolute: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The wrong samples shown in the browser (at most `max_per_bench` per benchmark) and how
    many wrong samples each benchmark has in all."""
    rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    files = EvalFiles(run_dir)
    for name in results["benchmarks"]:
        wrong: dict[str, list[Verdict]] = {}
        for v in iter_verdicts(files.judge(name).verdicts):
            if not v.correct and not v.undecided:
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
            _attach_images(name, data_dir, shown, allow_absolute)
        rows += [r for pid_rows in shown.values() for r in pid_rows]
    return rows, totals


def _attach_images(
    name: str, data_dir: Path | None, shown: dict[str, list[dict]], allow_absolute: bool
) -> None:
    """Thumbnails of the shown items, read by the benchmark's loader (so from inside the data
    folder only, as the run was)."""
    try:
        bench = get_benchmark(name)
        for p in bench.load(data_dir, allow_absolute=allow_absolute):
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
    scale = w - left - 70
    for i, (name, b) in enumerate(items):
        y = 10 + i * (bar + gap)
        acc = b["accuracy"]
        lo, hi = acc["lower_bound"] or 0.0, acc["upper_bound"] or 0.0
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">'
            f"{html.escape(b.get('title', name))}</text>"
            f'<rect x="{left}" y="{y}" width="{scale * lo:.1f}" height="{bar}" fill="#4c78a8"/>'
        )
        if acc["partial"]:  # the range the figure lies in, not a bar of a figure
            parts.append(
                f'<rect x="{left + scale * lo:.1f}" y="{y}" width="{scale * (hi - lo):.1f}" '
                f'height="{bar}" fill="#c9d6e6"/>'
            )
        elif b.get("ci95"):
            x_lo, x_hi = (left + scale * x for x in b["ci95"])
            parts.append(
                f'<line x1="{x_lo:.1f}" x2="{x_hi:.1f}" y1="{y + bar / 2}" y2="{y + bar / 2}" '
                'stroke="#222" stroke-width="1.5"/>'
            )
        parts.append(f'<text x="{left + scale * hi + 6:.1f}" y="{y + 16}">{_figure(acc)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _scatter_svg(results: dict[str, Any]) -> str:
    pts = [
        (n, b)
        for n, b in results["benchmarks"].items()
        if b.get("mean_tokens") is not None and not b["accuracy"]["partial"]
    ]
    w, h, pad = 640, 320, 50
    if not pts:
        return "<p>No benchmark with token counts and a whole-set accuracy to plot.</p>"
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
        y = (h - pad) - (h - pad - 10) * b["accuracy"]["value"]
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
            rows = _category_rows(groups)
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
    max_errors: int = MAX_ERRORS_SHOWN, allow_absolute: bool = False,
) -> None:  # fmt: skip
    files = EvalFiles(run_dir)
    files.report_md.write_text(markdown_report(results), encoding="utf-8")
    errors, totals = error_rows(run_dir, results, data_dir, max_errors, allow_absolute)
    page = html_report(results, errors, totals, max_errors)
    files.report_html.write_text(page, encoding="utf-8")


# -------------------------------------------------------------------------- compare


def load_results(run_dir: Path) -> dict[str, Any]:
    """A run's results.json; one written before figures were `Share`s (a bare number that
    counted missing items as wrong) is refused: the re-run rebuilds it without asking again."""
    path = EvalFiles(run_dir).results
    if not path.is_file():
        raise UsageError(f"{run_dir}: no results.json (run `deepvision eval run` first)")
    results = json.loads(path.read_text(encoding="utf-8"))
    if not all(isinstance(b.get("accuracy"), dict) for b in results["benchmarks"].values()):
        raise UsageError(
            f"{path} was written by an older deepvision: re-run the same `deepvision eval run "
            f"--out {run_dir}` command to rebuild it (nothing is asked again)"
        )
    return results


def compare_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The reference-style table: a row per run, "acc / tokens" per benchmark and the
    average; runs after the first also get a row of deltas against the first (only between
    whole-set figures: a partial one has no delta)."""
    names: list[str] = []
    for r in runs:
        names += [b for b in r["benchmarks"] if b not in names]
    head = ["run", *[runs[0]["benchmarks"].get(b, {}).get("title", b) for b in names], "average"]

    def cell(b: dict[str, Any] | None) -> str:
        if not b:
            return "-"
        return f"{_figure(b['accuracy'])} / {_tok(b.get('mean_tokens'))}"

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
            ax, ay = x["accuracy"]["value"], y["accuracy"]["value"]
            da = "partial" if ax is None or ay is None else f"{100 * (ax - ay):+.2f}"
            deltas.append(f"{da} / {dt}")
        rows.append([f"  delta vs {base['run']['name']}", *deltas])
    return head, rows


def average_of(run: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    """The unweighted mean accuracy and mean tokens of the benchmarks `names` of a run."""
    if not names:
        return None
    bs = [run["benchmarks"][b] for b in names]
    toks = [b["mean_tokens"] for b in bs if b.get("mean_tokens") is not None]
    return {
        "accuracy": mean_share([b["accuracy"] for b in bs]).to_json(),
        "mean_tokens": sum(toks) / len(toks) if len(toks) == len(bs) else None,
    }


def compare_markdown(runs: list[dict[str, Any]]) -> str:
    head, rows = compare_table(runs)
    rows = [[_md(r[0]), *r[1:]] for r in rows]  # run names are folder names: any text
    differ = "".join(
        f"\n**Warning**: the runs differ in {_md(d)}; their figures are not comparable as "
        "they stand.\n"
        for d in setting_differences(runs)
    )
    return (
        "# Run comparison\n\nAccuracy (%) / mean completion tokens per benchmark (`partial lo-hi` "
        "where a run left part of a set undecided); deltas are against "
        f"{_md(runs[0]['run']['name'])}.\n{differ}\n{_md_table(head, rows)}\n"
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
