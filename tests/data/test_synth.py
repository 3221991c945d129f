"""The synthetic engine: families, exact answers, multiple choice, determinism, validity."""

import io
from collections import Counter
from fractions import Fraction

from PIL import Image

from deepvision.data.prompts import option_letter
from deepvision.data.synth import FAMILIES, generate
from deepvision.data.synth.answers import frac_forms, simplify_sqrt, sqrt_forms, terminating_decimal
from deepvision.data.validate import validate
from deepvision.records import VISUAL_ELEMENT_CATEGORIES


def test_at_least_eight_families_covering_the_four_domains(synth_problems):
    assert len(FAMILIES) >= 8
    domains = {p.topic[0] for p in generate(200, seed=11)}
    assert domains == {
        "Geometry",
        "Algebra",
        "Probability & Statistics",
        "Fundamental Mathematical Skills",
    }
    categories = {c for p in generate(200, seed=11) for c in p.visual_elements}
    assert len(categories) >= 4 and categories <= set(VISUAL_ELEMENT_CATEGORIES)


def test_every_family_has_free_form_and_multiple_choice():
    seen = Counter()
    for p in generate(400, seed=5):
        family = p.id.split("-")[1]
        seen[(family, p.options is not None)] += 1
    for family in FAMILIES:
        assert seen[(family, False)] and seen[(family, True)], family


def test_every_annotation_is_filled(synth_problems):
    for p in synth_problems:
        assert len(p.topic) == 4 and p.knowledge_points and p.visual_elements
        assert p.image_necessity == "required" and p.answer
        assert p.messages[-1]["content"].count("<image>") == len(p.images) == 1


def test_multiple_choice_options_are_distinct_and_the_letter_points_at_the_answer():
    for p in generate(300, seed=9):
        if p.options is None:
            continue
        assert len(p.options) == 4 and len(set(p.options)) == 4, p.options
        letter = p.answer
        assert letter in "ABCD"
        assert f"{letter}. {p.options['ABCD'.index(letter)]}" in p.question
        assert option_letter(p.options.index(p.options["ABCD".index(letter)])) == letter


def test_same_seed_same_bytes_and_prefix_stability():
    a = list(generate(25, seed=42))
    b = list(generate(25, seed=42))
    assert [(p.id, p.question, p.answer, p.images[0].bytes) for p in a] == [
        (p.id, p.question, p.answer, p.images[0].bytes) for p in b
    ]
    longer = list(generate(40, seed=42))
    assert [p.id for p in longer[:25]] == [p.id for p in a]
    assert [p.id for p in generate(25, seed=43)] != [p.id for p in a]
    tail = list(generate(5, seed=42, start=20))
    assert [p.id for p in tail] == [p.id for p in a[20:25]]


def test_same_seed_same_file_bytes(cli, tmp_path):
    for name in ("a.parquet", "b.parquet"):
        assert cli("data", "synth", "--n", "20", "--seed", "4", "--out", tmp_path / name).code == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_problems_are_distinct_and_valid(tmp_path):
    from deepvision.data.writer import ProblemWriter

    problems = list(generate(300, seed=1))
    assert len({p.id for p in problems}) == 300
    path = tmp_path / "s.parquet"
    with ProblemWriter(path) as w:
        w.write(problems)
    report = validate([path], workers=1)
    assert report.ok, report.examples


def test_images_are_real_readable_pictures(synth_problems):
    for p in synth_problems[:20]:
        im = Image.open(io.BytesIO(p.images[0].bytes))
        im.load()
        assert im.width >= 400 and im.height >= 200
        colors = im.convert("L").getextrema()
        assert colors[0] < 80 and colors[1] > 240  # dark ink on a light background


def test_exact_answer_forms():
    assert simplify_sqrt(72) == (6, 2)
    assert sqrt_forms(20) == ("2\\sqrt{5}", ["2√5", "\\sqrt{20}"])
    assert sqrt_forms(49) == ("7", [])
    assert frac_forms(Fraction(-3, 2)) == ("-\\frac{3}{2}", ["-3/2", "-1.5"])
    assert frac_forms(Fraction(1, 3)) == ("\\frac{1}{3}", ["1/3"])
    assert terminating_decimal(Fraction(3, 8)) == "0.375"
    assert terminating_decimal(Fraction(2, 3)) is None


def test_equivalent_answers_agree_with_the_answer(synth_problems):
    """Fractions and decimals listed as equivalents have the answer's exact value."""
    for p in generate(300, seed=2):
        if p.options or "\\frac" not in p.answer:
            continue
        num, den = p.answer.replace("-", "").replace("\\frac{", "").rstrip("}").split("}{")
        value = Fraction(int(num), int(den)) * (-1 if p.answer.startswith("-") else 1)
        for eq in p.equivalent_answers:
            assert Fraction(eq) == value, (p.answer, eq)


def test_unknown_family_is_a_usage_error(cli, tmp_path):
    res = cli("data", "synth", "--n", "3", "--families", "nope", "--out", tmp_path / "x.parquet")
    assert res.code == 2 and "unknown synth families" in res.err
