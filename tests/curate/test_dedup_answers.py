"""`curate dedup` and answers: distinct templated problems (same text, similar drawing, other
numbers) are all kept, planted copies are still found, and the same question and image with
answers that differ are kept both and listed as a conflict."""

from __future__ import annotations

import copy
import io
from pathlib import Path

from helpers import hashed_figure, problem, read_jsonl, write
from PIL import Image

from deepvision.curate import DedupStage, run_stage
from deepvision.curate.hashing import jaccard_estimate, minhash
from deepvision.data.reader import iter_problems
from deepvision.data.synth import generate
from deepvision.records import Problem, ProblemImage


def ids(path: Path) -> list[str]:
    return [p.id for p in iter_problems([path])]


def value(p: Problem) -> str:
    """The answer itself: the text of the chosen option for a lettered choice."""
    return p.options["ABCDEFGHIJ".index(p.answer)] if p.options else p.answer


def same_value(x: str, y: str) -> bool:
    """Equal answers, "12" and "12.0" alike."""
    try:
        return x == y or float(x) == float(y)
    except ValueError:
        return False


def dropped_for_another_answer(problems: list[Problem], drops: list[dict]) -> list[tuple]:
    """(dropped id, its answer, the kept problem's answer) where the two answers differ."""
    by_id = {p.id: p for p in problems}
    out = []
    for d in drops:
        mine, kept = value(by_id[d["id"]]), value(by_id[d["detail"].rsplit(" of ", 1)[1]])
        if not same_value(mine, kept):
            out.append((d["id"], mine, kept))
    return out


def test_no_distinct_synthetic_problem_is_dropped_for_one_with_another_answer(tmp_path):
    problems = list(generate(300, seed=11))  # templated figures: ~27 per family
    inp = write(tmp_path / "in.parquet", problems)
    rep = run_stage(DedupStage(workers=1), [inp], tmp_path / "o.parquet")
    drops = read_jsonl(tmp_path / "o.drops.jsonl")
    assert dropped_for_another_answer(problems, drops) == []
    assert len(ids(tmp_path / "o.parquet")) + len(drops) == 300 and rep.balanced


def _reencoded(png: bytes) -> bytes:
    """The same pixels saved again: other bytes, the same drawing."""
    with Image.open(io.BytesIO(png)) as im:
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=1)
    assert buf.getvalue() != png
    return buf.getvalue()


def test_planted_copies_among_templated_problems_are_still_found(tmp_path):
    base = list(generate(120, seed=5))
    copies = []
    for k, p in enumerate(base[::3]):
        c = copy.deepcopy(p)
        c.id = f"copy-{k}"
        if k % 2:  # near copy: the image saved again, a number answer spelled another way
            c.images = [ProblemImage(_reencoded(im.bytes), None) for im in p.images]
            if not p.options and p.answer.lstrip("-").isdigit():
                c.answer = p.answer + ".0"
        copies.append(c)
    assert any(c.answer.endswith(".0") for c in copies)
    inp = write(tmp_path / "in.parquet", base + copies)
    run_stage(DedupStage(workers=1), [inp], tmp_path / "o.parquet")
    assert not [i for i in ids(tmp_path / "o.parquet") if i.startswith("copy-")]
    drops = read_jsonl(tmp_path / "o.drops.jsonl")
    assert dropped_for_another_answer(base + copies, drops) == []
    near = {c.id for k, c in enumerate(copies) if k % 2}
    assert {d["id"] for d in drops if d["detail"].startswith("near")} >= near


def test_same_question_and_image_with_other_answers_are_kept_as_a_conflict(tmp_path, cli):
    q = "What is the equation of the axis of symmetry of the parabola shown?"
    a = problem("axis-a", q, answer="x=3", seed=7)
    b = copy.deepcopy(a)
    b.id, b.answer = "axis-b", "x=-3"  # same question, same image bytes, another answer
    c = copy.deepcopy(a)
    c.id, c.answer = "axis-c", "3"  # a's answer, written without the variable
    mq = "How long is side AB in the figure?"
    mc1 = problem("mc-1", mq, answer="B", seed=8, options=["10", "12", "14", "16"])
    mc_copy = copy.deepcopy(mc1)
    mc_copy.id = "mc-copy"
    mc2 = copy.deepcopy(mc1)  # 12 again, but of other options: another problem
    mc2.id, mc2.answer, mc2.options = "mc-2", "C", ["16", "14", "12", "10"]
    mc4 = copy.deepcopy(mc1)
    mc4.id, mc4.answer = "mc-4", "C"  # the same options, another letter
    other = problem("other", "Find the area of the shaded region.", seed=9)
    inp = write(tmp_path / "in.parquet", [a, b, c, mc1, mc_copy, mc2, mc4, other])
    out = tmp_path / "o.parquet"
    res = cli("curate", "dedup", inp, out, "--workers", "1")
    assert res.code == 0, res.text
    assert ids(out) == ["axis-a", "axis-b", "mc-1", "mc-2", "mc-4", "other"]
    assert {d["id"]: d["detail"] for d in read_jsonl(tmp_path / "o.drops.jsonl")} == {
        "axis-c": "exact duplicate of axis-a",
        "mc-copy": "exact duplicate of mc-1",
    }
    groups = read_jsonl(tmp_path / "o.groups.jsonl")
    conflicts = sorted(
        (tuple(g["kept"]), tuple(g["answers"])) for g in groups if g["kind"] == "conflict"
    )
    assert conflicts == [(("axis-a", "axis-b"), ("x=3", "x=-3")), (("mc-1", "mc-4"), ("B", "C"))]
    assert "conflicts 2" in res.out and "o.groups.jsonl" in res.out


def test_a_reworded_question_counts_only_with_the_very_same_image(tmp_path):
    q_min = "What is the minimum value of the quadratic function whose graph is shown?"
    q_max = q_min.replace("minimum", "maximum")
    q_min2 = q_min.replace("shown?", "shown here?")
    for other in (q_max, q_min2):  # all near-duplicate texts
        assert jaccard_estimate(minhash(q_min), minhash(other)) >= 0.8
    same = [ProblemImage(hashed_figure(), None)]
    near = [ProblemImage(hashed_figure(1), None)]  # dHash distance 1 from hashed_figure()
    near2 = [ProblemImage(hashed_figure(2), None)]  # distance 1 too, 2 from `near`
    rows = [
        problem("min", q_min, answer="3", images=same),
        problem("max", q_max, answer="3", images=near),  # near text AND near image
        problem("min-reworded", q_min2, answer="3", images=same),  # near text, same image
        problem("min-other-copy", q_min, answer="3", images=near2),  # same text, near image
    ]
    inp = write(tmp_path / "in.parquet", rows)
    run_stage(DedupStage(workers=1), [inp], tmp_path / "o.parquet")
    assert ids(tmp_path / "o.parquet") == ["min", "max"]
    assert {d["id"]: d["detail"] for d in read_jsonl(tmp_path / "o.drops.jsonl")} == {
        "min-reworded": "near duplicate of min",
        "min-other-copy": "near duplicate of min",
    }
