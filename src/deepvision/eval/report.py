"""Reports of evaluation runs: `report.md` and a self-contained `report.html` (summary table,
accuracy bars and accuracy vs tokens on ticked axes, per-category tables, and an item browser:
one row per item with its image, question, gold and answers, its samples inside, in a view of
items with a wrong sample and one of items with a right one), and the comparison of several
runs (`compare.md`, `compare.html` with each run's settings, CIs and per-category deltas).

The HTML has no external resource: styles, scripts, KaTeX (vendored from npm, fonts inlined),
charts (SVG) and thumbnails are inline. Rows are written in the page, so with JavaScript off
everything shows, math as written. The view, filters and page can be set from the address:
`report.html#view=right&bench=wemath&cat=step=one-step&page=2`.

Every figure is shown as its `records.Share` says: the value when the whole set was decided,
else `partial lo-hi` (the bounds), never the share of the decided items as the result. Text
from the data (titles, category names, paths) is escaped in both reports: HTML entities and
table pipes in markdown, HTML entities in the page.
"""

from __future__ import annotations

import functools
import html
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepvision.errors import UsageError
from deepvision.eval.benchmark import shows_options
from deepvision.eval.metrics import mean_share, read_outputs
from deepvision.eval.registry import get_benchmark
from deepvision.records import Completion, EvalFiles, Share, Verdict, data_uri
from deepvision.verify.judge import iter_verdicts


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


def _summary_columns(n: int) -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    """The figure columns of the summary table and how each cell is read. With n = 1,
    pass@1, pass@n and maj@n are all the accuracy itself (avg@1): it is shown once."""

    def ci(b: dict[str, Any]) -> str:
        return f"{_pct(b['ci95'][0])}-{_pct(b['ci95'][1])}" if b.get("ci95") else "-"

    cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        (f"acc (avg@{n})", lambda b: _figure(b["accuracy"])),
        ("95% CI", ci),
    ]
    if n > 1:
        cols += [
            ("pass@1", lambda b: _figure(b.get("pass_at_k", {}).get("1"))),
            (f"pass@{n}", lambda b: _figure(b.get("pass_at_k", {}).get(str(n)))),
            (f"maj@{n}", lambda b: _figure(b["maj_at_n"])),
        ]
    return [
        *cols,
        ("mean tokens", lambda b: _tok(b["mean_tokens"])),
        ("median tokens", lambda b: _tok(b["median_tokens"])),
        ("truncated %", lambda b: _figure(b["truncated"])),
        ("unparsed", lambda b: str(b["unparsed"])),
    ]


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The summary table: a row per benchmark and the average row (accuracy and tokens)."""
    cols = _summary_columns(results["run"]["n"])
    head = ["benchmark", "items", "missing", "unjudged", *[name for name, _ in cols]]
    rows = []
    for name, b in results["benchmarks"].items():
        counts = [str(b["expected"]), str(b["missing"]), str(b["unjudged"])]
        rows.append([b.get("title", name), *counts, *[cell(b) for _, cell in cols]])
    avg = results.get("average") or {}
    average = {
        cols[0][0]: _figure(avg.get("accuracy")),
        "mean tokens": _tok(avg.get("mean_tokens")),
    }
    rows.append(["**average**", "", "", "", *[average.get(name, "") for name, _ in cols]])
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


# ---------------------------------------------------------------------------- charts

_CHAR_PX = 7.2  # a generous width of one 12 px character: label boxes are estimated with it
MIN_BAR_PX = 4.0  # a non-zero figure's bar is never drawn narrower than this


def axis_ticks(top: float, least: int = 3, most: int = 8) -> list[float]:
    """Round ticks from 0 that cover `top`, steps of 1, 2 or 5 x 10^k: of the steps that give
    `least` to `most` ticks, the one whose last tick is nearest `top` (the fewer ticks when
    two end alike)."""
    top = top if top > 0 else 1.0
    exp = math.ceil(math.log10(top))
    steps = [m * 10.0**e for e in range(exp, exp - 4, -1) for m in (1.0, 0.5, 0.2)]
    counts = [(math.ceil(top / step - 1e-9), step) for step in steps]
    count, step = min(
        ((c, st) for c, st in counts if least <= c + 1 <= most), key=lambda cs: cs[0] * cs[1]
    )
    return [round(i * step, 12) for i in range(count + 1)]


def _x_axis(
    ticks: list[float], x_of: Callable[[float], float], y0: float, y_top: float, title: str
) -> list[str]:
    """A horizontal axis at `y0`: its line, grid lines up to `y_top`, tick marks and labels,
    and its title."""
    left, right = x_of(ticks[0]), x_of(ticks[-1])
    parts = [f'<line class="axis" x1="{left:.1f}" x2="{right:.1f}" y1="{y0}" y2="{y0}"/>']
    for t in ticks:
        x = x_of(t)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{y_top}" y2="{y0}"/>'
            f'<line class="tick x" x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 5}"/>'
            f'<text x="{x:.1f}" y="{y0 + 18}" text-anchor="middle">{t:g}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{(left + right) / 2:.1f}" y="{y0 + 36}" '
        f'text-anchor="middle">{html.escape(title)}</text>'
    )
    return parts


def _fit(text: str, px: float) -> str:
    """`text` cut to about `px` pixels of 12 px type (an ellipsis marks the cut)."""
    chars = max(4, int(px / _CHAR_PX))
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _bars_svg(results: dict[str, Any]) -> str:
    """Accuracy per benchmark as horizontal bars on a 0-100 % axis with ticks and grid: the
    95% CI as a whisker, a partial figure as the light range it lies in, and the figure
    written after each bar. A non-zero bar is at least `MIN_BAR_PX` wide."""
    items = list(results["benchmarks"].items())
    w, left, right, top, bar, gap = 760, 240, 70, 10, 22, 8
    plot = w - left - right
    y0 = top + len(items) * (bar + gap)
    h = y0 + 46

    def x_of(share: float) -> float:
        return left + plot * share / 100

    parts = [
        f'<svg class="chart" id="bars" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="accuracy per benchmark">',
        *_x_axis(axis_ticks(100, least=5), x_of, y0, top - 4, "accuracy (%)"),
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top - 4}" y2="{y0}"/>',
    ]
    for i, (name, b) in enumerate(items):
        y = top + i * (bar + gap)
        acc = b["accuracy"]
        lo, hi = acc["lower_bound"] or 0.0, acc["upper_bound"] or 0.0
        width = max(plot * lo, MIN_BAR_PX) if lo > 0 else 0.0
        title = b.get("title", name)
        parts.append(
            f'<line class="tick y" x1="{left - 5}" x2="{left}" y1="{y + bar / 2}" '
            f'y2="{y + bar / 2}"/><text x="{left - 8}" y="{y + 16}" text-anchor="end">'
            f"<title>{html.escape(title)}</title>{html.escape(_fit(title, left - 12))}</text>"
            f'<rect class="bar" x="{left}" y="{y}" width="{width:.1f}" height="{bar}"/>'
        )
        end = left + width
        if acc["partial"]:  # the range the figure lies in, not a bar of a figure
            end = max(end, left + plot * hi)
            parts.append(
                f'<rect class="range" x="{left + width:.1f}" y="{y}" '
                f'width="{max(0.0, end - left - width):.1f}" height="{bar}"/>'
            )
        elif b.get("ci95"):
            x_lo, x_hi = (x_of(100 * x) for x in b["ci95"])
            end = max(end, x_hi)
            parts.append(
                f'<line class="ci" x1="{x_lo:.1f}" x2="{x_hi:.1f}" y1="{y + bar / 2}" '
                f'y2="{y + bar / 2}"/>'
            )
        value = _figure(acc)  # after the bar, or as far right as the chart lets it be
        x = min(end + 6, w - 4 - len(value) * _CHAR_PX)
        parts.append(f'<text class="value" x="{x:.1f}" y="{y + 16}">{value}</text>')
    parts.append("</svg>")
    note = (
        "Bars: accuracy; whisker: 95% CI over items; light bar: the range a partial figure lies in."
    )
    return "".join(parts) + f"<p class='note'>{note}</p>"


def _label_box(x: float, y: float, anchor: str, width: float) -> tuple[float, ...]:
    """The estimated box (x0, y0, x1, y1) of a 12 px label whose text starts at (x, y)."""
    x0 = {"start": x, "end": x - width, "middle": x - width / 2}[anchor]
    return (x0, y - 11, x0 + width, y + 3)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(
    points: list[tuple[float, float, str]], box: tuple[float, float, float, float]
) -> list[tuple[float, float, str]]:
    """Where each point's label goes (x, y, text-anchor): the first place right, left, above
    or below the point, then right or left further up or down, whose box overlaps no label
    placed before, no point, and stays inside `box` (x0, y0, x1, y1); right of the point
    when there is none."""
    taken = [(x - 6, y - 6, x + 6, y + 6) for x, y, _ in points]
    out = []
    for x, y, text in points:
        width = len(text) * _CHAR_PX
        candidates = [(x + 9, y + 4, "start"), (x - 9, y + 4, "end")]
        candidates += [(x, y - 11, "middle"), (x, y + 20, "middle")]
        for dy in (16, -16, 32, -32, 48, -48, 64, -64):
            candidates += [(x + 9, y + 4 + dy, "start"), (x - 9, y + 4 + dy, "end")]
        choice = candidates[0]
        for cand in candidates:
            r = _label_box(*cand, width)
            inside = box[0] <= r[0] and box[1] <= r[1] and r[2] <= box[2] and r[3] <= box[3]
            if inside and not any(_overlap(r, t) for t in taken):
                choice = cand
                break
        taken.append(_label_box(*choice, width))
        out.append(choice)
    return out


def _scatter_svg(results: dict[str, Any]) -> str:
    """Accuracy against mean completion tokens, one labelled point per benchmark with a
    whole-set accuracy; both axes ticked and gridded, labels placed so none overlaps."""
    pts = [
        (name, b)
        for name, b in results["benchmarks"].items()
        if b.get("mean_tokens") is not None and not b["accuracy"]["partial"]
    ]
    if not pts:
        return "<p>No benchmark with token counts and a whole-set accuracy to plot.</p>"
    w, h, left, right, top, bottom = 760, 380, 64, 30, 14, 52
    x_ticks = axis_ticks(max(b["mean_tokens"] for _, b in pts) * 1.05)
    y_ticks = axis_ticks(100, least=5)
    y0 = h - bottom

    def x_of(tokens: float) -> float:
        return left + (w - left - right) * tokens / x_ticks[-1]

    def y_of(pct: float) -> float:
        return y0 - (y0 - top) * pct / 100

    parts = [
        f'<svg class="chart" id="scatter" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="accuracy vs tokens">',
        *_x_axis(x_ticks, x_of, y0, top, "mean completion tokens per sample"),
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{y0}"/>',
        f'<text class="axis-title" x="16" y="{(top + y0) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + y0) / 2})">accuracy (%)</text>',
    ]
    for t in y_ticks:
        y = y_of(t)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{w - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<line class="tick y" x1="{left - 5}" x2="{left}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    xy = [
        (x_of(b["mean_tokens"]), y_of(100 * b["accuracy"]["value"]), b.get("title", name))
        for name, b in pts
    ]
    labels = _place_labels(xy, (left + 2, top, w - 4, y0 - 2))
    for (x, y, text), (lx, ly, anchor) in zip(xy, labels, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6"/><text class="label" x="{lx:.1f}" '
            f'y="{ly:.1f}" text-anchor="{anchor}">{html.escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- browser

MAX_ITEMS_SHOWN = 100  # items per benchmark and view (wrong / right) in the item browser
RESPONSES_PER_VERDICT = 2  # of an item's samples with one verdict, those whose text is kept
_RESPONSE_CHARS = 3000
_VIEWS = ("wrong", "right")


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


def sample_tokens(usage: dict[str, Any], texts: list[str]) -> list[str]:
    """The completion tokens of each sample as the page shows them. A reply reports one
    count for all the samples it carries: with one sample that count is the sample's; with
    several, it is split in proportion to each response's length and marked `≈`."""
    total = usage.get("completion_tokens")
    if not isinstance(total, int | float) or not texts:
        return ["-"] * len(texts)
    if len(texts) == 1:
        return [f"{total:.0f}"]
    chars = sum(len(t) for t in texts)
    return [f"≈{total * (len(t) / chars if chars else 1 / len(texts)):.0f}" for t in texts]


def _verdict_word(v: Verdict | None) -> str:
    if v is None:
        return "unjudged"
    if v.undecided:
        return "undecided"
    return "right" if v.correct else "wrong"


@dataclass
class BrowserCounts:
    """Per view (`wrong`, `right`): how many items of a benchmark have a sample of that kind,
    and how many of them the page shows."""

    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_VIEWS, 0))
    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_VIEWS, 0))


def browser_items(
    run_dir: Path,
    results: dict[str, Any],
    data_dir: Path | None,
    max_items: int = MAX_ITEMS_SHOWN,
    allow_absolute: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, BrowserCounts]]:
    """The items of the browser, one per item with all its samples inside: per benchmark the
    first `max_items` items with a wrong sample and the first `max_items` with a right one
    (an item in both views is listed once), and how many such items each benchmark has."""
    out: list[dict[str, Any]] = []
    counts: dict[str, BrowserCounts] = {}
    files = EvalFiles(run_dir)
    for name in results["benchmarks"]:
        verdicts = {
            (str(v.problem_id), v.sample if v.sample is not None else 0): v
            for v in iter_verdicts(files.judge(name).verdicts)
        }
        c = counts[name] = BrowserCounts()
        shown: dict[str, dict[str, Any]] = {}
        for line, samples in read_outputs(files.responses(name)):
            pid = samples[0].problem_id
            words = [_verdict_word(verdicts.get((pid, s.sample))) for s in samples]
            views = []
            for view in (v for v in _VIEWS if v in words):
                c.total[view] += 1
                if c.shown[view] < max_items:
                    c.shown[view] += 1
                    views.append(view)
            if views:
                shown[pid] = _browser_item(name, line, samples, verdicts, words, views)
        if shown:
            _attach_images(name, data_dir, shown, allow_absolute)
        out += shown.values()
    return out, counts


def _browser_item(
    bench: str,
    line: dict[str, Any],
    samples: list[Completion],
    verdicts: dict[tuple[str, int], Verdict],
    words: list[str],
    views: list[str],
) -> dict[str, Any]:
    """One item of the browser: what was asked, the gold, and each sample (verdict,
    extracted answer, tokens, finish, and the response of the first `RESPONSES_PER_VERDICT`
    samples of each verdict, so a page of many samples per item stays light and still shows
    both a wrong and a right response). Options are listed apart only when the question does
    not show them."""
    question = str(line.get("question") or "")
    options = [str(o) for o in line.get("options") or []]
    tokens = sample_tokens(samples[0].usage, [s.text for s in samples])
    rows = []
    for i, (s, word, tok) in enumerate(zip(samples, words, tokens, strict=True)):
        kept = words[:i].count(word) < RESPONSES_PER_VERDICT
        v = verdicts.get((s.problem_id, s.sample))
        rows.append(
            {
                "k": s.sample,
                "verdict": word,
                "extracted": v.extracted if v else None,
                "method": v.method if v else "",
                "reason": v.reason if v else "",
                "tokens": tok,
                "finish": s.finish_reason or "",
                "response": _clip(s.text) if kept else None,
            }
        )
    return {
        "bench": bench,
        "id": samples[0].problem_id,
        "views": views,
        "categories": line.get("categories") or {},
        "question": question,
        "options": [] if options and shows_options(question, options) else options,
        "gold": str(line.get("answer") or ""),
        "samples": rows,
        "images": [],
    }


def _attach_images(
    name: str, data_dir: Path | None, shown: dict[str, dict], allow_absolute: bool
) -> None:
    """Thumbnails of the shown items, read by the benchmark's loader (so from inside the data
    folder only, as the run was)."""
    try:
        bench = get_benchmark(name)
        for p in bench.load(data_dir, allow_absolute=allow_absolute):
            if p.id in shown:
                shown[p.id]["images"] = [t for t in (_thumb(im.bytes) for im in p.images) if t]
    except Exception:  # the data may have moved since the run: the report goes without images
        return


_MARK = {"right": "✓", "wrong": "✗", "undecided": "?", "unjudged": "–"}


def _answers_html(samples: list[dict[str, Any]]) -> str:
    """The distinct extracted answers of an item, each with its mark and how many samples
    gave it (unparsed ones together)."""
    seen: dict[tuple[str | None, str], int] = {}
    for s in samples:
        key = (s["extracted"], s["verdict"])
        seen[key] = seen.get(key, 0) + 1
    parts = []
    for (answer, word), count in seen.items():
        text = (
            "<i>unparsed</i>"
            if answer is None
            else f"<span class='tex-ans'>{html.escape(answer)}</span>"
        )
        times = f" ×{count}" if count > 1 else ""
        parts.append(f"<div class='{word}'>{_MARK[word]} {text}{times}</div>")
    return "".join(parts)


def _samples_html(samples: list[dict[str, Any]]) -> str:
    """The samples of an item in a table, each response behind its own disclosure."""
    tally = ", ".join(
        f"{sum(s['verdict'] == w for s in samples)} {w}"
        for w in _MARK
        if any(s["verdict"] == w for s in samples)
    )
    rows = []
    for s in samples:
        answer = (
            "<i>unparsed</i>"
            if s["extracted"] is None
            else f"<span class='tex-ans'>{html.escape(s['extracted'])}</span>"
        )
        rows.append(
            f"<tr class='sample {s['verdict']}'><td>#{s['k']}</td>"
            f"<td>{_MARK[s['verdict']]} {s['verdict']}</td><td>{answer}</td>"
            f"<td>{html.escape(s['method'])}<br><small>{html.escape(s['reason'])}</small></td>"
            f"<td>{html.escape(s['tokens'])} tokens<br><small>{html.escape(s['finish'])}</small>"
            "</td></tr>"
        )
        if s["response"] is not None:
            rows.append(
                "<tr><td></td><td colspan='4'><details><summary>response</summary>"
                f"<div class='resp tex'>{html.escape(s['response'])}</div></details></td></tr>"
            )
    hidden = sum(s["response"] is None for s in samples)
    more = (
        f"<p class='note'>Responses of {hidden} more sample(s) are in responses.jsonl.</p>"
        if hidden
        else ""
    )
    return (
        f"<details><summary>{len(samples)} sample(s): {tally}</summary>"
        f"<table class='samples'>{''.join(rows)}</table>{more}</details>"
    )


def _item_html(item: dict[str, Any]) -> str:
    """One row of the browser: an item, whole, with its samples inside."""
    cats = [f"{k}={v}" for k, v in item["categories"].items()]
    imgs = "".join(f'<img alt="figure" src="{u}">' for u in item["images"])
    opts = "".join(f"<li class='tex'>{html.escape(o)}</li>" for o in item["options"])
    right = sum(s["verdict"] == "right" for s in item["samples"])
    return (
        f"<tr class='item' data-bench='{html.escape(item['bench'])}' "
        f"data-views='{' '.join(item['views'])}' data-cats='{html.escape(json.dumps(cats))}'>"
        f"<td>{html.escape(item['bench'])}<br><code>{html.escape(item['id'])}</code><br>"
        f"<small>{right} of {len(item['samples'])} right</small></td><td>{imgs}</td>"
        f"<td class='q'><div class='tex'>{html.escape(item['question'])}</div>"
        + (f"<ol type='A'>{opts}</ol>" if opts else "")
        + f"</td><td><span class='tex-ans'>{html.escape(item['gold'])}</span></td>"
        f"<td>{_answers_html(item['samples'])}</td><td>{_samples_html(item['samples'])}</td></tr>"
    )


def _browser_html(items: list[dict[str, Any]], counts: dict[str, BrowserCounts]) -> str:
    """The item browser: one row per item, filtered by view (items with a wrong sample, items
    with a right one), benchmark and category, a page at a time (report.js). Without
    JavaScript every row shows, math as written."""
    notes = []
    for name, c in counts.items():
        for view in _VIEWS:
            total, shown = c.total[view], c.shown[view]
            if total > shown:
                notes.append(
                    f"{html.escape(name)}: {shown} of {total} items with a {view} sample are "
                    f"shown here ({total - shown} more); every verdict is in "
                    f"<code>{html.escape(name)}/responses.verdicts.jsonl</code>."
                )
    listed = "; ".join(
        f"{html.escape(n)}: {c.total['wrong']} with a wrong sample, {c.total['right']} with a "
        "right one"
        for n, c in counts.items()
    )
    return (
        "<h2>Item browser</h2>"
        f"<p>Items ({listed or 'none'}). One row per item, its samples inside; "
        "<span id='shown'></span></p>"
        + "".join(f"<p class='more'>{n}</p>" for n in notes)
        + "<p class='filters'>Show <select id='f-view'><option value='wrong'>items with a wrong "
        "sample</option><option value='right'>items with a right sample</option></select>"
        "Benchmark <select id='f-bench'><option value=''>all</option></select>"
        "Category <select id='f-cat'><option value=''>all</option></select>"
        "<button id='prev' type='button'>previous</button> "
        "<button id='next' type='button'>next</button></p>"
        "<noscript><p>JavaScript is off: every item is listed, math as written.</p></noscript>"
        "<table id='items'><thead><tr><th>item</th><th>image</th><th>question</th><th>gold</th>"
        "<th>answers</th><th>samples</th></tr></thead><tbody>"
        + "".join(_item_html(it) for it in items)
        + "</tbody></table>"
    )


# ------------------------------------------------------------------------------ page


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip('*'))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


_ASSETS = Path(__file__).parent / "assets"
# KaTeX 0.19.1 from the npm registry (MIT, assets/katex-LICENSE): its stylesheet names each
# font as woff2, woff and ttf; the page keeps the woff2 one, inlined.
_KATEX_FONT = re.compile(r'src:url\(fonts/(KaTeX_[\w-]+)\.woff2\) format\("woff2"\)[^;}]*')


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


@functools.cache
def _katex_css() -> str:
    """KaTeX's stylesheet with its fonts as woff2 data URIs, so the page needs no file."""

    def inline(m: re.Match[str]) -> str:
        font = (_ASSETS / f"{m.group(1)}.woff2").read_bytes()
        return f'src:url({data_uri(font, "font/woff2")}) format("woff2")'

    return _KATEX_FONT.sub(inline, _asset("katex.min.css"))


def _page(title: str, body: str, math: bool = False) -> str:
    """A self-contained page: our styles, `body`, and with `math` KaTeX (styles, fonts,
    script, auto-render; its licence in a comment) and report.js, which typesets the math of
    the rows it shows."""
    head = f"<title>{html.escape(title)}</title><style>{_asset('report.css')}</style>"
    tail = ""
    if math:
        head += f"<style>{_katex_css()}</style>"
        scripts = ("katex.min.js", "katex-auto-render.min.js", "report.js")
        tail = f"<!--\nKaTeX (https://katex.org):\n{_asset('katex-LICENSE')}-->" + "".join(
            f"<script>{_asset(name)}</script>" for name in scripts
        )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{head}</head>"
        f"<body>{body}{tail}</body></html>\n"
    )


def _run_line(run: dict[str, Any]) -> str:
    return (
        f"<p>Model <code>{html.escape(str(run['model']))}</code>, n = {run['n']}, sampling "
        f"<code>{html.escape(json.dumps(run['sampling']))}</code>, max tokens "
        f"{html.escape(str(run.get('max_tokens') or 'server default'))}, LLM judge: "
        f"{html.escape(str(run['judge'] or 'none (rules only)'))}.</p>"
    )


def html_report(
    results: dict[str, Any],
    items: list[dict[str, Any]],
    counts: dict[str, BrowserCounts],
) -> str:
    """The self-contained report page: summary, charts, categories and the item browser."""
    run = results["run"]
    sections = [
        f"<h1>Evaluation: {html.escape(run['name'])}</h1>",
        _run_line(run),
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
    sections.append(_browser_html(items, counts))
    return _page(f"DeepVision evaluation: {run['name']}", "".join(sections), math=True)


def write_reports(
    run_dir: Path,
    results: dict[str, Any],
    data_dir: Path | None = None,
    max_items: int = MAX_ITEMS_SHOWN,
    allow_absolute: bool = False,
) -> None:
    files = EvalFiles(run_dir)
    files.report_md.write_text(markdown_report(results), encoding="utf-8")
    items, counts = browser_items(run_dir, results, data_dir, max_items, allow_absolute)
    files.report_html.write_text(html_report(results, items, counts), encoding="utf-8")


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
    names = _bench_names(runs)
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
            deltas.append(f"{_delta(x['accuracy'], y['accuracy'])} / {dt}")
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


def _settings_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A row per run: model, n and the sampling settings that change the numbers."""
    head = ["run", "model", "n", "temperature", "top_p", "max tokens", "other sampling", "judge"]
    rows = []
    for r in runs:
        run = r["run"]
        sampling = dict(run.get("sampling") or {})
        temperature, top_p = sampling.pop("temperature", "-"), sampling.pop("top_p", "-")
        rows.append(
            [
                run["name"],
                str(run.get("model", "-")),
                str(run.get("n", "-")),
                str(temperature),
                str(top_p),
                str(run.get("max_tokens") or "server default"),
                json.dumps(sampling, sort_keys=True) if sampling else "-",
                str(run.get("judge") or "none"),
            ]
        )
    return head, rows


def _bench_names(runs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in runs:
        names += [b for b in r["benchmarks"] if b not in names]
    return names


def _ci_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A row per run: each benchmark's accuracy with its 95% CI over items."""
    names = _bench_names(runs)

    def cell(b: dict[str, Any] | None) -> str:
        if not b:
            return "-"
        ci = b.get("ci95")
        return _figure(b["accuracy"]) + (f" [{_pct(ci[0])}-{_pct(ci[1])}]" if ci else "")

    head = ["run", *[_title(runs, b) for b in names]]
    return head, [[r["run"]["name"], *[cell(r["benchmarks"].get(b)) for b in names]] for r in runs]


def _title(runs: list[dict[str, Any]], name: str) -> str:
    return next(r["benchmarks"][name].get("title", name) for r in runs if name in r["benchmarks"])


def _delta(x: dict[str, Any] | None, y: dict[str, Any] | None) -> str:
    """`x - y` in points between two whole-set figures; `partial` when either is partial."""
    if not x or not y:
        return "-"
    if x["value"] is None or y["value"] is None:
        return "partial"
    return f"{100 * (x['value'] - y['value']):+.2f}"


def category_deltas(runs: list[dict[str, Any]], bench: str) -> tuple[list[str], list[list[str]]]:
    """The accuracy of each category of `bench` in every run that has it, and each later run's
    delta against the first (points; only between whole-set figures)."""
    having = [r for r in runs if bench in r["benchmarks"]]
    base = having[0]
    head = ["category", "items", base["run"]["name"]]
    for r in having[1:]:
        head += [r["run"]["name"], f"delta vs {base['run']['name']}"]
    rows = []
    keys: list[tuple[str, str]] = []
    for r in having:
        for key, groups in (r["benchmarks"][bench].get("breakdowns") or {}).items():
            keys += [(key, v) for v in groups if (key, v) not in keys]
    for key, value in keys:
        figures = [
            (r["benchmarks"][bench].get("breakdowns") or {}).get(key, {}).get(value) for r in having
        ]
        items = next((str(g["items"]) for g in figures if g), "-")
        row = [f"{key} = {value}", items, _figure(figures[0] and figures[0]["accuracy"])]
        for g in figures[1:]:
            acc = g and g["accuracy"]
            row += [_figure(acc), _delta(acc, figures[0] and figures[0]["accuracy"])]
        rows.append(row)
    return head, rows


def compare_html(runs: list[dict[str, Any]]) -> str:
    """The comparison page: each run's settings (n, sampling, max tokens), the accuracy /
    tokens table with deltas, each run's 95% CIs, and per benchmark the deltas of every
    category."""
    head, rows = compare_table(runs)
    base = html.escape(runs[0]["run"]["name"])
    differ = "".join(
        f"<p class='more'>Warning: the runs differ in {html.escape(d)}; their figures are not "
        "comparable as they stand.</p>"
        for d in setting_differences(runs)
    )
    body = [
        "<h1>Run comparison</h1><h2>Runs</h2>",
        _html_table(*_settings_rows(runs)),
        differ,
        f"<h2>Accuracy / tokens</h2><p>Accuracy (%) / mean completion tokens per benchmark; "
        f"deltas (points / tokens) against {base}.</p>",
        _html_table(head, rows),
        "<h2>Accuracy with 95% CI</h2><p>Accuracy (%) [95% CI over items]; a partial figure "
        "shows its bounds and no CI.</p>",
        _html_table(*_ci_rows(runs)),
        "<h2>By category</h2>",
    ]
    for bench in _bench_names(runs):
        cat_head, cat_rows = category_deltas(runs, bench)
        if cat_rows:
            body.append(
                f"<h3>{html.escape(_title(runs, bench))}</h3>" + _html_table(cat_head, cat_rows)
            )
    return _page("Run comparison", "".join(body))
