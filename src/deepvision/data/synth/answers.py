"""Exact answer strings for generated problems: fractions, radicals, multiples of pi."""

from __future__ import annotations

import math
from fractions import Fraction


def frac_latex(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


def frac_plain(q: Fraction) -> str:
    return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def terminating_decimal(q: Fraction) -> str | None:
    """The exact decimal of q if it terminates (denominator 2^a 5^b), else None."""
    d = q.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    text = f"{float(q):.10f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == q else None


def frac_forms(q: Fraction) -> tuple[str, list[str]]:
    """(canonical LaTeX answer, equivalent answers) of a rational number."""
    main = frac_latex(q)
    eq = [frac_plain(q)]
    dec = terminating_decimal(q)
    if dec is not None and q.denominator != 1:
        eq.append(dec)
    return main, [e for e in dict.fromkeys(eq) if e != main]


def simplify_sqrt(n: int) -> tuple[int, int]:
    """sqrt(n) = k * sqrt(m) with m square-free."""
    k, m = 1, n
    f = 2
    while f * f <= m:
        while m % (f * f) == 0:
            m //= f * f
            k *= f
        f += 1
    return k, m


def sqrt_forms(n: int) -> tuple[str, list[str]]:
    """(LaTeX answer, equivalents) of sqrt(n), simplified; an integer if n is a square."""
    k, m = simplify_sqrt(n)
    if m == 1:
        return str(k), []
    main = f"\\sqrt{{{m}}}" if k == 1 else f"{k}\\sqrt{{{m}}}"
    unicode = f"√{m}" if k == 1 else f"{k}√{m}"
    eq = [unicode, f"\\sqrt{{{n}}}"] if k != 1 else [unicode]
    return main, eq


def pi_forms(coef: int) -> tuple[str, list[str]]:
    main = f"{coef}\\pi" if coef != 1 else "\\pi"
    return main, [f"{coef}π" if coef != 1 else "π"]


def degrees_forms(value: int) -> tuple[str, list[str]]:
    return str(value), [f"{value}^\\circ", f"{value}°"]


def isqrt_exact(n: int) -> int | None:
    r = math.isqrt(n)
    return r if r * r == n else None
