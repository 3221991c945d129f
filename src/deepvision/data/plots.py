"""PNG plots of dataset statistics (matplotlib, headless)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from deepvision.data.stats import DatasetStats

_CATEGORY_COLORS = {
    "planar_geometry": "#1f77b4",
    "solid_geometry": "#ff7f0e",
    "analytic_plots": "#2ca02c",
    "data_charts": "#d62728",
    "schematic_diagrams": "#9467bd",
    "real_world_items": "#8c564b",
}
_DOMAIN_CMAPS = ["Blues", "Oranges", "Greens", "Purples", "Reds", "Greys"]


def _save(fig, path: Path) -> Path:
    try:  # the format named: the path may be a temporary name (`writer.PathOutput`)
        fig.savefig(path, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#555")
    ax.set_axis_off()


def topic_sunburst(stats: DatasetStats, path: Path) -> Path:
    """Rings for topic levels 1-3, each child inside its parent's angle; small slices unlabeled."""
    fig, ax = plt.subplots(figsize=(11, 11))
    level1 = stats.topic_level(1).most_common()
    if not level1:
        _empty(ax, "no topic annotations in input")
    else:
        total = sum(n for _, n in level1)
        width = 0.28
        for i, (name, n) in enumerate(level1):
            cmap = plt.get_cmap(_DOMAIN_CMAPS[i % len(_DOMAIN_CMAPS)])
            _ring(ax, stats, (name,), n, total, 0, cmap, width, start=_start(level1, i, total))
        ax.set(aspect="equal")
        ax.set_title(f"Topics by level (inner: level 1; {total} problems)", fontsize=15, pad=24)
    return _save(fig, path)


def _start(items, i, total) -> float:
    return 90 - 360 * sum(n for _, n in items[:i]) / total


def _ring(ax, stats, prefix, n, total, depth, cmap, width, start) -> None:
    span = 360 * n / total
    radius = 0.45 + width * (depth + 1)
    shade = cmap(0.75 - 0.18 * depth)
    wedges, _ = ax.pie(
        [n],
        radius=radius,
        startangle=start - span,
        counterclock=True,
        colors=[shade],
        wedgeprops={"width": width, "edgecolor": "white", "linewidth": 1},
    )
    # matplotlib pie with one value draws a full circle; restrict it to the span.
    wedges[0].set_theta1(start - span)
    wedges[0].set_theta2(start)
    if span >= (10 if depth else 6):
        mid = math.radians(start - span / 2)
        r = radius - width / 2
        label = textwrap.fill(prefix[-1], 16 if depth else 14, max_lines=3, placeholder="…")
        # Text runs along the ring (tangential), turned so that it is never upside down.
        rot = ((start - span / 2) - 90) % 360
        rot = rot - 180 if 90 < rot < 270 else rot
        ax.text(
            r * math.cos(mid),
            r * math.sin(mid),
            f"{label}\n{n}",
            ha="center",
            va="center",
            fontsize=10 - depth,
            rotation=rot if depth else 0,
            rotation_mode="anchor",
            color="black",
        )
    if depth >= 2:
        return
    children = sorted(
        ((k, v) for k, v in stats.topics.items() if len(k) == depth + 2 and k[:-1] == prefix),
        key=lambda kv: -kv[1],
    )
    pos = start
    for child, cn in children:
        _ring(ax, stats, child, cn, total, depth + 1, cmap, width, pos)
        pos -= 360 * cn / total


def visual_elements_bar(stats: DatasetStats, path: Path, top: int = 30) -> Path:
    items = stats.ve_types.most_common(top)
    fig, ax = plt.subplots(figsize=(10, max(4, 0.32 * len(items) + 1.5)))
    if not items:
        _empty(ax, "no visual-element annotations in input")
    else:
        labels = [t for (_, t), _ in items][::-1]
        values = [n for _, n in items][::-1]
        colors = [_CATEGORY_COLORS.get(c, "#7f7f7f") for (c, _), _ in items][::-1]
        ax.barh(labels, values, color=colors)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v}", va="center", fontsize=9)
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=col)
            for cat, col in _CATEGORY_COLORS.items()
            if stats.ve_categories.get(cat)
        ]
        names = [cat.replace("_", " ") for cat in _CATEGORY_COLORS if stats.ve_categories.get(cat)]
        ax.legend(handles, names, loc="lower right", title="category")
        ax.set_xlabel("problems")
        ax.set_title(f"Visual element types (top {len(items)})")
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def pass_rate_hist(stats: DatasetStats, path: Path) -> Path:
    items = stats.pass_rate_items()
    fig, ax = plt.subplots(figsize=(9, 5))
    if not items:
        _empty(ax, f"no pass rates in input ({stats.no_pass_rate} problems without one)")
    else:
        ax.bar([k for k, _ in items], [v for _, v in items], color="#1f77b4")
        for x, (_, v) in enumerate(items):
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=9)
        ax.set_xlabel("pass rate (correct rollouts / rollouts)")
        ax.set_ylabel("problems")
        missing = f"; {stats.no_pass_rate} without" if stats.no_pass_rate else ""
        ax.set_title(f"Pass-rate histogram{missing}")
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def answer_kinds_bar(stats: DatasetStats, path: Path) -> Path:
    items = stats.answer_kinds.most_common()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if not items:
        _empty(ax, "no problems")
    else:
        ax.bar([k.replace("_", " ") for k, _ in items], [v for _, v in items], color="#2ca02c")
        ax.set_ylabel("problems")
        ax.set_title("Answer kinds")
        ax.tick_params(axis="x", rotation=25)
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


# The plots of `data stats`: file name -> what draws it.
PLOTS = {
    "topics.png": topic_sunburst,
    "visual_elements.png": visual_elements_bar,
    "pass_rate.png": pass_rate_hist,
    "answer_kinds.png": answer_kinds_bar,
}
