"""PNG plots of dataset statistics (matplotlib, headless).

Every chart with axes is readable as drawn: both axes are labelled, a count axis has at least
three integer ticks, a category axis one tick per bar, and no bar is thinner than
`MIN_BAR_PX` pixels in the saved PNG (the visual-element chart grows with its bars; the
others draw at most 33).
"""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from deepvision.data.answer_kind import ANSWER_KINDS
from deepvision.data.stats import DatasetStats

DPI = 110
# The thinnest bar a chart may draw, in pixels of the saved PNG.
MIN_BAR_PX = 12
# Up to this many rollouts per problem, the pass-rate histogram has one bar per k/N.
MAX_EXACT_ROLLOUTS = 32
# A bar chart has room for at least this many bars, however few it draws.
_MIN_SLOTS = 5
_CATEGORY_COLORS = {
    "planar_geometry": "#1f77b4",
    "solid_geometry": "#ff7f0e",
    "analytic_plots": "#2ca02c",
    "data_charts": "#d62728",
    "schematic_diagrams": "#9467bd",
    "real_world_items": "#8c564b",
}
_DOMAIN_CMAPS = ["Blues", "Oranges", "Greens", "Purples", "Reds", "Greys"]


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `DPI` and free it."""
    try:  # the format named: the path may be a temporary name (`writer.PathOutput`)
        fig.savefig(path, dpi=DPI, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def _figure(width: float, height: float):
    """A figure of `width` x `height` inches at the PNG's resolution, and its one axes."""
    return plt.subplots(figsize=(width, height), dpi=DPI)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, color="#555")
    ax.set_axis_off()


def _count_axis(axis: Axis, top: int, label: str) -> None:
    """A count axis from 0: integer ticks, at least three of them, room for the bar labels."""
    axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=3))
    axis.set_label_text(label)
    limit = max(2.0, top * 1.12)
    if axis.axis_name == "x":
        axis.axes.set_xlim(0, limit)
    else:
        axis.axes.set_ylim(0, limit)


def _tidy(fig: Figure, ax) -> Figure:
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def topics_figure(stats: DatasetStats) -> Figure:
    """Rings for topic levels 1-3, each child inside its parent's angle; small slices unlabeled."""
    fig, ax = _figure(11, 11)
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
        ax.set_axis_off()  # a radial chart: the labels are on the rings
        ax.set_title(f"Topics by level (inner: level 1; {total} problems)", fontsize=15, pad=24)
    return fig


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


def visual_elements_figure(stats: DatasetStats, top: int = 30) -> Figure:
    """The most frequent visual-element types, coloured by category, counts at bar ends."""
    items = stats.ve_types.most_common(top)
    fig, ax = _figure(10, max(4, 0.32 * len(items) + 1.5))
    if not items:
        _empty(ax, "no visual-element annotations in input")
        return fig
    labels = [t for (_, t), _ in items][::-1]
    values = [n for _, n in items][::-1]
    colors = [_CATEGORY_COLORS.get(c, "#7f7f7f") for (c, _), _ in items][::-1]
    ax.barh(labels, values, color=colors)
    ax.set_ylim(-0.5, max(len(items), _MIN_SLOTS) - 0.5)  # one bar stays a bar, not a wall
    for y, v in enumerate(values):
        ax.text(v, y, f" {v}", va="center", fontsize=9)
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=col)
        for cat, col in _CATEGORY_COLORS.items()
        if stats.ve_categories.get(cat)
    ]
    names = [cat.replace("_", " ") for cat in _CATEGORY_COLORS if stats.ve_categories.get(cat)]
    # Outside the axes: inside, it would hide the ends of the longest bars.
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1), title="category")
    _count_axis(ax.xaxis, max(values), "problems")
    ax.set_ylabel("visual element type")
    ax.set_title(f"Visual element types (top {len(items)})")
    return _tidy(fig, ax)


def _pass_rate_bars(items: list[tuple[str, int]]) -> tuple[list[float], list[int], int]:
    """Bar positions (pass-rate values) and heights, and N: the bars stand at k/N (0: at the
    middle of ten bins of width 0.1).

    When every pass rate is a multiple of 1/N for a small N (N rollouts per problem: "k/8"),
    there is one bar per k/N, k = 0..N, empty ones too, so the axis reads the same on every
    dataset. Otherwise the rates are counted in ten bins."""
    rates = [(Fraction(s), n) for s, n in items]
    lcm = math.lcm(*(int(s.split("/")[1]) for s, _ in items))
    if lcm > MAX_EXACT_ROLLOUTS:
        heights = [0] * 10
        for rate, n in rates:
            heights[min(int(rate * 10), 9)] += n
        return [(i + 0.5) / 10 for i in range(10)], heights, 0
    slots = lcm * math.ceil(4 / lcm)  # a 0/1 .. 1/1 axis still gets at least 3 ticks
    heights = [0] * (slots + 1)
    for rate, n in rates:
        heights[int(rate * slots)] += n
    return [k / slots for k in range(slots + 1)], heights, slots


def _pass_rate_ticks(ax, slots: int) -> None:
    """Ticks at k/N labelled "k/N" (a dozen labels at most), or at the ten bins' edges."""
    if not slots:
        ax.set_xticks([k / 10 for k in range(11)], [f"{k / 10:g}" for k in range(11)])
        return
    step = math.ceil((slots + 1) / 12)
    ks = [*range(0, slots, step), slots]
    ax.set_xticks([k / slots for k in ks], [f"{k}/{slots}" for k in ks])


def pass_rate_figure(stats: DatasetStats) -> Figure:
    """Problems per pass rate, on a pass-rate axis from 0 to 1."""
    items = stats.pass_rate_items()
    fig, ax = _figure(9, 5)
    if not items:
        _empty(ax, f"no pass rates in input ({stats.no_pass_rate} problems without one)")
        return fig
    xs, heights, slots = _pass_rate_bars(items)
    width = 0.8 / (slots or 10)
    ax.bar(xs, heights, width=width, color="#1f77b4")
    for x, v in zip(xs, heights, strict=True):
        if v:
            ax.text(x, v, str(v), ha="center", va="bottom", fontsize=9)
    ax.set_xlim(-width, 1 + width)
    _pass_rate_ticks(ax, slots)
    ax.set_xlabel("pass rate (correct rollouts / rollouts)")
    _count_axis(ax.yaxis, max(heights), "problems")
    missing = f"; {stats.no_pass_rate} without" if stats.no_pass_rate else ""
    rated = stats.rows - stats.no_pass_rate
    ax.set_title(f"Pass-rate histogram ({rated} problem{'' if rated == 1 else 's'}{missing})")
    return _tidy(fig, ax)


def answer_kinds_figure(stats: DatasetStats) -> Figure:
    """Problems per answer kind: every kind, in a fixed order, so datasets compare at a glance."""
    fig, ax = _figure(9, 4.5)
    if not stats.answer_kinds:
        _empty(ax, "no problems")
        return fig
    values = [stats.answer_kinds.get(k, 0) for k in ANSWER_KINDS]
    ax.bar([k.replace("_", " ") for k in ANSWER_KINDS], values, color="#2ca02c")
    for x, v in enumerate(values):
        ax.text(x, v, str(v), ha="center", va="bottom", fontsize=9)
    ax.set_xlabel("answer kind")
    _count_axis(ax.yaxis, max(values), "problems")
    ax.set_title("Answer kinds")
    ax.tick_params(axis="x", rotation=25)
    return _tidy(fig, ax)


def topic_sunburst(stats: DatasetStats, path: Path) -> Path:
    """`topics_figure` saved to `path`."""
    return save(topics_figure(stats), path)


def visual_elements_bar(stats: DatasetStats, path: Path, top: int = 30) -> Path:
    """`visual_elements_figure` saved to `path`."""
    return save(visual_elements_figure(stats, top), path)


def pass_rate_hist(stats: DatasetStats, path: Path) -> Path:
    """`pass_rate_figure` saved to `path`."""
    return save(pass_rate_figure(stats), path)


def answer_kinds_bar(stats: DatasetStats, path: Path) -> Path:
    """`answer_kinds_figure` saved to `path`."""
    return save(answer_kinds_figure(stats), path)


# The charts of `data stats`: file name -> what draws its figure.
PLOTS = {
    "topics.png": topics_figure,
    "visual_elements.png": visual_elements_figure,
    "pass_rate.png": pass_rate_figure,
    "answer_kinds.png": answer_kinds_figure,
}
