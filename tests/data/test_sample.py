"""The embedded sample: rebuilt by code, pass rates on every row, flagged as simulated."""

import json
from collections import Counter

import pyarrow.parquet as pq

from deepvision.data.reader import iter_problems
from deepvision.data.sample import (
    ROLLOUTS,
    SAMPLE_N,
    SAMPLE_SOURCE,
    build_sample,
    sample_path,
    simulated_pass_rate,
)
from deepvision.records import Problem


def test_the_shipped_sample_is_what_build_sample_writes(tmp_path):
    """scripts/build_sample.py regenerates the shipped file exactly (same columns, same values)."""
    rebuilt = pq.read_table(build_sample(tmp_path / "sample.parquet"))
    shipped = pq.read_table(sample_path())
    assert rebuilt.schema.equals(shipped.schema)
    assert rebuilt.equals(shipped)


def test_every_sample_row_has_a_pass_rate_marked_as_simulated():
    problems = list(iter_problems([sample_path()]))
    assert len(problems) == SAMPLE_N
    assert {p.data_source for p in problems} == {SAMPLE_SOURCE}
    assert "simulated" in SAMPLE_SOURCE
    rates = Counter(str(p.pass_rate) for p in problems)
    assert set(rates) == {f"{k}/{ROLLOUTS}" for k in range(ROLLOUTS + 1)}


def test_simulated_pass_rates_follow_the_documented_rule():
    """Seeded by the id (same problem, same rate); guessing lifts multiple choice."""
    free = [Problem(id=f"p{i}", question="q") for i in range(400)]
    choice = [Problem(id=f"p{i}", question="q", options=list("abcd")) for i in range(400)]
    assert [simulated_pass_rate(p) for p in free] == [simulated_pass_rate(p) for p in free]
    # E[skill] = 1/2 free-form; 1/2 + 1/2 * 1/4 = 5/8 with four options.
    assert abs(_mean_rate(free) - 0.5) < 0.05 and abs(_mean_rate(choice) - 0.625) < 0.05


def _mean_rate(problems: list[Problem]) -> float:
    return sum(simulated_pass_rate(p).value for p in problems) / len(problems)


def test_filter_by_pass_rate_on_the_embedded_sample_keeps_rows(cli, tmp_path):
    out = tmp_path / "mid.parquet"
    res = cli("data", "filter", "--pass-rate", "1/8..7/8", "--out", out)
    assert res.code == 0, res.text
    kept = pq.read_table(out).num_rows
    stats = cli("data", "stats", "--out", tmp_path / "s")
    histogram = json.loads((tmp_path / "s" / "stats.json").read_text())["pass_rate"]["histogram"]
    assert kept == SAMPLE_N - histogram["0/8"] - histogram["8/8"] and stats.code == 0
    assert "warning" not in res.err
