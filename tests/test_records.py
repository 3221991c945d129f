"""The Problem record: parsing the DeepVision row layout, ids, and lossless write-back."""

import json

import pytest

from conftest import deepvision_row, png_bytes
from deepvision import records as r
from deepvision.records import (
    PassRate,
    ProblemImage,
    content_hash,
    problem_from_row,
    problem_to_row,
)


def test_row_parses_into_typed_fields():
    p, issues = problem_from_row(deepvision_row(answer="18.5"))
    assert issues == []
    assert p.answer == "18.5"
    assert p.equivalent_answers == ["37/2", "18.5"]
    assert p.pass_rate == PassRate(2, 8)
    assert p.topic == ["Geometry", "Plane Geometry", "Basic Plane Figures", "Triangle"]
    assert p.knowledge_points == ["Area of Triangle", "Properties of Rhombus"]
    assert p.visual_elements["planar_geometry"] == ["Triangle", "Angles"]
    assert p.image_necessity == "required"
    assert p.user_prompt.startswith("<image>")
    assert len(p.images) == 1 and p.images[0].bytes.startswith(b"\x89PNG")


def test_empty_sentinel_means_no_equivalent_answers():
    row = deepvision_row()
    row[r.REWARD_MODEL] = {
        "ground_truth": "B",
        "equivalent_answers": ["__EMPTY__"],
        "style": "rule",
    }
    p, _ = problem_from_row(row)
    assert p.equivalent_answers == []
    assert p.all_answers == ["B"]


def test_pass_rate_fraction_and_bad_values():
    assert PassRate.parse(" 3 / 8 ").value == pytest.approx(0.375)
    assert str(PassRate(0, 8)) == "0/8"
    for bad in ("3 of 8", "9/8", "1/0", ""):
        with pytest.raises(ValueError):
            PassRate.parse(bad)


def test_id_is_a_stable_content_hash_when_missing():
    p1, _ = problem_from_row(deepvision_row(question="Find  X."))
    p2, _ = problem_from_row(deepvision_row(question="find x."))  # same after normalization
    p3, _ = problem_from_row(deepvision_row(question="Find y."))
    assert p1.id == p2.id != p3.id
    assert len(p1.id) == 20
    other_image = [ProblemImage(png_bytes((1, 2, 3)))]
    assert content_hash("Find x.", other_image) != p1.id


def test_explicit_id_column_is_used():
    p, _ = problem_from_row(deepvision_row(id="math-00042"))
    assert p.id == "math-00042"


def test_unchanged_problem_writes_back_byte_identical_columns():
    # Odd spacing and key order in the JSON strings must survive a read/write.
    row = deepvision_row()
    row[r.DOMAIN_ANNO] = '{"Level_1":"Geometry",  "Knowledge":["Area of Triangle"]}'
    row["extra_col"] = {"nested": [1, 2]}
    p, issues = problem_from_row(row)
    assert not issues
    assert problem_to_row(p, row.keys()) == row


def test_edited_fields_are_re_encoded():
    p, _ = problem_from_row(deepvision_row())
    p.topic = ["Algebra", "Functions"]
    p.pass_rate = PassRate(5, 8)
    p.equivalent_answers = []
    out = problem_to_row(p, [r.DOMAIN_ANNO, r.PASS_RATE, r.REWARD_MODEL])
    anno = json.loads(out[r.DOMAIN_ANNO])
    assert anno["Level_1"] == "Algebra" and anno["Level_2"] == "Functions"
    assert "Level_3" not in anno
    assert out[r.PASS_RATE] == "5/8"
    assert out[r.REWARD_MODEL]["equivalent_answers"] == ["__EMPTY__"]


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        (r.PASS_RATE, "two of eight", "k/n"),
        (r.DOMAIN_ANNO, "{not json", "not valid JSON"),
        (r.VISION_ANNO, "[1, 2]", "JSON object"),
        (r.REWARD_MODEL, None, "missing"),
        (r.IMAGES, [{"bytes": None, "path": None}], "neither bytes nor a path"),
        (r.QUESTION, None, "null"),
    ],
)
def test_bad_cells_are_reported_with_their_column(column, value, needle):
    _, issues = problem_from_row(deepvision_row(**{column: value}))
    assert any(i.column == column and needle in i.reason for i in issues), issues


def test_completion_output_line_round_trip():
    from deepvision.records import Completion

    shared = dict(
        usage={"prompt_tokens": 3, "completion_tokens": 9},
        latency_s=0.5,
        endpoint="http://127.0.0.1:8000/v1",
        model="m",
        sampling={"n": 2},
    )
    samples = [
        Completion("p1", 0, "a", "stop", **shared),
        Completion("p1", 1, "b", "length", **shared),
    ]
    line = Completion.to_output_line({"answer": "1"}, samples)
    assert line["id"] == "p1" and line["answer"] == "1"
    assert line["model_responses"] == ["a", "b"] and line["finish_reasons"] == ["stop", "length"]
    assert Completion.from_output_line(line) == samples
    single = Completion.to_output_line({}, samples[:1])
    assert single["model_response"] == "a" and "model_responses" not in single
    assert Completion.from_output_line(single) == samples[:1]
