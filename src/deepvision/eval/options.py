"""Multiple-choice options as benchmarks ship them: a list, a stringified list, or one lettered
string ("A. 3; B. 4", "A:3\\nB:4", "(A) 3 (B) 4"), parsed into the option texts.

Lettered strings come with quirks that must not cost an item its options (WeMath testmini has
all of these): a full-width point (`B．②`), a missing separator (`A. 45° B. 60° ;C. 120°`), a
letter skipped (`A. .. B. .. C. No.; F. No correct answer`), and stray separators inside an
option's text (`north to ;C.  ;B. ...`). A marker is a letter and a point, colon or closing
bracket at the start of the string or after a space or separator; it is *strong* when a
separator (`;`, a new line) or the start of the string precedes it. The options are the first
of these readings that uses every strong marker with text after it:

1. strong markers only, letters A, B, C, ... in order;
2. any marker, letters A, B, C, ... in order (the separator was forgotten);
3. strong markers only, letters increasing with gaps (a skipped letter): the options are then
   lettered again in order, and the caller learns the old letter of each (`Lettered.letters`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

_MARK = re.compile(r"(?:^|(?<=[\s;；]))\(?([A-J])\s?[.．):：]")
_SEPARATORS = " \t\r\n;；,，"
_STRAY = re.compile(r"[;；](?=[A-Z][.．])")  # `point ;O.`, `∠AB;E.` inside an option's text


@dataclass(frozen=True)
class Lettered:
    """The options of a lettered string; `letters` are the letters the string gave them
    (A, B, C, ... unless it skipped one)."""

    texts: list[str]
    letters: list[str]

    @property
    def relettered(self) -> bool:
        return self.letters != [chr(65 + i) for i in range(len(self.letters))]


@dataclass(frozen=True)
class _Mark:
    letter: str
    start: int
    end: int
    strong: bool


def _marks(s: str) -> list[_Mark]:
    out = []
    for m in _MARK.finditer(s):
        before = s[: m.start()].rstrip(" \t")
        strong = not before or before.endswith((";", "；", "\n"))
        out.append(_Mark(m.group(1), m.start(), m.end(), strong))
    return out


def _has_text(s: str, mark: _Mark, following: _Mark | None) -> bool:
    end = following.start if following else len(s)
    return bool(s[mark.end : end].strip(_SEPARATORS))


def _chain(s: str, pool: list[_Mark], gaps: bool) -> list[_Mark] | None:
    """The markers read as options from `pool`, or None when a strong marker with text after
    it is left out (the reading does not explain the string)."""
    chain: list[_Mark] = []
    for i, mark in enumerate(pool):
        filled = _has_text(s, mark, pool[i + 1] if i + 1 < len(pool) else None)
        last = chain[-1].letter if chain else None
        if last is None:
            fits = mark.letter == "A"
        elif gaps:
            fits = mark.letter > last
        else:
            fits = ord(mark.letter) == ord(last) + 1
        if fits and filled:
            chain.append(mark)
        elif mark.strong and filled and chain:
            return None
    return chain if len(chain) > 1 else None


def _text(s: str, start: int, end: int) -> str:
    return _STRAY.sub("", s[start:end].strip(_SEPARATORS))


def split_lettered(s: str) -> Lettered | None:
    """The options of one lettered string, or None when it is not one (module docstring)."""
    marks = _marks(s)
    strong = [m for m in marks if m.strong]
    for pool, gaps in ((strong, False), (marks, False), (strong, True)):
        chain = _chain(s, pool, gaps)
        if chain is None:
            continue
        ends = [m.start for m in chain[1:]] + [len(s)]
        texts = [_text(s, m.end, end) for m, end in zip(chain, ends, strict=True)]
        return Lettered(texts, [m.letter for m in chain])
    return None


def _texts(values: list[Any]) -> list[str] | None:
    """Option texts of a list; a list holding one list is that list (MMMU-Pro ships
    `[['A', 'B', 'Not enough information']]`)."""
    if len(values) == 1 and isinstance(values[0], list | tuple):
        values = list(values[0])
    return [str(v) for v in values] or None


def parse_options(raw: Any) -> list[str] | None:
    """Options as a list of texts from a list, a stringified list, or one lettered string
    whose letters run A, B, C, ...; None when there are none (or the letters skip one: use
    `split_lettered` to re-letter them)."""
    if raw is None:
        return None
    if isinstance(raw, list | tuple):
        return _texts(list(raw))
    if not isinstance(raw, str) or not raw.strip():
        return None
    s = raw.strip()
    if s.startswith("["):
        try:
            val = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            val = None
        if isinstance(val, list):
            return _texts(val)
    found = split_lettered(s)
    if found is None or found.relettered:
        return None
    return found.texts
