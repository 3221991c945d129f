"""The partial-figure rule: a proportion over a partly undecided set is never the result."""

import pytest

from deepvision.records import Share


def test_whole_set_gives_the_value():
    s = Share(hits=3, decided=4, total=4)
    assert not s.partial
    assert s.value == 0.75
    assert s.bounds == (0.75, 0.75)
    assert s.text() == "75.00% (4 of 4)"


def test_partial_set_gives_bounds_not_a_value():
    s = Share(hits=267, decided=366, total=600)  # the judge run of issue 13
    assert s.partial and s.value is None
    assert s.bounds == (0.445, 0.835)
    text = s.text()
    assert text.startswith("partial: 44.50%-83.50%")
    assert "234 of 600 undecided" in text and "72.95% of the 366 decided" in text
    j = s.to_json()
    assert j["value"] is None and j["partial"] is True and j["lower_bound"] == 0.445


def test_nothing_decided_and_empty_set():
    assert Share(0, 0, 5).text() == "partial: 0.00%-100.00% (5 of 5 undecided)"
    assert Share(0, 0, 0).value is None and Share(0, 0, 0).bounds is None


@pytest.mark.parametrize("args", [(2, 1, 3), (1, 4, 3), (-1, 0, 0)])
def test_inconsistent_counts_are_refused(args):
    with pytest.raises(ValueError):
        Share(*args)
