"""`data stats`: the numbers, the files, readable plots."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import deepvision_row, write_rows
from deepvision import records as r
from deepvision.data.answer_kind import answer_kind


def test_answer_kinds_of_k12_answers():
    cases = {
        "B": "option_letters",
        "A, C": "option_letters",
        "①②③": "circled_numbers",
        "-12": "integer",
        "1,000": "integer",
        "3.25": "decimal",
        "\\frac{3}{4}": "fraction",
        "7/2": "fraction",
        "(0, 12.5)": "interval_set",
        "\\{1,2\\}": "interval_set",
        "2\\sqrt{5}": "expression",
        "y=2x+1": "expression",
        "Apples": "text",
        "等腰三角形": "text",
    }
    assert {a: answer_kind(a) for a in cases} == cases


def test_stats_counts_and_outputs(cli, tmp_path):
    rows = [deepvision_row(question=f"q{i}", answer=str(i)) for i in range(6)]
    rows[0][r.PASS_RATE] = "0/8"
    rows[1][r.PASS_RATE] = "7/8"
    rows[2][r.DOMAIN_ANNO] = json.dumps({"Knowledge": ["Slope"], "Level_1": "Algebra"})
    rows[3][r.REWARD_MODEL] = {
        "ground_truth": "C",
        "equivalent_answers": ["__EMPTY__"],
        "style": "rule",
    }
    path = write_rows(tmp_path / "in.parquet", rows)
    out = tmp_path / "stats"
    res = cli("data", "stats", path, "--out", out)
    assert res.code == 0, res.text
    d = json.loads((out / "stats.json").read_text())
    assert d["rows"] == 6
    assert d["topics"]["level_1"] == {"Geometry": 5, "Algebra": 1}
    assert d["topics"]["level_4"] == {"Geometry/Plane Geometry/Basic Plane Figures/Triangle": 5}
    assert d["knowledge_points"]["top"]["Area of Triangle"] == 5
    assert d["pass_rate"]["histogram"] == {"0/8": 1, "2/8": 4, "7/8": 1}
    assert list(d["pass_rate"]["histogram"]) == ["0/8", "2/8", "7/8"]  # ordered by value
    assert d["answer_kinds"] == {"integer": 5, "option_letters": 1}
    assert d["visual_elements"]["types"]["planar_geometry/Triangle"] == 6
    assert d["image_width"]["max"] == 32
    summary = (out / "summary.md").read_text()
    assert "| Geometry | 5 |" in summary and "![topics](topics.png)" in summary
    for name in ("topics", "visual_elements", "pass_rate", "answer_kinds"):
        im = Image.open(out / f"{name}.png")
        assert im.width > 600 and im.height > 300
        # A readable plot has ink on it: many distinct colours, not a blank canvas.
        assert len(im.convert("RGB").getcolors(1 << 20)) > 50


def test_stats_on_the_embedded_sample(cli, tmp_path):
    res = cli("data", "stats", "--out", tmp_path / "s")
    assert res.code == 0
    d = json.loads((tmp_path / "s" / "stats.json").read_text())
    assert d["rows"] == 240 and len(d["topics"]["level_1"]) == 4
    # Every plot has data on first contact: the sample carries (simulated) pass rates.
    assert d["pass_rate"]["missing"] == 0
    assert set(d["pass_rate"]["histogram"]) == {f"{k}/8" for k in range(9)}
    assert d["data_sources"] == {"deepvision-synth/simulated-pass-rate": 240}
    assert d["visual_elements"]["types"] and len(d["answer_kinds"]) >= 3


def _readability_faults(fig) -> list[str]:
    """What makes a chart hard to read: an axis without a label, a value axis with fewer
    than 3 ticks in view, a category axis without one tick per bar, a bar thinner than
    plots.MIN_BAR_PX in the saved PNG."""
    from matplotlib.category import UnitData

    from deepvision.data import plots

    fig.canvas.draw()
    faults = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        bars = [b for c in ax.containers for b in c]
        for axis, view in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            name = axis.axis_name
            if not axis.get_label_text().strip():
                faults.append(f"{name} axis has no label")
            lo, hi = sorted(view)
            ticks = [t for t in axis.get_majorticklocs() if lo <= t <= hi]
            if isinstance(axis.units, UnitData):  # a category axis
                if len(ticks) < len(bars):
                    faults.append(f"{name} axis: {len(ticks)} ticks for {len(bars)} bars")
            elif len(ticks) < 3:
                faults.append(f"{name} axis has {len(ticks)} ticks in view")
        for c in ax.containers:
            for bar in c:
                box = bar.get_window_extent()
                thickness = box.width if c.orientation == "vertical" else box.height
                if thickness < plots.MIN_BAR_PX:
                    faults.append(f"a bar {thickness:.1f} px thick in {ax.get_title()!r}")
    return faults


def test_every_stats_chart_is_readable(tmp_path):
    """Axis labels, at least 3 ticks on a value axis, one tick per category, no thin bar:
    on the embedded sample, on one row, and on pass rates over many rollouts (binned)."""
    from deepvision.data import plots
    from deepvision.data.sample import sample_path
    from deepvision.data.stats import collect_stats

    many = [deepvision_row(question=f"q{i}", **{r.PASS_RATE: f"{i}/100"}) for i in range(0, 99, 7)]
    inputs = {
        "sample": sample_path(),
        "one row": write_rows(tmp_path / "one.parquet", [deepvision_row()]),
        "100 rollouts": write_rows(tmp_path / "many.parquet", many),
    }
    faults = []
    for label, path in inputs.items():
        stats = collect_stats([path], workers=1)
        for name, draw in plots.PLOTS.items():
            fig = draw(stats)
            faults += [f"{label}, {name}: {f}" for f in _readability_faults(fig)]
            plots.save(fig, tmp_path / f"{label}-{name}")
    assert not faults


def test_pass_rate_histogram_has_a_bar_per_rollout_count(tmp_path):
    """One bar per k/8 (empty ones too), each over its own tick, labelled k/8."""
    from deepvision.data import plots
    from deepvision.data.stats import collect_stats

    rows = [
        deepvision_row(question=f"q{i}", **{r.PASS_RATE: f"{k}/8"})
        for i, k in enumerate([0, 3, 3, 8])
    ]
    stats = collect_stats([write_rows(tmp_path / "in.parquet", rows)], workers=1)
    ax = plots.pass_rate_figure(stats).axes[0]
    (bars,) = ax.containers
    assert [round(b.get_x() + b.get_width() / 2, 3) for b in bars] == [k / 8 for k in range(9)]
    assert [b.get_height() for b in bars] == [1, 0, 0, 2, 0, 0, 0, 0, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{k}/8" for k in range(9)]


def _mixed_rows() -> list[dict]:
    """Rows the column-wise pass reads directly, and rows it must leave to the Problem path."""
    import io

    rows = [deepvision_row(question=f"Q{i}", answer=["B", "12", "7/2"][i % 3]) for i in range(12)]
    rows[1][r.PASS_RATE] = "most of them"  # unreadable
    rows[2][r.DOMAIN_ANNO] = "{not json"  # unreadable
    rows[3][r.VISION_ANNO] = None  # readable, no visual elements
    rows[4][r.IMAGES] = [{"bytes": None, "path": "figure.png"}]  # path only: readable
    rows[5][r.REWARD_MODEL]["equivalent_answers"] = ["x", None]  # unreadable
    rows[6][r.QUESTION] = None  # unreadable
    buf = io.BytesIO()
    Image.new("RGB", (50, 30), (10, 20, 30)).save(buf, format="JPEG")
    rows[7][r.IMAGES] = [{"bytes": buf.getvalue(), "path": None}]  # not a PNG
    rows[8][r.IMAGES] = [{"bytes": b"garbage", "path": None}]  # undecodable image
    rows[9][r.PROMPT][0]["role"] = None  # unreadable
    rows[10][r.PROMPT] = None  # readable: the question is the prompt
    return rows


def test_column_wise_stats_equal_problem_stats(tmp_path, monkeypatch):
    """`data stats` reads our layout column by column; the result is the Problem path's."""
    from deepvision.data import stats as st
    from deepvision.data.reader import parse_batch

    src = write_rows(tmp_path / "mixed.parquet", _mixed_rows())
    fast = st.collect_stats([src], batch_size=5, workers=1)
    monkeypatch.setattr(st, "_batch_stats", lambda b: st._problem_stats(parse_batch(b, False)))
    slow = st.collect_stats([src], batch_size=5, workers=1)
    assert fast.to_dict() == slow.to_dict()
    assert (fast.rows, fast.rejected, fast.undecodable_images) == (7, 5, 2)
    assert sorted(j.row for j in fast.rejects) == [1, 2, 5, 6, 9]
    assert fast.to_dict()["image_width"]["min"] == 32  # the JPEG's 50 counted too
    assert fast.to_dict()["image_width"]["max"] == 50


def test_stats_are_the_same_in_every_run(tmp_path):
    """Ties (visual elements, knowledge points seen equally often) keep one order whatever
    the interpreter's string hashing: stats.json and the charts are identical across runs."""
    rows = [
        deepvision_row(
            question=f"q{i}",
            **{r.VISION_ANNO: json.dumps({"visual_elements": {"planar_geometry": list("ABCDEF")}})},
        )
        for i in range(3)
    ]
    src = write_rows(tmp_path / "ties.parquet", rows)
    exe = Path(sys.executable).parent / "deepvision"
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"stats-{seed}"
        subprocess.run(
            [str(exe), "data", "stats", str(src), "--out", str(out), "--workers", "1"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
        )
        outputs.append((out / "stats.json").read_text())
    assert outputs[0] == outputs[1]
    assert list(json.loads(outputs[0])["visual_elements"]["types"])[:6] == [
        f"planar_geometry/{t}" for t in "ABCDEF"
    ]
