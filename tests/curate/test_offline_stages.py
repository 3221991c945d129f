"""Stages that need no model: keyword validity, dedup, decontam; the engine's bookkeeping."""

from __future__ import annotations

import copy
import json

import pytest
from helpers import drops_by_id, figure, hashed_figure, problem, read_jsonl, write

from deepvision.curate import DecontamStage, DedupStage, ValidityStage, run_stage
from deepvision.data.reader import iter_problems
from deepvision.errors import UsageError
from deepvision.records import ProblemImage


def ids(path):
    return [p.id for p in iter_problems([path])]


def test_keyword_rules_drop_english_and_chinese_tasks_and_spare_lookalikes(tmp_path):
    problems = [
        problem("prove", "Prove that triangle ABC is isosceles."),
        problem("explain", "Is the function increasing? Explain why."),
        problem("draw", "Draw the axis of symmetry of the figure."),
        problem("zh-proof", "如图，在△ABC中，求证：AB=AC。"),
        problem("zh-draw", "请画出该图形的对称轴。"),
        problem("open", "Design a fair game using the spinner shown."),
        problem("drawn", "In the figure drawn below, find the angle x."),
        problem("improve", "A shop improves sales by 20% as shown. Find the new total."),
        problem("zh-ok", "如图，求三角形ABC的面积。"),
    ]
    inp = write(tmp_path / "in.parquet", problems)
    out = tmp_path / "valid.parquet"
    rep = run_stage(ValidityStage(rules_only=True), [inp], out, chunk_size=4)
    assert ids(out) == ["drawn", "improve", "zh-ok"]
    assert drops_by_id(tmp_path / "valid.drops.jsonl") == {
        "prove": "keyword:proof",
        "explain": "keyword:explanation",
        "draw": "keyword:drawing",
        "zh-proof": "keyword:proof",
        "zh-draw": "keyword:drawing",
        "open": "keyword:open_ended",
    }
    assert rep.rows_in == 9 and rep.kept == 3 and rep.balanced
    saved = json.loads((tmp_path / "valid.report.json").read_text())
    assert saved["dropped"]["keyword:proof"] == 2 and saved["kept"] == 3
    assert not (tmp_path / "valid.parquet.work").exists()


def test_keyword_lists_are_configurable(tmp_path):
    kw = tmp_path / "kw.yaml"
    kw.write_text("estimate:\n  - estimate\n  - 估计\n")
    inp = write(
        tmp_path / "in.parquet",
        [problem("a", "Estimate the area."), problem("b", "Prove it."), problem("c", "估计面积")],
    )
    run_stage(ValidityStage(rules_only=True, keywords=kw), [inp], tmp_path / "o.parquet")
    assert ids(tmp_path / "o.parquet") == ["b"]


def test_outputs_are_not_overwritten_without_asking(tmp_path):
    inp = write(tmp_path / "in.parquet", [problem("a", "Find x.")])
    out = tmp_path / "o.parquet"
    run_stage(ValidityStage(rules_only=True), [inp], out)
    with pytest.raises(UsageError, match="exists"):
        run_stage(ValidityStage(rules_only=True), [inp], out)
    run_stage(ValidityStage(rules_only=True), [inp], out, overwrite=True)


def test_dedup_groups_exact_and_near_duplicates_and_keeps_the_first(tmp_path):
    base = problem("p1", "In the right triangle shown, AB = 6 and BC = 8. Find the length AC.")
    exact = copy.deepcopy(base)
    exact.id = "p1-exact"
    near = copy.deepcopy(base)
    near.id = "p1-near"
    near.question = "In the right triangle shown, AB = 6 and BC = 8. Find the length of AC."
    other_image = copy.deepcopy(base)
    other_image.id = "p1-other-figure"
    other_image.images = [ProblemImage(figure(999), None)]
    generic_a = problem("find-x-1", "Find x.", seed=1)
    generic_b = problem("find-x-2", "Find x.", seed=2)
    generic_dup = problem("find-x-1-again", "Find  X.", seed=1)
    zh = problem("zh", "如图，已知正方形ABCD的边长为4，求阴影部分的面积。", seed=5)
    zh_near = problem("zh-near", "如图,已知正方形ABCD的边长为4,求阴影部分的面积.", seed=5)
    rows = [base, generic_a, exact, other_image, near, generic_b, generic_dup, zh, zh_near]
    inp = write(tmp_path / "in.parquet", rows)
    out = tmp_path / "dedup.parquet"
    rep = run_stage(DedupStage(workers=1), [inp], out, chunk_size=3)
    assert ids(out) == ["p1", "find-x-1", "p1-other-figure", "find-x-2", "zh"]
    drops = read_jsonl(tmp_path / "dedup.drops.jsonl")
    assert {d["id"]: d["detail"] for d in drops} == {
        "p1-exact": "exact duplicate of p1",
        "p1-near": "near duplicate of p1",
        "find-x-1-again": "exact duplicate of find-x-1",  # same normalized text and bytes
        "zh-near": "near duplicate of zh",
    }
    groups = read_jsonl(tmp_path / "dedup.groups.jsonl")
    assert sorted((g["kept"], tuple(g["dropped"]), g["kind"]) for g in groups) == [
        ("find-x-1", ("find-x-1-again",), "exact"),
        ("p1", ("p1-exact", "p1-near"), "near"),
        ("zh", ("zh-near",), "near"),
    ]
    assert rep.rows_in == 9 and rep.kept == 5 and rep.dropped == {"duplicate": 4}


def test_dedup_keeps_repeated_ids_apart_and_agrees_with_data_dedup_on_exact(tmp_path, cli):
    a = problem("same", "Find the perimeter of the square.", seed=3)
    rows = [a, copy.deepcopy(a), copy.deepcopy(a), problem("b", "Find y.", seed=4)]
    inp = write(tmp_path / "in.parquet", rows)
    run_stage(DedupStage(), [inp], tmp_path / "ours.parquet")
    assert ids(tmp_path / "ours.parquet") == ["same", "b"]
    res = cli(
        "data", "dedup", inp, "--out", tmp_path / "theirs.parquet", "--groups", tmp_path / "g.jsonl"
    )
    assert res.code == 0, res.text
    assert ids(tmp_path / "theirs.parquet") == ids(tmp_path / "ours.parquet")


def test_decontam_drops_text_and_image_matches_per_benchmark(tmp_path):
    bench_text = problem("mv-1", "A cylinder has radius 3 and height 5 as shown. Find its volume.")
    bench_img = problem("lv-7", "Which shape comes next in the sequence?", seed=4242)
    bench_other = problem("mv-2", "Compute the slope of line l.", seed=77)
    refs = [("mathverse", bench_text), ("logicvista", bench_img), ("mathverse", bench_other)]
    rows = [
        problem(
            "copy-text", "A cylinder has radius 3 and height 5 as shown. Find its volume.", seed=1
        ),
        problem(
            "reworded",
            "As shown, a cylinder has radius 3 and height 5. Find its volume, please.",
            seed=2,
        ),
        problem("copy-image", "How many triangles are in the figure?", seed=4242),
        problem("clean", "A cone has radius 2 and slant height 7. Find its lateral area.", seed=3),
        problem("short", "Find x.", seed=5),
    ]
    inp = write(tmp_path / "in.parquet", rows)
    out = tmp_path / "clean.parquet"
    rep = run_stage(DecontamStage(refs), [inp], out)
    assert ids(out) == ["reworded", "clean", "short"]
    drops = read_jsonl(tmp_path / "clean.drops.jsonl")
    assert {d["id"]: (d["reason"], d["detail"].split(":")[0]) for d in drops} == {
        "copy-text": ("contaminated:mathverse", "text"),
        "copy-image": ("contaminated:logicvista", "image"),
    }
    assert rep.dropped == {"contaminated:mathverse": 1, "contaminated:logicvista": 1}
    # a looser threshold catches the reworded copy too
    out2 = tmp_path / "clean2.parquet"
    run_stage(DecontamStage(refs, ngram=3, text_threshold=0.6), [inp], out2)
    assert ids(out2) == ["clean", "short"]


def test_unreadable_rows_are_dropped_with_their_place(tmp_path):
    good = {"question": "Find x.", "answer": "3", "id": "ok"}
    (tmp_path / "in.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    rep = run_stage(ValidityStage(rules_only=True), [tmp_path / "in.jsonl"], tmp_path / "o.parquet")
    assert rep.rows_in == 2 and rep.kept == 1 and rep.dropped == {"unreadable_row": 1}
    (drop,) = read_jsonl(tmp_path / "o.drops.jsonl")
    assert drop["row"] == 2 and "not JSON" in drop["detail"]


def test_decontam_finds_images_at_any_allowed_distance(tmp_path):
    from deepvision.curate.hashing import dhash

    one_bit_per_row = sum(1 << (8 * r) for r in range(8))  # distance 8, every 8-bit band differs
    assert (dhash(hashed_figure()) ^ dhash(hashed_figure(one_bit_per_row))).bit_count() == 8
    ref = problem("ref", "Which shape comes next?", images=[ProblemImage(hashed_figure(), None)])
    near = ProblemImage(hashed_figure(one_bit_per_row), None)
    inp = write(tmp_path / "in.parquet", [problem("near", "Count the dots.", images=[near])])
    out = tmp_path / "clean.parquet"
    run_stage(DecontamStage([("bench", ref)], image_distance=10), [inp], out)
    assert ids(out) == []
    assert drops_by_id(tmp_path / "clean.drops.jsonl") == {"near": "contaminated:bench"}
    strict = tmp_path / "strict.parquet"
    run_stage(DecontamStage([("bench", ref)], image_distance=7), [inp], strict)
    assert ids(strict) == ["near"]


def test_dedup_does_not_chain_questions_across_pairs(tmp_path):
    from deepvision.curate.hashing import jaccard_estimate, minhash

    lead = "Consider the diagram carefully. A circle of radius 7 is inscribed in a "
    a = problem("A", lead + "square; find the shaded area to two decimals.", seed=1)
    b = problem("B", lead + "square; find the shaded area to one decimal place now.", seed=2)
    c = problem(
        "C", lead + "hexagon; find the shaded region area to one decimal place now.", seed=1
    )
    sim = {
        (x.id, y.id): jaccard_estimate(minhash(x.question), minhash(y.question))
        for x, y in [(a, b), (b, c), (a, c)]
    }
    assert sim[("A", "B")] >= 0.6 and sim[("B", "C")] >= 0.6 and sim[("A", "C")] < 0.6
    inp = write(tmp_path / "in.parquet", [a, b, c])
    out = tmp_path / "o.parquet"
    rep = run_stage(DedupStage(text_threshold=0.6, workers=1), [inp], out)
    # A and C share a figure but not the question; A-B and B-C share the question, not the figure
    assert ids(out) == ["A", "B", "C"] and rep.dropped == {}
    # the same pair rule still joins a true near duplicate of C to C
    c2 = copy.deepcopy(c)
    c2.id, c2.question = "C2", c.question.replace("now.", "now?")
    inp2 = write(tmp_path / "in2.parquet", [a, b, c, c2])
    run_stage(DedupStage(text_threshold=0.6, workers=1), [inp2], tmp_path / "o2.parquet")
    assert ids(tmp_path / "o2.parquet") == ["A", "B", "C"]
    assert drops_by_id(tmp_path / "o2.drops.jsonl") == {"C2": "duplicate"}


def test_dedup_groups_identical_undecodable_images(tmp_path):
    q = "In the figure, triangle ABC has AB = 5 and BC = 12. Find the length of AC."
    a = problem("a", q, images=[ProblemImage(b"not-an-image-bytes", None)])
    b = problem("b", q.replace("AC.", "AC?"), images=[ProblemImage(b"not-an-image-bytes", None)])
    other = problem("c", q.replace("AC.", "AC!"), images=[ProblemImage(b"other-bad-bytes", None)])
    inp = write(tmp_path / "in.parquet", [a, b, other])
    out = tmp_path / "o.parquet"
    run_stage(DedupStage(workers=1), [inp], out)
    assert ids(out) == ["a", "c"]  # different undecodable bytes are not the same image
    assert {d["id"]: d["detail"] for d in read_jsonl(tmp_path / "o.drops.jsonl")} == {
        "b": "near duplicate of a"
    }


def test_keyword_rules_keep_checkable_questions_that_share_words_with_tasks(tmp_path):
    keep = [
        problem("zh-mcq", "下列描述正确的是（ ）A. 对顶角相等 B. 同位角相等"),
        problem("zh-mcq2", "关于该图形，下列叙述正确的是哪一个？"),
        problem("zh-why", "如图，AB∥CD，为什么∠1=∠2？已知∠1=3x，∠2=60°，求x的值。"),
        problem("sketch-noun", "The sketch shows a parabola. Find its vertex."),
        problem("draw-noun", "The probability of a draw is 0.2 as shown. Find P(win)."),
        problem("zh-hours", "公园的开放时间如图所示，共开放多少小时？"),
        problem("zh-example", "例如，图中1个苹果重200克，3个苹果重多少克？"),
    ]
    drop = [
        problem("zh-describe", "请描述该函数图像的变化趋势。"),
        problem("zh-describe2", "观察图形，描述一下三角形的特征。"),
        problem("zh-reason", "判断AB与CD是否平行，并试说明理由。"),
        problem("zh-explain", "请解释图中阴影部分的含义。"),
        problem("sketch", "Sketch the graph of y = x^2 + 1."),
        problem("draw", "Draw a line through P parallel to AB."),
        problem("zh-open", "这是一道开放性问题：请设计一种方案。"),
    ]
    inp = write(tmp_path / "in.parquet", keep + drop)
    out = tmp_path / "valid.parquet"
    run_stage(ValidityStage(rules_only=True), [inp], out)
    assert ids(out) == [p.id for p in keep]
    assert drops_by_id(tmp_path / "valid.drops.jsonl") == {
        "zh-describe": "keyword:description",
        "zh-describe2": "keyword:description",
        "zh-reason": "keyword:explanation",
        "zh-explain": "keyword:explanation",
        "sketch": "keyword:drawing",
        "draw": "keyword:drawing",
        "zh-open": "keyword:open_ended",
    }


class _FailingFinish(ValidityStage):
    """A stage whose last side file cannot be written (disk full, killed, ...)."""

    def finish(self, out):
        raise OSError("disk full")


def test_output_appears_only_after_its_drops_and_report(tmp_path):
    inp = write(tmp_path / "in.parquet", [problem("a", "Find x."), problem("b", "Prove it.")])
    out = tmp_path / "o.parquet"
    with pytest.raises(OSError, match="disk full"):
        run_stage(_FailingFinish(rules_only=True), [inp], out, keep_work=True)
    assert not out.exists() and not (tmp_path / "o.report.json").exists()
    # so the next run is not refused as "exists" and no output stands without its report
    rep = run_stage(ValidityStage(rules_only=True), [inp], out)
    assert ids(out) == ["a"] and rep.resumed_chunks == 1
    assert (tmp_path / "o.report.json").exists()
    assert sorted(f.name for f in tmp_path.iterdir() if ".part" in f.name) == []
