"""The labeled dev set: our verifier against plain math-verify on >= 300 K12 answer pairs."""

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from deepvision.verify import check

DEVSET = Path(__file__).with_name("devset.jsonl")


def _pairs():
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line]


def plain_math_verify(gold: str, pred: str, equivalents=()) -> bool:
    """The reference practice: gold wrapped in \\boxed{}, math-verify, each equivalent tried."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    for g in [gold, *equivalents]:
        try:
            if verify(parse(f"\\boxed{{{g}}}"), parse(f"\\boxed{{{pred}}}")):
                return True
        except Exception:
            pass
    return False


def test_devset_is_large_balanced_and_covers_the_categories():
    pairs = _pairs()
    assert len(pairs) >= 300
    assert len({(p["gold"], p["pred"], json.dumps(p.get("options"))) for p in pairs}) == len(pairs)
    wrong = sum(not p["expected"] for p in pairs)
    assert 0.3 * len(pairs) <= wrong <= 0.7 * len(pairs)
    assert len(Counter(p["category"] for p in pairs)) >= 15


@pytest.fixture(scope="module")
def verdicts(pool):
    pairs = _pairs()
    ours = [
        check(
            p["pred"],
            p["gold"],
            equivalents=p.get("equivalents") or (),
            options=p.get("options"),
            pool=pool,
        ).correct
        for p in pairs
    ]
    base = [plain_math_verify(p["gold"], p["pred"], p.get("equivalents") or ()) for p in pairs]
    return pairs, ours, base


def test_we_beat_plain_math_verify_without_accepting_more_wrong_answers(verdicts):
    pairs, ours, base = verdicts
    expected = [p["expected"] for p in pairs]
    our_right = sum(o == e for o, e in zip(ours, expected, strict=True))
    base_right = sum(b == e for b, e in zip(base, expected, strict=True))
    our_false_accepts = sum(o and not e for o, e in zip(ours, expected, strict=True))
    base_false_accepts = sum(b and not e for b, e in zip(base, expected, strict=True))
    assert our_right > base_right
    assert our_false_accepts <= base_false_accepts
    assert our_right >= 0.95 * len(pairs)


def test_no_degenerate_collapse_is_accepted(verdicts):
    pairs, ours, _ = verdicts
    accepted_wrong = [
        (p["gold"], p["pred"]) for p, o in zip(pairs, ours, strict=True) if o and not p["expected"]
    ]
    assert accepted_wrong == []


# The issue-14 dev set (tests/verify/data/devset.jsonl): >= 600 labelled pairs from public
# sources and the issue's classes, about a third of them close wrong answers (docs/verify.md).
FIDELITY = Path(__file__).with_name("data") / "devset.jsonl"
ISSUE_14_CLASSES = {
    "plus-minus",
    "matrix-vector",
    "units-words",
    "interval-inequality",
    "named-assignment",
    "unicode-html",
    "ordered",
    "solution-set",
    "option-text",
    "symbolic-guard",
}


def _fidelity_pairs():
    return [json.loads(line) for line in FIDELITY.read_text(encoding="utf-8").splitlines()]


def test_fidelity_devset_is_large_labelled_sourced_and_close():
    pairs = _fidelity_pairs()
    assert len(pairs) >= 600
    for p in pairs:
        assert {"gold", "pred", "label", "class", "source"} <= p.keys(), p
        assert isinstance(p["label"], bool) and p["source"] and p["class"]
    assert len({(p["gold"], p["pred"], json.dumps(p.get("options"))) for p in pairs}) == len(pairs)
    wrong = sum(not p["label"] for p in pairs)
    assert 0.25 * len(pairs) <= wrong <= 0.45 * len(pairs)
    assert {p["class"] for p in pairs} >= ISSUE_14_CLASSES
    assert not any("tinyv" in p["source"].lower() for p in pairs)  # held out: used to measure us


@pytest.fixture(scope="module")
def fidelity(pool):
    pairs = _fidelity_pairs()
    ours = [
        check(
            p["pred"],
            p["gold"],
            equivalents=p.get("equivalents") or (),
            options=p.get("options"),
            extract=False,
            pool=pool,
        ).correct
        for p in pairs
    ]
    base = [plain_math_verify(p["gold"], p["pred"], p.get("equivalents") or ()) for p in pairs]
    return pairs, ours, base


def _accepted(pairs, verdicts, label, cls=None):
    """(accepted, total) over the pairs with this label (and of this class)."""
    chosen = [
        v
        for p, v in zip(pairs, verdicts, strict=True)
        if p["label"] is label and cls in (None, p["class"])
    ]
    return sum(chosen), len(chosen)


@pytest.mark.slow
def test_fidelity_goals_against_plain_math_verify(fidelity):
    """Right answers accepted >= 10 points above plain math-verify, and in no class more
    wrong answers accepted than it."""
    pairs, ours, base = fidelity
    (o_hit, n_right), (b_hit, _) = _accepted(pairs, ours, True), _accepted(pairs, base, True)
    assert o_hit / n_right >= b_hit / n_right + 0.10
    for cls in {p["class"] for p in pairs}:
        assert _accepted(pairs, ours, False, cls)[0] <= _accepted(pairs, base, False, cls)[0], cls
