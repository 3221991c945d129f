"""What kind of value a reference answer is: letters, integer, fraction, interval, text, ...

Used to describe and filter datasets. It does not decide correctness (that is `verify`).
"""

from __future__ import annotations

import re

ANSWER_KINDS = (
    "option_letters",
    "circled_numbers",
    "integer",
    "decimal",
    "fraction",
    "interval_set",
    "expression",
    "text",
)

_CIRCLED = re.compile(r"^[\s,，、;①-⑳]+$")
_LETTERS = re.compile(r"^\(?[A-H]\)?(?:\s*[,，、;和及]?\s*(?:and\s+)?\(?[A-H]\)?)*$")
_INTEGER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)$")
_DECIMAL = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?\.\d+$")
_FRACTION = re.compile(r"^[+-]?(?:\d+\s*/\s*\d+|\\d?frac\{\d+\}\{\d+\}|\\tfrac\{\d+\}\{\d+\})$")
_INTERVAL = re.compile(r"^(?:[\(\[].*,.*[\)\]]|\\\{.*\\\}|\{.*\})$|\\cup|∪")
_LATEX_CMD = re.compile(r"\\[a-zA-Z]+")
_WORD = re.compile(r"[A-Za-z]{3,}|[\u4e00-\u9fff]")
_MATHY = re.compile(r"[\d=<>^+\-*/π√≤≥°%]")


def answer_kind(answer: str, options: list[str] | None = None) -> str:
    """One of ANSWER_KINDS for a reference answer."""
    a = answer.strip().strip("$").strip()
    if not a:
        return "text"
    if _CIRCLED.match(a) and any("①" <= ch <= "⑳" for ch in a):
        return "circled_numbers"
    if _LETTERS.match(a) and (options or len(a.replace(" ", "")) <= 12):
        return "option_letters"
    if _INTEGER.match(a):
        return "integer"
    if _DECIMAL.match(a):
        return "decimal"
    if _FRACTION.match(a):
        return "fraction"
    if _INTERVAL.search(a):
        return "interval_set"
    without_latex = _LATEX_CMD.sub(" ", a)
    if _WORD.search(without_latex) and not _MATHY.search(without_latex):
        return "text"
    if _MATHY.search(a) or _LATEX_CMD.search(a) or len(without_latex.strip()) <= 2:
        return "expression"
    return "text"
