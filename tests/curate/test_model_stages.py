"""Model stages against a scripted OpenAI-compatible server on 127.0.0.1: exactly what is
kept, what is dropped and why, with garbage, refusals, HTTP errors and timeouts."""

from __future__ import annotations

import json

from helpers import drops_by_id, problem, read_jsonl, write
from scripted import Scripted, ScriptedServer

from deepvision.curate import ModelConfig, ValidityStage, run_stage
from deepvision.curate.annotate import AnnotateStage
from deepvision.curate.correctness import CorrectnessStage
from deepvision.curate.difficulty import DifficultyStage
from deepvision.data.reader import iter_problems


def cfg(url: str, **kw) -> ModelConfig:
    base = dict(concurrency=4, timeout=5.0, attempts=2, backoff=0.01)
    base.update(kw)
    return ModelConfig([url], "scripted", **base)


def kept(path):
    return {p.id: p for p in iter_problems([path])}


def v(answers=1, image=True, checkable=True):
    return json.dumps(
        {"answers": answers, "image_required": image, "checkable": checkable, "reason": "scripted"}
    )


REFUSAL = "I'm sorry, but I can't help with that request."


def test_validity_keeps_single_answer_image_dependent_checkable_and_says_why(tmp_path):
    script = {
        "good": [v()],
        "fenced": ["Sure! Here it is:\n```json\n" + v() + "\n```"],
        "multi": [v(answers=2)],
        "noimg": [v(image=False)],
        "essay": [v(checkable=False)],
        "garbage-then-ok": ["lorem ipsum {{{", v()],
        "refuse": [REFUSAL],
        "badtype": ['{"answers": "one", "image_required": true, "checkable": true}'],
        "http500": [Scripted(status=500)],
        "slow": [Scripted(texts=[v()], delay=1.5)],
    }
    problems = [problem(t, f"[{t}] In the figure, find x.") for t in script]
    problems.insert(3, problem("proof", "[proof] Prove that AB = CD."))
    inp = write(tmp_path / "in.parquet", problems)
    out = tmp_path / "valid.parquet"
    with ScriptedServer(script) as s:
        stage = ValidityStage(cfg(s.url, timeout=0.5), retries=2)
        rep = run_stage(stage, [inp], out, chunk_size=4)
    assert set(kept(out)) == {"good", "fenced", "garbage-then-ok"}
    assert drops_by_id(tmp_path / "valid.drops.jsonl") == {
        "proof": "keyword:proof",
        "multi": "multiple_answers",
        "noimg": "image_not_required",
        "essay": "not_checkable",
        "refuse": "unparsed",
        "badtype": "unparsed",
        "http500": "model_error",
        "slow": "model_error",
    }
    assert s.asked["proof"] == 0  # keyword drops never reach the model
    assert s.asked["refuse"] == 3 and s.asked["garbage-then-ok"] == 2  # 1 + 2 re-asks
    assert s.asked["http500"] == 2  # the client's attempts, no re-ask of a failed request
    assert rep.notes == {"unparsed": 2, "model_error": 2}
    assert rep.rows_in == 11 and rep.balanced
    unparsed = {r["id"]: r for r in read_jsonl(tmp_path / "valid.unparsed.jsonl")}
    assert unparsed["refuse"]["raw"] == REFUSAL and unparsed["refuse"]["dropped"]
    assert "'answers' must be a non-negative integer" in unparsed["badtype"]["detail"]
    good = kept(out)["good"]
    assert json.loads(good.extra["validity"])["answers"] == 1
    assert good.image_necessity == "required"
    assert rep.usage["prompt_tokens"] > 0


def test_validity_on_unparsed_keep_keeps_and_counts(tmp_path):
    script = {"a": [v()], "b": ["no json here"]}
    inp = write(tmp_path / "in.parquet", [problem(t, f"[{t}] Find x.") for t in script])
    with ScriptedServer(script) as s:
        stage = ValidityStage(cfg(s.url), retries=1, on_unparsed="keep")
        rep = run_stage(stage, [inp], tmp_path / "o.parquet")
    out = kept(tmp_path / "o.parquet")
    assert set(out) == {"a", "b"}
    assert json.loads(out["b"].extra["validity"])["status"] == "unparsed"
    assert rep.notes == {"unparsed": 1} and rep.kept == 2


def label(name, reason="scripted", **kw):
    return json.dumps({"label": name, "reason": reason, **kw})


def test_correctness_keeps_consistent_only_with_label_and_reason(tmp_path):
    script = {
        "ok": [label("CONSISTENT", "answer checks out")],
        "ok-one": ['{"label": 1, "reason": "fine"}'],
        "img": [label("ERR_IMG_MISSING", "no figure")],
        "txt": [label("ERR_TEXT_MISSING")],
        "mis": [label("ERR_MISMATCH")],
        "fix": [label("CORRECTION", "should be 7", corrected_answer="7")],
        "several": ['{"label": ["CONSISTENT", "ERR_MISMATCH", "CORRECTION"], "reason": "x"}'],
        "unknown": [label("PROBABLY_FINE"), label("MAYBE")],
        "lower": [label("consistent")],
    }
    inp = write(tmp_path / "in.parquet", [problem(t, f"[{t}] Find x.") for t in script])
    with ScriptedServer(script) as s:
        rep = run_stage(
            CorrectnessStage(cfg(s.url), retries=1), [inp], tmp_path / "c.parquet", chunk_size=5
        )
    out = kept(tmp_path / "c.parquet")
    assert set(out) == {"ok", "ok-one", "lower"}
    assert out["ok"].extra["correctness_label"] == "CONSISTENT"
    assert out["ok"].extra["correctness_reason"] == "answer checks out"
    assert drops_by_id(tmp_path / "c.drops.jsonl") == {
        "img": "ERR_IMG_MISSING",
        "txt": "ERR_TEXT_MISSING",
        "mis": "ERR_MISMATCH",
        "fix": "CORRECTION",
        "several": "ERR_MISMATCH",  # precedence: the first in the documented order
        "unknown": "unparsed",
    }
    assert s.asked["unknown"] == 2
    # the reference answer is shown to the judge
    assert any("Reference answer: 5" in json.dumps(b) for b in s.bodies)
    assert rep.balanced and rep.notes == {"unparsed": 1}


def test_annotate_accepts_only_taxonomy_labels(tmp_path):
    good = {
        "topic": ["Geometry", "Plane Geometry", "Basic Plane Figures", "Triangle"],
        "knowledge_points": ["Area of Triangle"],
        "visual_elements": {"planar_geometry": ["Triangle", "Angles"]},
    }
    invented = dict(good, knowledge_points=["Triangle Magic"])
    bad_path = dict(good, topic=["Geometry", "Triangles"])
    bad_element = dict(good, visual_elements={"planar_geometry": ["Hexagram"]})
    script = {
        "good": [json.dumps(good)],
        "fixes": [json.dumps(invented), json.dumps(good)],
        "path": [json.dumps(bad_path)],
        "elem": [json.dumps(bad_element)],
    }
    blank = dict(topic=[], knowledge_points=[], visual_elements={})
    inp = write(tmp_path / "in.parquet", [problem(t, f"[{t}] Find x.", **blank) for t in script])
    with ScriptedServer(script) as s:
        rep = run_stage(AnnotateStage(cfg(s.url), retries=1), [inp], tmp_path / "a.parquet")
    out = kept(tmp_path / "a.parquet")
    assert set(out) == set(script)  # default policy keeps unannotated problems
    for pid in ("good", "fixes"):
        assert out[pid].topic == good["topic"]
        assert out[pid].knowledge_points == ["Area of Triangle"]
        assert out[pid].visual_elements == {"planar_geometry": ["Triangle", "Angles"]}
        assert out[pid].extra["annotation_status"] == "ok"
    for pid in ("path", "elem"):
        assert out[pid].extra["annotation_status"] == "unparsed"
        assert out[pid].topic == [] and out[pid].visual_elements == {}  # never guessed
    notes = {r["id"]: r["detail"] for r in read_jsonl(tmp_path / "a.unparsed.jsonl")}
    assert "is not in the taxonomy" in notes["path"]
    assert "Hexagram" in notes["elem"]
    retry_note = [b for b in s.bodies if "Triangle Magic" in json.dumps(b)]
    assert retry_note and "not in the taxonomy" in json.dumps(retry_note[-1]["messages"][-1])
    assert rep.notes == {"unparsed": 2}


def rollouts(correct: int, answer: str = "\\boxed{12}", wrong: str = "\\boxed{13}", n=8):
    return [answer] * correct + [wrong] * (n - correct)


def test_difficulty_pass_rates_from_the_verifier_and_the_band(tmp_path):
    script = {
        "r0": [rollouts(0)],
        "r1": [rollouts(1)],
        "r4": [rollouts(4)],
        "r7": [rollouts(7)],
        "r8": [rollouts(8)],
        # equivalent forms are decided by deepvision.verify: 0.5 == 1/2 == \frac{1}{2}
        "frac": [["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{1/2}"] + ["\\boxed{2}"] * 5],
        "err": [Scripted(status=503)],
    }
    problems = [problem(t, f"[{t}] Find x.", answer="12") for t in script]
    problems[5].answer = "1/2"
    inp = write(tmp_path / "in.parquet", problems)
    with ScriptedServer(script) as s:
        rep = run_stage(
            DifficultyStage(cfg(s.url), n=8), [inp], tmp_path / "d.parquet", chunk_size=3
        )
    out = kept(tmp_path / "d.parquet")
    assert {k: str(p.pass_rate) for k, p in out.items()} == {
        "r1": "1/8",
        "r4": "4/8",
        "r7": "7/8",
        "frac": "3/8",
    }
    assert drops_by_id(tmp_path / "d.drops.jsonl") == {
        "r0": "too_hard",
        "r8": "too_easy",
        "err": "model_error",
    }
    assert rep.balanced and rep.notes == {"model_error": 1}


def test_knowledge_guided_selection_prefers_rare_knowledge_points(tmp_path):
    lower = [
        problem(
            f"low{i}", f"[low{i}] Find x.", answer="12", knowledge_points=["Pythagorean Theorem"]
        )
        for i in range(3)
    ]
    upper = [
        problem(
            "up-common-1",
            "[up-common-1] Find x.",
            answer="12",
            knowledge_points=["Pythagorean Theorem"],
        ),
        problem("up-rare", "[up-rare] Find x.", answer="12", knowledge_points=["Parabola"]),
        problem(
            "up-common-2",
            "[up-common-2] Find x.",
            answer="12",
            knowledge_points=["Pythagorean Theorem"],
        ),
        problem(
            "up-rare-2", "[up-rare-2] Find x.", answer="12", knowledge_points=["Vertex of Parabola"]
        ),
    ]

    def script(tag, attempt, body):
        return rollouts(2 if tag.startswith("low") else 6)

    inp = write(tmp_path / "in.parquet", lower + upper)
    with ScriptedServer(script) as s:
        stage = DifficultyStage(cfg(s.url), upper_band="5/8..7/8", upper_target=2)
        rep = run_stage(stage, [inp], tmp_path / "d.parquet", chunk_size=4)
    assert list(kept(tmp_path / "d.parquet")) == ["low0", "low1", "low2", "up-rare", "up-rare-2"]
    assert drops_by_id(tmp_path / "d.drops.jsonl") == {
        "up-common-1": "upper_band_not_selected",
        "up-common-2": "upper_band_not_selected",
    }
    assert rep.kept == 5 and rep.balanced


def test_two_problems_under_one_id_each_get_their_own_answer(tmp_path):
    """Ids repeat in real data; each problem is asked and judged on its own reply."""
    ann = {
        "topic": ["Geometry", "Plane Geometry", "Basic Plane Figures", "Triangle"],
        "knowledge_points": ["Area of Triangle"],
        "visual_elements": {"planar_geometry": ["Triangle", "Angles"]},
    }
    cases = [
        (lambda u: ValidityStage(cfg(u), retries=0), v(), v(answers=3), "multiple_answers"),
        (
            lambda u: CorrectnessStage(cfg(u), retries=0),
            label("CONSISTENT"),
            label("ERR_MISMATCH"),
            "ERR_MISMATCH",
        ),
        (
            lambda u: AnnotateStage(cfg(u), retries=0, on_unparsed="drop"),
            json.dumps(ann),
            json.dumps(dict(ann, knowledge_points=["Triangle Magic"])),
            "unparsed",
        ),
        (lambda u: DifficultyStage(cfg(u), n=8), rollouts(4), rollouts(0), "too_hard"),
    ]
    for n, (make, good, bad, why) in enumerate(cases):
        problems = [
            problem("1", "[good] Find x.", answer="12", topic=[], knowledge_points=[]),
            problem("1", "[bad] Find y.", answer="12", topic=[], knowledge_points=[]),
        ]
        inp = write(tmp_path / f"in{n}.parquet", problems)
        out = tmp_path / f"out{n}.parquet"
        with ScriptedServer({"good": [good], "bad": [bad]}) as s:
            rep = run_stage(make(s.url), [inp], out, chunk_size=10)
        assert dict(s.asked) == {"good": 1, "bad": 1}, why
        assert [p.question for p in iter_problems([out])] == ["[good] Find x."], why
        drops = read_jsonl(tmp_path / f"out{n}.drops.jsonl")
        assert [d["reason"] for d in drops] == [why]
        assert rep.rows_in == 2 and rep.balanced


def test_negative_retries_and_upper_target_are_usage_errors(tmp_path, cli):
    inp = write(tmp_path / "in.parquet", [problem("a", "[good] Find x.", answer="12")])
    with ScriptedServer({"good": [v()]}) as s:
        for command in ("validity", "correctness", "annotate"):
            out = tmp_path / f"{command}.parquet"
            res = cli("curate", command, inp, out, "--endpoint", s.url, "--model", "m",
                      "--retries", "-1")  # fmt: skip
            assert res.code == 2, (command, res.text)
            assert "--retries: must be 0 or more" in res.text and "Traceback" not in res.text
            assert not out.exists()
        out = tmp_path / "difficulty.parquet"
        res = cli("curate", "difficulty", inp, out, "--endpoint", s.url, "--model", "m",
                  "--upper-band", "5/8..7/8", "--upper-target", "-1")  # fmt: skip
        assert res.code == 2, res.text
        assert "--upper-target: must be 0 or more" in res.text and not out.exists()
        assert sum(s.asked.values()) == 0
