"""filter / sample / split / dedup: the right rows, deterministic, nothing unaccounted."""

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from conftest import deepvision_row, write_rows
from deepvision import records as r
from deepvision.data.reader import iter_problems
from deepvision.data.select import allocate, parse_range
from deepvision.errors import UsageError


@pytest.fixture
def graded_file(tmp_path):
    rows = []
    for i in range(40):
        topic = ["Geometry", "Algebra", "Probability & Statistics", "Algebra"][i % 4]
        rows.append(
            deepvision_row(
                question=f"q{i}",
                answer="B" if i % 5 == 0 else str(i),
                **{
                    r.PASS_RATE: f"{i % 9}/8" if i % 9 <= 8 else "0/8",
                    r.DOMAIN_ANNO: json.dumps(
                        {"Knowledge": [], "Level_1": topic, "Level_2": f"{topic} sub"}
                    ),
                    r.DATA_SOURCE: "math-77k" if i < 30 else "visual_logic-26k",
                },
            )
        )
    return write_rows(tmp_path / "graded.parquet", rows)


def _ids(path):
    return [p.id for p in iter_problems([path])]


def test_filter_by_pass_rate_band_topic_and_kind(cli, graded_file, tmp_path):
    out = tmp_path / "f.parquet"
    res = cli(
        "data", "filter", graded_file, "--pass-rate", "1/8..7/8", "--topic", "algebra", "--out", out
    )
    assert res.code == 0, res.text
    kept = list(iter_problems([out]))
    assert kept and all(p.topic[0] == "Algebra" for p in kept)
    assert all(1 / 8 <= p.pass_rate.value <= 7 / 8 for p in kept)
    assert (
        f"rows in: 40 = {len(kept)} written to {out} + {40 - len(kept)} filtered out + 0 rejected"
        in res.err
    )
    # Output keeps the input's own columns and types.
    assert pq.read_schema(out).equals(pq.read_schema(graded_file))
    out2 = tmp_path / "g.parquet"
    assert cli("data", "filter", graded_file, "--answer-kind", "option_letters", "--source",
               "math-77k,visual_logic-26k", "--out", out2).code == 0  # fmt: skip
    assert len(_ids(out2)) == 8


def test_pass_rate_ranges():
    assert parse_range("1/8..7/8") == (pytest.approx(0.125), pytest.approx(0.875))
    assert parse_range("..0.5")[0] is None
    assert parse_range("3/8") == (parse_range("3/8")[0],) * 2
    with pytest.raises(UsageError):
        parse_range("7/8..1/8")
    with pytest.raises(UsageError):
        parse_range("a..b")


def test_sample_is_stratified_deterministic_and_order_independent(cli, graded_file, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert cli("data", "sample", graded_file, "--n", "12", "--by", "topic1", "--out", a).code == 0
    assert cli("data", "sample", graded_file, "--n", "12", "--by", "topic1", "--out", b).code == 0
    assert _ids(a) == _ids(b) and len(_ids(a)) == 12
    topics = Counter(p.topic[0] for p in iter_problems([a]))
    assert topics == {"Algebra": 6, "Geometry": 3, "Probability & Statistics": 3}
    # Same rows whatever the input order.
    rows = pq.read_table(graded_file).to_pylist()[::-1]
    rev = write_rows(tmp_path / "rev.parquet", rows)
    c = tmp_path / "c.parquet"
    assert cli("data", "sample", rev, "--n", "12", "--out", c).code == 0
    assert sorted(_ids(c)) == sorted(_ids(a))
    d = tmp_path / "d.parquet"
    assert cli("data", "sample", graded_file, "--n", "12", "--seed", "1", "--out", d).code == 0
    assert sorted(_ids(d)) != sorted(_ids(a))


def test_split_is_disjoint_complete_and_stratified(cli, graded_file, tmp_path):
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    res = cli("data", "split", graded_file, "--train", train, "--test", test, "--test-size", "0.25")
    assert res.code == 0, res.text
    tr, te = set(_ids(train)), set(_ids(test))
    assert not tr & te and tr | te == set(_ids(graded_file))
    assert Counter(p.topic[0] for p in iter_problems([test])) == {
        "Algebra": 5,
        "Geometry": 3,
        "Probability & Statistics": 2,
    }


def test_allocate_respects_sizes_and_total():
    q = allocate({"a": 7, "b": 2, "c": 1}, 5)
    assert sum(q.values()) == 5 and q["a"] >= q["b"] >= q["c"]
    assert allocate({"a": 2}, 10) == {"a": 2}


def test_dedup_keeps_one_per_group_and_reports_groups(cli, tmp_path):
    rows = [deepvision_row(question=q) for q in ["Find x.", "find  X.", "Find y.", "Find x."]]
    rows.append(deepvision_row(question="Find x.", n_images=2))  # other images: not a duplicate
    path = write_rows(tmp_path / "dups.parquet", rows)
    out = tmp_path / "dedup.parquet"
    res = cli("data", "dedup", path, "--out", out)
    assert res.code == 0, res.text
    assert len(_ids(out)) == 3
    (group,) = [json.loads(x) for x in (tmp_path / "dedup.groups.jsonl").read_text().splitlines()]
    assert group["size"] == 3
    assert group["kept"]["row"] == 0 and [d["row"] for d in group["dropped"]] == [1, 3]
    assert "1 duplicate groups" in res.err


def test_existing_output_is_refused(cli, graded_file, tmp_path):
    out = tmp_path / "o.parquet"
    out.write_bytes(b"precious")
    res = cli("data", "filter", graded_file, "--topic", "Algebra", "--out", out)
    assert res.code == 2 and out.read_bytes() == b"precious"
    assert (
        cli("data", "filter", graded_file, "--topic", "Algebra", "--out", out, "--overwrite").code
        == 0
    )


def test_unreadable_rows_are_counted_and_kept(cli, tmp_path):
    rows = [deepvision_row(question="ok"), deepvision_row(question="bad", **{r.PASS_RATE: "?"})]
    path = write_rows(tmp_path / "in.parquet", rows)
    rej = tmp_path / "rej.jsonl"
    res = cli(
        "data",
        "filter",
        path,
        "--topic",
        "Geometry",
        "--out",
        tmp_path / "o.parquet",
        "--rejects",
        rej,
    )
    assert res.code == 1
    assert "rows in: 2 = 1 written to" in res.err and "+ 1 rejected" in res.err
    assert json.loads(rej.read_text())["data"]["question"] == "bad"


def _rows_without_pass_rate(tmp_path, n=12, rated=0):
    rows = [deepvision_row(question=f"q{i}", **{r.PASS_RATE: None}) for i in range(n)]
    for row in rows[:rated]:
        row[r.PASS_RATE] = "3/8"
    return write_rows(tmp_path / "unrated.parquet", rows)


def test_filter_by_pass_rate_on_data_without_any_says_why_nothing_was_kept(cli, tmp_path):
    src, out = _rows_without_pass_rate(tmp_path), tmp_path / "f.parquet"
    res = cli("data", "filter", src, "--pass-rate", "1/8..7/8", "--out", out)
    assert res.code == 1, res.text  # selected nothing from readable rows, as grep does
    assert "0 of 12 rows have a pass rate: --pass-rate 1/8..7/8 selects none" in res.err
    assert "deepvision curate difficulty" in res.err
    # The output is still written, empty, in the input's schema.
    assert pq.read_table(out).num_rows == 0
    assert pq.read_schema(out).equals(pq.read_schema(src))


def test_filter_names_the_rows_its_pass_rate_criterion_can_never_keep(cli, tmp_path):
    src, out = _rows_without_pass_rate(tmp_path, rated=4), tmp_path / "f.parquet"
    res = cli("data", "filter", src, "--pass-rate", "3/8", "--out", out)
    assert res.code == 0, res.text
    assert "8 of 12 rows have no pass rate: --pass-rate 3/8 never selects them" in res.err
    assert len(_ids(out)) == 4


def test_filter_that_keeps_nothing_counts_the_rows_meeting_each_criterion(
    cli, graded_file, tmp_path
):
    out = tmp_path / "f.parquet"
    res = cli(
        "data", "filter", graded_file, "--topic", "Algebra", "--source", "nowhere", "--out", out
    )
    assert res.code == 1, res.text
    assert (
        "nothing selected: no row meets every criterion "
        "(rows meeting each: --topic Algebra: 20; --source nowhere: 0)"
    ) in res.err


def test_sample_larger_than_the_input_writes_everything_and_says_so(cli, graded_file, tmp_path):
    out = tmp_path / "s.parquet"
    res = cli("data", "sample", graded_file, "--n", "100", "--out", out)
    assert res.code == 0, res.text
    assert "--n 100: the input has only 40 readable rows; all 40 are written" in res.err
    assert sorted(_ids(out)) == sorted(_ids(graded_file))
    # Asking for no more than there is: no warning.
    res = cli("data", "sample", graded_file, "--n", "40", "--out", tmp_path / "t.parquet")
    assert res.code == 0 and "warning" not in res.err


@pytest.mark.parametrize(("size", "part"), [("0.001", "test"), ("40", "train")])
def test_split_with_an_empty_part_says_so(cli, graded_file, tmp_path, size, part):
    train, test = tmp_path / "train.parquet", tmp_path / "test.parquet"
    res = cli("data", "split", graded_file, "--train", train, "--test", test, "--test-size", size)
    assert res.code == 0, res.text  # the split the share or count gives, said out loud
    assert f"the {part} part is empty: --test-size {size} of 40 readable rows" in res.err
    empty, full = (test, train) if part == "test" else (train, test)
    assert pq.read_table(empty).num_rows == 0 and pq.read_table(full).num_rows == 40
