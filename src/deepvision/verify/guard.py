"""The guard on a symbolic "equal": math-verify's verdict stands only if a cheap, independent
check does not contradict it. Runs inside the symbolic worker (imports sympy).

math-verify lowercases every symbol (`R^2 - r^2` becomes 0, so `R^2 - r^2 = 16` and
`R^2 - r^2 = 32` both reduce to `0 = c` and compare equal) and compares floats after
rounding. The guard reads both answers again with case-sensitive symbols and evaluates them at
a few random points (both sides of an equation or inequality, every item of a set, tuple or
matrix, both ends of an interval). Any disagreement vetoes the "equal"; where nothing can be
evaluated the guard says nothing and math-verify's verdict stands."""

from __future__ import annotations

import random
import re
from typing import Any

_POINTS = 3  # random points per comparison
_REL_TOL = 1e-12
_TINY = 1e-20  # values this small at a random point are taken as zero (cancellation)
_DIGITS = 30


def _sympy():
    import sympy

    return sympy


def reparse(latex: str) -> Any | None:
    """`latex` read again by latex2sympy with case-sensitive symbols; None if it fails."""
    try:
        from latex2sympy2_extended.latex2sympy2 import ConversionConfig, latex2sympy
        from math_verify.grader import should_treat_as_complex

        return latex2sympy(
            latex,
            is_real=not should_treat_as_complex(latex),
            convert_degrees=False,
            normalization_config=None,
            conversion_config=ConversionConfig(lowercase_symbols=False),
        )
    except Exception:
        return None


_LETTER = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z](?![a-zA-Z])")


def letters_in(text: str) -> set[str]:
    """Single-letter symbols in a LaTeX answer (not command names, not words)."""
    return set(_LETTER.findall(re.sub(r"\\(?:text|mathrm|operatorname)\{[^{}]*\}", "", text)))


def _mixed_case(text: str) -> bool:
    """An upper-case letter is a symbol here: only then can a case-sensitive reading differ
    from math-verify's lowercased one (so only then is the answer read again)."""
    return any(c.isupper() for c in letters_in(text))


def case_conflict(gold: str, pred: str) -> bool:
    """The two answers use letters that differ only in case (`R` in one where the other has
    `r`), which math-verify would have read as one symbol."""
    g, p = letters_in(gold), letters_in(pred)
    return g != p and {c.lower() for c in g} == {c.lower() for c in p}


def _unwrap(a: Any, b: Any) -> tuple[Any, Any]:
    """As math-verify does: an equation against a plain value compares its right-hand side
    (`x = 3` vs `3`; `(a, b) = (4, -1)` vs `(4, -1)`)."""
    sp = _sympy()
    if isinstance(a, sp.Eq) and not isinstance(b, sp.Eq):
        return a.rhs, b
    if isinstance(b, sp.Eq) and not isinstance(a, sp.Eq):
        return a, b.rhs
    return a, b


class _Points:
    """Random values for the free symbols of both answers (the same for both sides)."""

    def __init__(self, *exprs: Any) -> None:
        symbols: set[Any] = set()
        for e in exprs:
            symbols |= getattr(e, "free_symbols", set())
        rng = random.Random(20240611)
        ordered = sorted(symbols, key=str)
        self.points = [
            {s: _sympy().Rational(rng.randint(1500, 29000), 10000) for s in ordered}
            for _ in range(_POINTS if ordered else 1)
        ]


def _value(expr: Any, point: dict) -> Any | None:
    """`expr` at `point` to 30 digits (a sympy number, kept as one: 1/2004! is no float);
    None where it is not a finite number."""
    sp = _sympy()
    try:
        v = sp.N(expr.xreplace(point), _DIGITS)
        if not v.is_number or v.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            return None
        return v
    except Exception:
        return None


def _close(a: Any, b: Any, constant: bool) -> bool:
    scale = max(abs(a), abs(b))
    if scale == 0 or abs(a - b) <= _REL_TOL * scale:
        return True
    return not constant and scale < _TINY


def _exact(expr: Any, digits: int = 5000) -> Any | None:
    """The exact value of a constant made of integers with `+`, `*`, `/` and integer powers
    (`\\frac{3^{1008}-1}{3^{1009}}`), when it stays under `digits` digits; None otherwise."""
    sp = _sympy()
    budget = [digits]

    def small(e: Any) -> bool:
        if isinstance(e, sp.Rational):
            return True
        if isinstance(e, sp.Pow):
            base, exp = e.args
            if not (isinstance(exp, sp.Integer) and small(base)):
                return False
            budget[0] -= abs(int(exp)) * max(1, len(str(abs(base))))
            return budget[0] > 0
        return isinstance(e, sp.Add | sp.Mul) and all(small(x) for x in e.args)

    try:
        if not small(expr):
            return None
        value = expr.doit()
        return value if isinstance(value, sp.Rational) else None
    except Exception:
        return None


def _same_values(a: Any, b: Any, points: _Points) -> bool | None:
    """True/False where both evaluate at some point; None where nothing evaluates. Two
    rational constants are compared exactly (30 digits cannot tell `3^{1008}-1` over `3^{1009}`
    from `3^{1008}+1` over it)."""
    constant = not (getattr(a, "free_symbols", None) or getattr(b, "free_symbols", None))
    if constant:
        ea, eb = _exact(a), _exact(b)
        if ea is not None and eb is not None:
            return bool(ea == eb)
    seen = False
    for pt in points.points:
        va, vb = _value(a, pt), _value(b, pt)
        if va is None or vb is None:
            continue
        seen = True
        if not _close(va, vb, constant):
            return False
    return True if seen else None


def _proportional(a: Any, b: Any, points: _Points, positive: bool) -> bool | None:
    """`a = c * b` for one constant c at every point (c > 0 with `positive`): two equations
    `a = 0`, `b = 0` (or inequalities) that say the same thing."""
    sp = _sympy()
    ratio = None
    seen = False
    for pt in points.points:
        va, vb = _value(a, pt), _value(b, pt)
        if va is None or vb is None:
            continue
        seen = True
        if abs(va) < _TINY and abs(vb) < _TINY:
            continue
        if abs(va) < _TINY or abs(vb) < _TINY:
            return False
        r = sp.N(va / vb, _DIGITS)
        if positive and (abs(sp.im(r)) > _REL_TOL * abs(r) or sp.re(r) <= 0):
            return False
        if ratio is not None and abs(r - ratio) > 1e-9 * abs(ratio):
            return False
        ratio = r
    return True if seen else None


def _relation_form(rel: Any) -> tuple[Any, bool] | None:
    """An inequality as (`d`, strict) meaning `d > 0` or `d >= 0`."""
    sp = _sympy()
    if isinstance(rel, sp.StrictGreaterThan | sp.GreaterThan):
        return rel.lhs - rel.rhs, isinstance(rel, sp.StrictGreaterThan)
    if isinstance(rel, sp.StrictLessThan | sp.LessThan):
        return rel.rhs - rel.lhs, isinstance(rel, sp.StrictLessThan)
    return None


def agree(a: Any, b: Any, points: _Points | None = None, depth: int = 0) -> bool | None:
    """Do the two parsed answers take the same values? True, False, or None (cannot tell)."""
    sp = _sympy()
    if depth > 4:
        return None
    a, b = _unwrap(a, b)
    points = points or _Points(a, b)
    if isinstance(a, sp.Eq) and isinstance(b, sp.Eq):
        return _proportional(a.lhs - a.rhs, b.lhs - b.rhs, points, positive=False)
    ra, rb = _relation_form(a), _relation_form(b)
    if ra is not None and rb is not None:
        if ra[1] != rb[1]:
            return False
        return _proportional(ra[0], rb[0], points, positive=True)
    if isinstance(a, sp.MatrixBase) and isinstance(b, sp.MatrixBase):
        if a.shape != b.shape:
            return False
        return _all_agree(list(a), list(b), points, depth, ordered=True)
    if isinstance(a, sp.Interval) and isinstance(b, sp.Interval):
        if (a.left_open, a.right_open) != (b.left_open, b.right_open):
            return False
        return _all_agree([a.start, a.end], [b.start, b.end], points, depth, ordered=True)
    if isinstance(a, sp.FiniteSet) and isinstance(b, sp.FiniteSet):
        return _all_agree(list(a.args), list(b.args), points, depth, ordered=False)
    if isinstance(a, sp.Tuple) and isinstance(b, sp.Tuple):
        return _all_agree(list(a), list(b), points, depth, ordered=True)
    if isinstance(a, sp.Expr) and isinstance(b, sp.Expr):
        return _same_values(a, b, points)
    return None


def _all_agree(a: list, b: list, points: _Points, depth: int, ordered: bool) -> bool | None:
    """Items agree one to one (in order, or matched in any order)."""
    if len(a) != len(b):
        return False
    if ordered:
        verdicts = [agree(x, y, points, depth + 1) for x, y in zip(a, b, strict=True)]
        if any(v is False for v in verdicts):
            return False
        return True if any(v for v in verdicts) else None
    left = list(b)
    unsure = False
    for x in a:
        votes = [agree(x, y, points, depth + 1) for y in left]
        if True in votes:
            left.pop(votes.index(True))
        elif None in votes:
            unsure = True
            left.pop(votes.index(None))
        else:
            return False
    return None if unsure else True


def confirm(gold_latex: str, pred_latex: str, gold: Any, pred: Any) -> tuple[bool, str]:
    """(stands, reason) for math-verify's "equal" on these answers: `gold_latex`/`pred_latex`
    as math-verify extracted them, `gold`/`pred` its parses (used when a case-sensitive
    re-read fails)."""
    g2, p2 = gold, pred
    # Read both again, independently of math-verify's extraction (which may keep only part of
    # an answer: `=\frac{7}{4}+1` read as `7/4`), with case-sensitive symbols.
    r_gold, r_pred = reparse(gold_latex.lstrip("= ")), reparse(pred_latex.lstrip("= "))
    if r_gold is not None and r_pred is not None:
        g2, p2 = r_gold, r_pred
    elif _mixed_case(gold_latex + " " + pred_latex) and case_conflict(gold_latex, pred_latex):
        return False, "symbols differ in case (R is not r)"
    try:
        verdict = agree(g2, p2)
    except Exception:  # an expression sympy cannot take apart: no evidence either way
        verdict = None
    if verdict is False:
        return False, "different values at random points (guard on math-verify's equal)"
    return True, "equivalent (math-verify, checked at random points)"
