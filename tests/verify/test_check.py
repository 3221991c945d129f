"""Rule comparison: the known false negatives are accepted, the known false positives not."""

import pytest

from deepvision.verify import check, verify_batch


@pytest.mark.parametrize(
    ("pred", "gold", "options", "expected"),
    [
        ("A", "A", None, True),
        ("(A)(C)", "AC", None, True),
        ("A, C", "AC", None, True),
        ("A", "AC", None, False),
        ("12", "B", ["10", "12", "14"], True),
        ("10", "B", ["10", "12", "14"], False),
        ("Option B", "B", None, True),
        ("①③", "③①", None, True),
        ("①", "①③", None, False),
        ("0<x<12.5", "(0,12.5)", None, True),
        ("5 \\text{cm}", "5cm", None, True),
        ("5m", "5cm", None, False),
        ("30°", "30^\\circ", None, True),
        ("60°", "\\frac{\\pi}{3}", None, True),
        ("25%", "0.25", None, True),
        ("1000", "1,000", None, True),
        ("3", "x=3", None, True),
        ("1728", "1331, 1728", None, False),
        ("1331, 1728", "1331 and 1728", None, True),
        ("3/4", "3:4", None, True),
        ("4:3", "3:4", None, False),
        ("\\sqrt{12}", "2\\sqrt{3}", None, True),
        ("12.566", "4\\pi", None, False),
        ("2x-y+1=0", "y=2x+1", None, True),
        ("y=2x-1", "y=2x+1", None, False),
        ("1+\\frac{1}{\\mathrm{e}}", "1-\\frac{1}{\\mathrm{e}}", None, False),
        ("\\frac{1}{2006!}", "\\frac{1}{2004!}", None, False),
        ("Rectangle", "rectangle", None, True),
        ("square", "rectangle", None, False),
        ("3个", "3", None, True),
        ("（1，2）", "(1,2)", None, True),
        ("(2,1)", "(1,2)", None, False),
        ("[0,1)", "(0,1)", None, False),
        ("x=2", "x=1 or x=2", None, False),
        ("(x-1)(x+1)", "x^2-1", None, True),
        ("-3", "3", None, False),
        ("\\frac{1}{3}", "0.33", None, False),
        ("等腰三角形", "直角三角形", None, False),
    ],
)
def test_rules_and_symbolic(pool, pred, gold, options, expected):
    v = check(pred, gold, options=options, pool=pool)
    assert v.correct is expected, v


def test_verdict_names_answer_method_and_reason(pool):
    v = check(r"Long reasoning... so \boxed{\dfrac{3}{4}}.", "0.75", pool=pool)
    assert (v.correct, v.extracted, v.method) == (True, r"\dfrac{3}{4}", "number")
    v = check("no box and no answer phrase", "1", extract=True, pool=pool)
    assert (v.correct, v.extracted) == (False, None)


def test_equivalent_answers_are_tried(pool):
    assert check("60°", "\\frac{\\pi}{3}", equivalents=["60^\\circ"], pool=pool).correct
    assert not check("45°", "\\frac{\\pi}{3}", equivalents=["60^\\circ"], pool=pool).correct


def test_word_answers_never_reach_symbolic_algebra(pool):
    # As symbols, both are the product of the same letters; as words they differ.
    v = check("tcerangle", "rectangle", pool=pool)
    assert not v.correct and v.method == "text"


def test_batch_keeps_order_and_decides_repeats_once(pool):
    items = [{"pred": f"\\boxed{{{a}}}", "gold": "x^2-1"} for a in ["(x-1)(x+1)", "x^2+1"] * 50]
    verdicts = verify_batch(items, pool=pool)
    assert [v.correct for v in verdicts] == [True, False] * 50


@pytest.mark.parametrize(
    "batch",
    [
        # the same text, once a whole response (extract) and once an answer as it is
        [("\\boxed{5}", True), ("\\boxed{5}", False)],
        [("\\boxed{5}", False), ("\\boxed{5}", True)],
        # thinking and \fbox decide "extract" when it is not given; an answer taken as is
        [("<think>3</think> 5", None), ("<think>3</think> 5", False)],
        [("\\fbox{5}", None), ("\\fbox{5}", False)],
        # with and without a final answer
        [("The answer is 5", True), ("The answer is 5", None), ("so 5", True), ("5", None)],
    ],
)
def test_batch_gives_each_item_its_own_answer_and_reason(pool, batch):
    """An item of a batch gets the verdict `check` gives it alone, whatever else is in the
    batch (equal texts decided with different extraction used to share one verdict)."""
    items = [{"pred": pred, "gold": "5", "extract": extract} for pred, extract in batch]
    alone = [check(pred, "5", extract=extract, pool=pool) for pred, extract in batch]
    assert verify_batch(items, pool=pool) == alone
