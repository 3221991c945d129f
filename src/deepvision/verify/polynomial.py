"""Exact comparison of polynomial answers with rational coefficients, without sympy.

Lines and other polynomial equations (`y = 2x + 3` against `2x - y + 3 = 0`), and polynomial
expressions (`(x-1)(x+1)` against `x^2-1`), are most of what an RL batch sends to math-verify,
at 20-250 ms of sympy each. A small exact parser reads such an answer into a map from
monomials to `Fraction` coefficients; two expressions are equal when their maps are, two
equations when their `lhs - rhs` maps are proportional (a nonzero factor: `x = 2` is `2x = 4`).
That decides accept and reject alike, and agrees with the guard (`guard.py`), which asks the
same of math-verify's "equal".

Only what is read exactly is read: numbers, `\\frac` with a constant denominator (or one square
root), letters (case sensitive: `R` is not `r`) with subscripts, Greek letters and `\\pi` (a
transcendental, so independent of the rest), square roots of rationals (reduced to one root of a
square-free integer per term: `\\sqrt{12}` is `2\\sqrt{3}`), `+ - * / \\cdot \\times`,
brackets and small integer powers. Anything else (functions, `e`, `i`, a letter before a bracket
as in `f(x)`, a division by a variable, an ambiguous `1/2x`; an equation with a root or pi in
it, which an irrational factor may turn into another) leaves the pair to math-verify as before."""

from __future__ import annotations

import math
import re
from fractions import Fraction

Monomial = tuple[tuple[str, int], ...]  # sorted (symbol, power) pairs; () is the constant
Poly = dict[Monomial, Fraction]

MAX_CHARS = 300  # a longer answer is left to math-verify
_MAX_POWER = 12  # exponents above this (or a total degree above it) are left to math-verify
_MAX_TERMS = 64
_MAX_DIGITS = 40  # per number written
_MAX_BITS = 4096  # per coefficient (nested powers would grow it without end)

_GREEK = re.compile(  # Greek letters and \pi: symbols (pi is transcendental: independent)
    r"(?:var)?(?:epsilon|theta|phi|rho|sigma)|alpha|beta|gamma|delta|zeta|eta|kappa|lambda|mu"
    r"|nu|xi|tau|upsilon|chi|psi|omega|pi|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega"
)
_TIMES = frozenset({"cdot", "times"})
_FRAC = frozenset({"frac", "dfrac", "tfrac"})
_ROOT_OR_FRAC = _FRAC | {"sqrt"}
_MAX_RADICAND = 10**8  # square roots of larger integers are left to math-verify
_SPACES = frozenset({",", ";", ":", "!", " ", "quad", "qquad", "left", "right"})
_NOT_VARIABLES = frozenset("ei")  # Euler's number and the imaginary unit: not free symbols
_TOKEN = re.compile(r"\s+|(\d+\.?\d*|\.\d+)|\\([a-zA-Z]+|[,;:! ])|([a-zA-Z])|([-+*/^(){}_=])")


def _not_read(why: str) -> ValueError:
    """The error that says an answer is not read exactly here (math-verify decides it)."""
    return ValueError(f"not a polynomial: {why}")


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: `num`, `cmd`, `sym`, `op`; spacing commands dropped."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _not_read(f"unexpected {text[pos]!r}")
        pos = m.end()
        num, cmd, sym, op = m.groups()
        if num is not None:
            out.append(("num", num))
        elif cmd is not None and cmd not in _SPACES:
            out.append(("cmd", cmd))
        elif sym is not None:
            out.append(("sym", sym))
        elif op is not None:
            out.append(("op", op))
    return out


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m, factor = _times(ma, mb)
            out[m] = out.get(m, Fraction(0)) + ca * cb * factor
    return _tidy(out)


def _times(a: Monomial, b: Monomial) -> tuple[Monomial, int]:
    """The product of two monomials, its square roots reduced (`√2·√6` = 2·√3): (monomial,
    integer factor). At most one square root of a square-free integer is left, so equal
    values have equal monomials (such roots are linearly independent over the rationals)."""
    powers = dict(a)
    for s, k in b:
        powers[s] = powers.get(s, 0) + k
    if sum(k for s, k in powers.items() if s[0] != "√") > _MAX_POWER:
        raise _not_read("degree too high")
    factor, radicand = 1, 1
    for s in [s for s in powers if s[0] == "√"]:
        for _ in range(powers.pop(s)):
            common = math.gcd(radicand, int(s[1:]))
            factor *= common
            radicand = radicand * int(s[1:]) // (common * common)
    if radicand > 1:
        powers[f"√{radicand}"] = 1
    return tuple(sorted(powers.items())), factor


def _square_root(q: Fraction) -> Poly:
    """`\\sqrt{q}` for a rational q >= 0, as s·√r with r square-free (√(a/b) = √(ab)/b)."""
    n = q.numerator * q.denominator
    if q < 0 or n > _MAX_RADICAND:
        raise _not_read("square root not of a small nonnegative rational")
    outside, p = 1, 2
    while p * p <= n:
        while n % (p * p) == 0:
            n //= p * p
            outside *= p
        p += 1
    if n == 0:
        return {}
    coefficient = Fraction(outside, q.denominator)
    return {((f"√{n}", 1),) if n > 1 else (): coefficient}


def _add(a: Poly, b: Poly, sign: int = 1) -> Poly:
    out = dict(a)
    for m, c in b.items():
        out[m] = out.get(m, Fraction(0)) + sign * c
    return _tidy(out)


def _tidy(p: Poly) -> Poly:
    """Zero terms dropped; a polynomial too large to be worth reading exactly is not read."""
    out = {m: c for m, c in p.items() if c}
    if len(out) > _MAX_TERMS:
        raise _not_read("too many terms")
    if any(
        max(c.numerator.bit_length(), c.denominator.bit_length()) > _MAX_BITS for c in out.values()
    ):
        raise _not_read("coefficient too large")
    return out


def _constant(p: Poly) -> Fraction | None:
    """The value of a constant polynomial, else None."""
    if not p:
        return Fraction(0)
    return p[()] if list(p) == [()] else None


class _Parser:
    """Recursive descent over the tokens: expr = term {(+|-) term}; term = power {[*|/]
    power}; power = atom [^ exponent]; atom = number | symbol | (expr) | {expr} | \\frac."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, text: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (text is not None and tok[1] != text):
            raise _not_read(f"expected {text or kind}")
        self.i += 1
        return tok[1]

    def at(self, kind: str, text: str) -> bool:
        return self.peek() == (kind, text)

    def expr(self) -> Poly:
        sign = -1 if self.at("op", "-") else 1
        if self.at("op", "-") or self.at("op", "+"):
            self.i += 1
        out = _add({}, self.term(), sign)
        while self.at("op", "+") or self.at("op", "-"):
            sign = 1 if self.take("op") == "+" else -1
            out = _add(out, self.term(), sign)
        return out

    def _starts_factor(self) -> bool:
        """Implicit multiplication: a symbol, bracket or fraction follows (not a number:
        `2 3` or `x2` is not read)."""
        tok = self.peek()
        if tok is None:
            return False
        kind, text = tok
        return (
            kind == "sym"
            or (kind == "op" and text in "({")
            or (kind == "cmd" and (text in _ROOT_OR_FRAC or bool(_GREEK.fullmatch(text))))
        )

    def term(self) -> Poly:
        out = self.power()
        while True:
            if self.at("op", "*") or (self.peek() or ("", ""))[1] in _TIMES:
                self.i += 1
                out = _mul(out, self.power())
            elif self.at("op", "/"):
                self.i += 1
                out = _divide(out, self.power())
                if self._starts_factor():  # `1/2x`: (1/2)x or 1/(2x)? not read
                    raise _not_read("ambiguous division")
            elif self._starts_factor():
                out = _mul(out, self.power())
            else:
                return out

    def power(self) -> Poly:
        base = self.atom()
        if not self.at("op", "^"):
            return base
        self.i += 1
        k = self.exponent()
        if k < 0:
            c = _constant(base)
            if not c:
                raise _not_read("negative power of a variable")
            return _tidy({(): c**k})
        out: Poly = {(): Fraction(1)}
        for _ in range(k):
            out = _mul(out, base)
        return out

    def exponent(self) -> int:
        """A small integer: one digit (`x^2`), or `{...}` holding an optional sign and digits."""
        if self.at("op", "{"):
            self.i += 1
            sign = -1 if self.at("op", "-") else 1
            if self.at("op", "-"):
                self.i += 1
            digits = self.take("num")
            self.take("op", "}")
        else:
            sign, digits = 1, self.take("num")
            if len(digits) > 1:  # `x^23` is x^2 times 3 in LaTeX: not read
                raise _not_read("exponent of several digits without braces")
        if not digits.isdigit() or int(digits) > _MAX_POWER:
            raise _not_read("exponent not a small integer")
        return sign * int(digits)

    def atom(self) -> Poly:
        tok = self.peek()
        if tok is None:
            raise _not_read("answer ends early")
        kind, text = tok
        self.i += 1
        if kind == "num":
            if len(text) > _MAX_DIGITS:
                raise _not_read("number too long")
            return _tidy({(): Fraction(text)})
        if kind == "sym":
            return {((self._subscript(text), 1),): Fraction(1)}
        if kind == "op" and text in "({":
            inner = self.expr()
            self.take("op", ")" if text == "(" else "}")
            return inner
        if kind == "cmd" and _GREEK.fullmatch(text):
            return {((self._subscript("\\" + text), 1),): Fraction(1)}
        if kind == "cmd" and text == "sqrt":
            c = _constant(self._braced())
            if c is None:
                raise _not_read("square root of a variable")
            return _square_root(c)
        if kind == "cmd" and text in _FRAC:
            num = self._braced()
            return _divide(num, self._braced())
        raise _not_read(f"cannot read {text!r}")

    def _braced(self) -> Poly:
        self.take("op", "{")
        inner = self.expr()
        self.take("op", "}")
        return inner

    def _subscript(self, name: str) -> str:
        """`x_1`, `a_{n}`, `x_{12}`: the subscript is part of the symbol's name."""
        if name in _NOT_VARIABLES:
            raise _not_read(f"{name} is a constant")
        if name[0] != "\\" and self.at("op", "("):
            raise _not_read("a function applied (f(x)), not a product")
        if not self.at("op", "_"):
            return name
        self.i += 1
        if self.at("op", "{"):
            self.i += 1
            parts = []
            while not self.at("op", "}"):
                kind, text = self.peek() or ("", "")
                if kind not in ("num", "sym"):
                    raise _not_read("subscript not a name")
                parts.append(text)
                self.i += 1
            self.i += 1
            return f"{name}_{''.join(parts)}"
        kind, text = self.peek() or ("", "")
        if kind not in ("num", "sym") or len(text) > 1:  # `x_12` is x_1 times 2: not read
            raise _not_read("subscript not one character")
        self.i += 1
        return f"{name}_{text}"


def _divide(a: Poly, b: Poly) -> Poly:
    """`a / b` for a nonzero constant b, or one times a square root (`\\frac{1}{\\sqrt{2}}` is
    `\\frac{\\sqrt{2}}{2}`); anything else is not read."""
    c = _constant(b)
    if c:
        return _tidy({m: v / c for m, v in a.items()})
    if len(b) == 1:
        ((m, v),) = b.items()
        if len(m) == 1 and m[0][0][0] == "√":
            radicand = int(m[0][0][1:])
            return _mul(a, {m: 1 / (v * radicand)})
    raise _not_read("division by a variable or by zero")


def parse(text: str) -> Poly:
    """The polynomial an expression is, exactly; raises ValueError when it is not read."""
    if len(text) > MAX_CHARS:
        raise _not_read("too long")
    parser = _Parser(text)
    if not parser.toks:
        raise _not_read("empty")
    out = parser.expr()
    if parser.peek() is not None:
        raise _not_read(f"cannot read {parser.peek()[1]!r}")  # type: ignore[index]
    return out


def _read(text: str) -> tuple[bool, Poly] | None:
    """(is an equation, polynomial: `lhs - rhs` for an equation), or None when not read."""
    sides = text.split("=")
    if len(sides) > 2:
        return None
    try:
        polys = [parse(s) for s in sides]
    except (ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    if len(polys) == 1:
        return False, polys[0]
    return True, _add(polys[0], polys[1], -1)


def _has_variable(p: Poly) -> bool:
    return any(m for m in p)


def _irrational_constant(p: Poly) -> bool:
    """A square root or pi in it: two such equations may differ by an irrational factor
    (`x = \\sqrt{2}` is `\\sqrt{2}x = 2`), which a rational ratio cannot show."""
    return any(s[0] == "√" or s == "\\pi" for m in p for s, _ in m)


def _proportional(a: Poly, b: Poly) -> bool:
    """`a = c * b` for one nonzero constant c."""
    if a.keys() != b.keys() or not a:
        return False
    m = next(iter(b))
    c = a[m] / b[m]
    return all(a[k] == c * b[k] for k in b)


def same_polynomial(pred: str, gold: str) -> bool | None:
    """True/False when both answers are polynomial expressions (equal exactly) or both
    polynomial equations in some variable (the same up to a nonzero factor); None when either
    is not read exactly, or one is an equation and the other not."""
    p, g = _read(pred), _read(gold)
    if p is None or g is None or p[0] != g[0]:
        return None
    if not p[0]:
        return p[1] == g[1]
    if not (_has_variable(p[1]) and _has_variable(g[1])):
        return None
    if _irrational_constant(p[1]) or _irrational_constant(g[1]):
        return None
    return _proportional(p[1], g[1])
