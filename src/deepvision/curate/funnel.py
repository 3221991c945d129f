"""The funnel report of a pipeline run: funnel.md, funnel.json and PNGs in the workdir.

Rows in and out per stage with drop reasons and token usage; pass-rate histogram of the
result; topic (level 1) and visual-element distributions before and after (statistics and
plots from `deepvision.data.stats` / `plots`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from deepvision.curate.stage import StageReport
from deepvision.data import plots
from deepvision.data.stats import DatasetStats, collect_stats


def _funnel_png(reports: list[StageReport], path: Path) -> Path:
    labels = ["input"] + [r.stage for r in reports]
    values = [reports[0].rows_in if reports else 0] + [r.kept for r in reports]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    ax.barh(labels[::-1], values[::-1], color="#1f77b4")
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v}", va="center", fontsize=9)
    ax.set_xlabel("problems")
    ax.set_title("Curation funnel")
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _compare(before: dict, after: dict, top: int = 15) -> list[str]:
    keys = sorted(set(before) | set(after), key=lambda k: -(before.get(k, 0)))[:top]
    tb, ta = sum(before.values()), sum(after.values())
    rows = ["| | before | after |", "|---|---:|---:|"]
    for k in keys:
        b, a = before.get(k, 0), after.get(k, 0)
        rows.append(f"| {k} | {b} ({_pct(b, tb)}) | {a} ({_pct(a, ta)}) |")
    return rows


def write_funnel(
    inputs: list[Path], final: Path, reports: list[StageReport], workdir: Path
) -> dict[str, Any]:
    before: DatasetStats = collect_stats(list(inputs), workers=1)
    after: DatasetStats = collect_stats([final], workers=1)
    pngs = {
        "funnel": _funnel_png(reports, workdir / "funnel.png"),
        "pass_rate": plots.pass_rate_hist(after, workdir / "pass_rate_after.png"),
        "visual_elements_before": plots.visual_elements_bar(before, workdir / "ve_before.png"),
        "visual_elements_after": plots.visual_elements_bar(after, workdir / "ve_after.png"),
        "topics_after": plots.topic_sunburst(after, workdir / "topics_after.png"),
    }
    lines = [
        "# Curation funnel",
        "",
        f"Input: {', '.join(str(p) for p in inputs)}  ",
        f"Result: {final}",
        "",
        "![funnel](funnel.png)",
        "",
        "| stage | rows in | kept | dropped | kept % | prompt tokens | completion tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        d = sum(r.dropped.values())
        lines.append(
            f"| {r.stage} | {r.rows_in} | {r.kept} | {d} | {_pct(r.kept, r.rows_in)} | "
            f"{r.usage.get('prompt_tokens', 0)} | {r.usage.get('completion_tokens', 0)} |"
        )
    lines += ["", "## Drop reasons", "", "| stage | reason | problems |", "|---|---|---:|"]
    for r in reports:
        for reason, n in r.dropped.most_common():
            lines.append(f"| {r.stage} | {reason} | {n} |")
    noted = [(r.stage, note, n) for r in reports for note, n in r.notes.most_common()]
    if noted:
        lines += [
            "",
            "## Notes: model replies not used, stage errors (each in the stage's unparsed file)",
            "",
            "| stage | kind | problems |",
            "|---|---|---:|",
        ]
        lines += [f"| {s} | {k} | {n} |" for s, k, n in noted]
    lines += [
        "",
        "## Pass rates of the result",
        "",
        "![pass rates](pass_rate_after.png)",
        "",
        "| pass rate | problems |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {n} |" for k, n in after.pass_rate_items()]
    if after.no_pass_rate:
        lines.append(f"| (none) | {after.no_pass_rate} |")
    lines += ["", "## Topics (level 1)", ""]
    lines += _compare(dict(before.topic_level(1)), dict(after.topic_level(1)))
    lines += ["", "## Visual-element categories", ""]
    lines += _compare(dict(before.ve_categories), dict(after.ve_categories))
    lines += ["", "![visual elements before](ve_before.png) ![after](ve_after.png)", ""]
    (workdir / "funnel.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    funnel = {
        "inputs": [str(p) for p in inputs],
        "result": str(final),
        "stages": [r.to_dict() for r in reports],
        "rows_in": reports[0].rows_in if reports else 0,
        "rows_out": reports[-1].kept if reports else 0,
        "pngs": {k: str(v) for k, v in pngs.items()},
        "markdown": str(workdir / "funnel.md"),
    }
    (workdir / "funnel.json").write_text(json.dumps(funnel, indent=1, ensure_ascii=False))
    return funnel
