"""The Verdict codec: undecided verdicts round-trip, and older verdict files read as before."""

import pytest

from deepvision.records import Verdict


def test_an_undecided_verdict_round_trips_and_says_so():
    v = Verdict(False, "x^2", Verdict.UNDECIDED, "no symbolic worker free within 3 s", "p1", 0)
    line = v.to_json()
    assert line["method"] == "undecided" and line["correct"] is False
    back = Verdict.from_json(line)
    assert back == v and back.undecided


def test_a_verdict_line_from_an_older_file_reads_as_decided():
    old = {
        "problem_id": "p1",
        "sample": 2,
        "correct": False,
        "extracted": "3",
        "method": "symbolic",
        "reason": "timed out after 3 s; timed out counts as wrong",
    }
    v = Verdict.from_json(old)
    assert (v.correct, v.undecided, v.method, v.sample) == (False, False, "symbolic", 2)
    assert v.to_json() == old


def test_a_line_that_is_both_correct_and_undecided_is_not_a_verdict():
    with pytest.raises(ValueError, match="both correct and undecided"):
        Verdict.from_json({"correct": True, "extracted": "1", "method": "undecided"})
