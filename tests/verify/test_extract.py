"""Final-answer extraction: the last box, nested braces, thinking blocks, fallbacks."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from deepvision.verify import extract_answer


def test_last_box_with_nested_braces_wins():
    text = r"First \boxed{1}. Then \boxed{\frac{1}{\sqrt{2}}}."
    assert extract_answer(text) == r"\frac{1}{\sqrt{2}}"


def test_fbox_and_unclosed_last_box_fall_back_to_the_previous_one():
    assert extract_answer(r"\fbox{7}") == "7"
    assert extract_answer(r"so \boxed{3} and then \boxed{4") == "3"


def test_thinking_is_ignored():
    assert extract_answer(r"<think>maybe \boxed{1}</think> final: \boxed{2}") == "2"
    assert extract_answer(r"<think>maybe \boxed{1}</think> no box here") is None


def test_fallbacks_answer_is_and_answer_line_and_their_switch():
    assert extract_answer("Thus the answer is 42.") == "42"
    assert extract_answer("work...\nAnswer: (B)") == "(B)"
    assert extract_answer("Thus the answer is 42.", fallbacks=()) is None


def test_no_answer_and_junk():
    assert extract_answer("") is None
    assert extract_answer(None) is None
    assert extract_answer("\x00\\boxed{5}\x00") == "5"


def test_pathological_texts_are_fast():
    t = time.perf_counter()
    assert extract_answer("\\boxed{" * 200_000) is None
    assert extract_answer("x" * 1_000_000 + r"\boxed{9}") == "9"
    assert extract_answer("{" * 100_000 + "}" * 100_000) is None
    # Linear time takes well under a second; quadratic time on these inputs takes minutes.
    # The bound is loose on purpose so a loaded machine cannot fail it.
    assert time.perf_counter() - t < 15.0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_extraction_never_raises_on_any_text(text):
    out = extract_answer(text)
    assert out is None or isinstance(out, str)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_characters="{}\\"), min_size=1, max_size=50),
    st.text(max_size=300),
)
def test_a_boxed_answer_is_found_after_any_prefix(answer, prefix):
    # A brace-free answer boxed at the end is returned exactly (stripped).
    text = prefix.replace("\\boxed", "").replace("\\fbox", "") + f" \\boxed{{{answer}}}"
    if "</think>" in answer:
        return
    got = extract_answer(text)
    assert got == answer.replace("\x00", "").strip()
