"""Answer comparison by rules: one small named comparator per kind of answer, tried in a fixed
order (`COMPARATORS`, documented in docs/verify.md); the first that applies decides, and
symbolic comparison (math-verify in a worker, with its guard) is the last resort.

A comparator takes the cleaned answer and reference and returns (equal, method, reason), or
None when it does not apply. Each one accepts only what it can establish (same value, same
items in the order that matters, same interval ends); anything else goes on down the list, so
a rule can turn an answer right only when it is sure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from deepvision.verify.normalize import (
    LETTERS,
    assignment,
    balanced,
    circled_of,
    clean,
    inequality_to_interval,
    is_wordy,
    joined_by_or,
    letters_of,
    numbers_equal,
    split_items,
    split_unit,
    strip_assignment,
    strip_words,
    text_key,
    to_number,
)
from deepvision.verify.polynomial import same_polynomial

Result = tuple[bool, str, str]  # (equal, method, reason)
Options = Sequence[str] | Mapping[str, str] | None
MAX_ANSWER_CHARS = 2000  # a longer answer is compared as text only
_MAX_DEPTH = 3  # structures (lists, matrices, intervals) nested deeper are not taken apart


class SymbolicBudget(Protocol):
    """What the comparators need from a check's symbolic budget (`check._Ctx`)."""

    not_run: list[str]

    def symbolic(self, gold: str, pred: str) -> Result: ...


@dataclass(frozen=True)
class Compare:
    """What the comparators of one answer share: the symbolic fallback (None: rules only) and
    how deep inside a structure the comparison is."""

    budget: SymbolicBudget | None
    depth: int = 0

    def inner(self) -> Compare:
        return Compare(self.budget, self.depth + 1)


def option_map(options: Options) -> dict[str, str]:
    """Options as letter -> text (a list is lettered A, B, C, ... in order)."""
    if not options:
        return {}
    if isinstance(options, Mapping):
        return {str(k).strip().upper()[:1]: str(v) for k, v in options.items()}
    return {LETTERS[i]: str(v) for i, v in enumerate(options) if i < len(LETTERS)}


# ---- choices ---------------------------------------------------------------------------


def _options_named(text: str, opts: Mapping[str, str]) -> frozenset[str]:
    """The options whose text `text` is (`BCGH`, `Option C in the image`): read as option
    text before anything is read as letters."""
    key = text_key(text)
    if not key:
        return frozenset()
    return frozenset(
        k
        for k, t in opts.items()
        if clean(t) == text or (is_wordy(t) and text_key(t) == key and _digits(t) == _digits(text))
    )


def _digits(s: str) -> list[str]:
    """The numbers written in a text, signs included (`2-3 days` is not `23 days`)."""
    return re.findall(r"-?\d+(?:\.\d+)?", s)


def _gold_letters(g: str, opts: Mapping[str, str]) -> frozenset[str] | None:
    """The reference's option letters: its letters, or the option whose text it is."""
    letters = letters_of(g, strict=True)
    if opts and (letters is None or not letters <= opts.keys()):
        named = _options_named(g, opts)
        if len(named) == 1:
            return named
    return letters


def _reads_as_letters(p: str, letters: frozenset[str], opts: Mapping[str, str]) -> bool:
    """The answer names option letters (`B`, `(B)`, `B. 12`, `Option B`, `AC`), not a value
    that happens to start with a capital letter."""
    return (
        len(letters) > 1
        or not opts
        or p.strip("().: ").upper() in opts
        or len(p) <= 3
        or p[:6].lower() in ("option", "choice")
        or bool(re.match(r"^\(?[A-J]\)?[.:)]", p))
    )


def _letter_string(s: str) -> str | None:
    """`BDAC` from `BDAC`, `B, D, A, C` or `B→D→A→C`; None unless only option letters."""
    core = re.sub(r"[\s,;>\-→]|\\to|\\rightarrow", "", s)
    if len(core) < 2 or len(core) > len(LETTERS) or not all(c in LETTERS for c in core):
        return None
    return core


def _letter_order(s: str) -> str | None:
    """Three or more letters written out of alphabetical order (`BDAC`) are an ordering (of
    steps, of figures), not a set of options; None otherwise."""
    core = _letter_string(s)
    return core if core is not None and len(core) > 2 and list(core) != sorted(core) else None


def choice(p: str, g: str, opts: Mapping[str, str], cmp: Compare) -> Result | None:
    """A multiple-choice reference: the option whose text the answer is, else the answer's
    letters as a set, else the option whose value the answer equals."""
    gl = _gold_letters(g, opts)
    if gl is None or not (opts or len(g.replace(" ", "")) <= 4):
        return None
    want = "".join(sorted(gl))
    order = _letter_order(g)
    if order is not None and not opts:
        got = _letter_string(p)
        return got == order, "choice", f"letters in the order {got}, reference {order}"
    if opts:
        bare = p.strip(" ().:").upper()
        if len(bare) == 1 and bare in opts:  # one bare letter is a choice, even when some
            ok = {bare} == set(gl)  # option's text is itself a letter (MMMU-Pro)
            return ok, "choice", f"chose {bare}, reference {want}"
        named = _options_named(p, opts)
        if named:
            ok = named == gl
            return ok, "choice", f"answer is the text of option {''.join(sorted(named))}"
    pl = letters_of(p)
    if pl is not None and _reads_as_letters(p, pl, opts):
        return pl == gl, "choice", f"chose {''.join(sorted(pl))}, reference {want}"
    if opts:  # the option's value instead of its letter
        budget = cmp.budget
        not_run = len(budget.not_run) if budget else 0
        chosen = {k for k, text in opts.items() if equal(p, clean(text), cmp)[0]}
        if budget and len(budget.not_run) > not_run:  # an option left uncompared
            return False, "choice", budget.not_run[-1]
        if chosen:
            ok = chosen == set(gl)
            return ok, "choice", f"answer matches option {''.join(sorted(chosen))}"
    return False, "choice", "no option letter found in the answer"


def circled(p: str, g: str) -> Result | None:
    """Circled statement numbers (`①③`) as a set."""
    gc = circled_of(g)
    if gc is None:
        return None
    ok = circled_of(p) == gc
    return ok, "choice", "same statements" if ok else "different statements"


# ---- the comparators, in order ---------------------------------------------------------


def same_text(p: str, g: str, cmp: Compare) -> Result | None:
    """The same text after cleaning (spaces aside)."""
    if p == g or p.replace(" ", "") == g.replace(" ", ""):
        return True, "exact", "same answer"
    return None


_PM = re.compile(r"\\pm|\\mp")


def _pm_values(s: str) -> list[str] | None:
    """`2\\pm\\sqrt{3}` -> [`2+\\sqrt{3}`, `2-\\sqrt{3}`]; `\\pm 1, \\pm 3` -> four values;
    None when an item has more than one sign to choose."""
    body = _set_body(s) or s
    values = []
    for item in split_items(body):
        item = strip_assignment(item)
        signs = len(_PM.findall(item))
        if signs > 1:
            return None
        if signs == 0:
            values.append(item)
            continue
        for sign in "+-":
            value = _PM.sub(sign, item).strip()
            values.append(value[1:].strip() if value.startswith("+") else value)
    return values


def plus_minus(p: str, g: str, cmp: Compare) -> Result | None:
    """`a \\pm b` against the two values listed, in any order, with or without braces (the
    values of a `\\pm` are a set of solutions)."""
    if cmp.depth >= _MAX_DEPTH or not (_PM.search(p) or _PM.search(g)):
        return None
    gv, pv = _pm_values(g), _pm_values(p)
    if gv is None or pv is None:
        return None
    return _unordered(pv, gv, cmp, "plus_minus")


_DOMAIN_REMARK = re.compile(
    r"^(?P<main>.*=.*?)\s*(?:[,;]\s*|\s)\(?\s*(?P<remark>[a-z]\s*(?:\\ne|\\ge|\\le|<|>|\\in)"
    r"[^=()]*?|[a-z]\s*\\in\s*\\mathbb\s*\{?R\}?)\s*\)?$"
)
_TUPLE_NAMED = re.compile(r"^\(\s*([a-zA-Z][^()=]*)\)\s*=\s*(\(.*\)|[^()]*,.*)$")


def _domain_remark(s: str) -> tuple[str, str | None]:
    """`g(x) = 2x (x \\ne 0)` -> (`g(x) = 2x`, `x \\ne 0`): a condition on the argument of
    the function defined (`g(x)`, or `y = ...` in x), nothing else."""
    m = _DOMAIN_REMARK.match(s)
    if not m:
        return s, None
    lhs, _, rhs = m.group("main").partition("=")
    var = m.group("remark").lstrip()[0]
    f = re.fullmatch(r"\s*[a-zA-Z]\(([a-z])\)\s*", lhs)
    plain = re.fullmatch(r"\s*([a-zA-Z])\s*", lhs)
    if (f and f.group(1) == var) or (plain and plain.group(1) != var and var in rhs):
        return m.group("main").strip(), re.sub(r"\s", "", m.group("remark"))
    return s, None


def _tuple_named(m: re.Match[str]) -> str:
    """`(a, b) = (4, -1)` -> `a=4, b=-1` (names and values paired), else its right side."""
    names, values = split_items(m.group(1)), _structure(m.group(2).strip())[1]
    if len(names) == len(values) > 1:
        return ", ".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
    return m.group(2).strip()


def _named_items(s: str) -> list[tuple[str | None, str]] | None:
    """`a = 4, b = -1` -> [(`a`, `4`), (`b`, `-1`)]; `a = 4, -8` -> [(`a`, `4`), (None, `-8`)];
    None unless there are several items and the first is named."""
    items = split_items(s)
    if len(items) < 2:
        return None
    named = [assignment(it) for it in items]
    if named[0] is None:
        return None
    return [(n[0], n[1]) if n else (None, it) for n, it in zip(named, items, strict=True)]


def _as_values(named: list[tuple[str | None, str]], s: str) -> str:
    """The values of named items as a list; a set when they are alternatives or solutions of
    one unknown (`x = 1, x = 2`, `x_1 = 1, x_2 = 2`, `a = 4, -8`; not `a_3 = 2, a_{37} = 19`)."""
    names = [n for n, _ in named if n]
    bases = {re.sub(r"_.*", "", n) for n in names}
    values = ", ".join(v for _, v in named)
    one_unknown = len(bases) == 1 and (len(set(names)) < len(names) or len(names) < len(named))
    indices = [re.sub(r"^[^_]*_\{?|\}$", "", n) for n in names]
    indexed = len(bases) == 1 and indices == [str(k) for k in range(1, len(names) + 1)]
    if one_unknown or indexed or joined_by_or(s):
        return f"\\{{{values}\\}}"
    return values


def named(p: str, g: str, cmp: Compare) -> Result | None:
    """Names dropped: `(a, b) = (4, -1)` vs `4, -1`, `x = 3` vs `3`, `a = 4, b = -1` vs
    `4, -1`, `x = 1, y = 2` vs `y = 2, x = 1` (by name), `g(x) = 2x` with or without a remark
    on its domain."""
    (pm, pr), (gm, gr) = _domain_remark(p), _domain_remark(g)
    if pr is not None or gr is not None:
        if pr is not None and gr is not None and pr != gr:
            return False, "named", "different domain"
        return equal(pm, gm, cmp)
    pt, gt = _TUPLE_NAMED.match(p), _TUPLE_NAMED.match(g)
    if pt or gt:
        return equal(_tuple_named(pt) if pt else p, _tuple_named(gt) if gt else g, cmp)
    pn, gn = _named_items(p), _named_items(g)
    if pn and gn and all(n for n, _ in pn + gn):
        pd, gd = dict(pn), dict(gn)
        if len(pd) == len(pn) and len(gd) == len(gn):  # distinct names: match by name
            if pd.keys() != gd.keys():
                return False, "named", "different unknowns"
            ok = all(equal(pd[k], gd[k], cmp.inner())[0] for k in gd)
            return ok, "named", "same values by name" if ok else "different values"
    if pn or gn:
        return equal(_as_values(pn, p) if pn else p, _as_values(gn, g) if gn else g, cmp)
    if "=" not in p or "=" not in g:
        ps, gs = strip_assignment(p), strip_assignment(g)
        if (ps, gs) != (p, g):
            ok, method, reason = equal(ps, gs, cmp)
            return ok, method, f"{reason} (name dropped)" if ok else reason
    return None


def numbers(p: str, g: str, cmp: Compare) -> Result | None:
    """Plain numbers (integers, decimals, fractions, scientific notation, percent, degrees),
    compared exactly; units converted when both have one, else taken as implied."""
    pn, gn = to_number(p), to_number(g)
    if pn is None or gn is None:
        return None
    if numbers_equal(pn, gn):
        return True, "number", "same value"
    return False, "number", f"value {p} differs from {g}"


def _ratio(s: str) -> tuple[Fraction, ...] | None:
    parts = s.split(":")
    if len(parts) < 2:
        return None
    nums = [to_number(x) for x in parts]
    if any(n is None or n.value == 0 for n in nums):
        return None
    first = nums[0].value  # type: ignore[union-attr]
    return tuple(n.value / first for n in nums)  # type: ignore[union-attr]


def ratios(p: str, g: str, cmp: Compare) -> Result | None:
    """`3:4` = `6:8` = `3/4` (order matters: `4:3` is another ratio)."""
    pr, gr = _ratio(p), _ratio(g)
    pn, gn = to_number(p), to_number(g)
    if gr is not None and (pr is not None or pn is not None):
        if pr is not None:
            ok = len(pr) == len(gr) and pr == gr
        else:
            ok = len(gr) == 2 and pn is not None and pn.value == 1 / gr[1]
        return ok, "ratio", "same ratio" if ok else "different ratio"
    if pr is not None and gn is not None:
        return len(pr) == 2 and 1 / pr[1] == gn.value, "ratio", "ratio vs value"
    return None


Interval = tuple[bool, str, str, bool]  # (closed at the low end, low, high, closed at the high end)
_INTERVAL = re.compile(r"([(\[])\s*([^,]+?)\s*,\s*([^,]+?)\s*([)\]])")
_UNION = re.compile(r"\\cup|(?<![a-zA-Z])U(?![a-zA-Z])|(?<![a-zA-Z])or(?![a-zA-Z])|或")
_MEMBER = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*\\in\s*")
_SET_BUILDER = re.compile(r"^\\\{\s*[a-zA-Z]\s*(?:\||\\mid|:)\s*(.+)\\\}$")
_INFINITY = re.compile(r"^([+-]?)\\infty$")
_REALS = re.compile(r"\\mathbb\s*\{?R\}?|R")  # all real numbers


def _split_top(s: str, sep: re.Pattern[str]) -> list[str]:
    """`s` split at matches of `sep` outside brackets (an interval's `[`/`)` count as a pair)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = sep.match(s, i)
            if m and m.end() > i:
                parts.append(s[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(s[start:])
    return [x.strip() for x in parts]


def interval_set(s: str) -> list[Interval] | None:
    """The intervals an answer describes: `[1, 4]`, `t \\in [1,4]`, `2 \\le m \\le 5`,
    `k \\ge 3`, `x<1 or x>3`, `(-\\infty, 1) \\cup (3, +\\infty)`, `\\{x | x > 2\\}`."""
    if len(s) > 400:
        return None
    t = _MEMBER.sub("", s.replace("+\\infty", "\\infty").strip())
    m = _SET_BUILDER.match(t)
    if m:
        t = m.group(1).strip()
    found = []
    for part in _split_top(t, _UNION):
        if _REALS.fullmatch(part):
            found.append((False, "-\\infty", "\\infty", False))
            continue
        text = inequality_to_interval(part) or part
        m = _INTERVAL.fullmatch(text.replace(" ", "") if len(text) < 400 else text)
        if not m:
            return None
        found.append((m.group(1) == "[", m.group(2), m.group(3), m.group(4) == "]"))
    return found or None


def _interval_like(s: str) -> bool:
    """Written as an interval or inequality, not a bare `(a, b)` (which is also a point)."""
    return bool(re.search(r"[\[\]<>]|\\infty|\\cup|\\in\b|\\le|\\ge|\\mathbb", s))


def _bounds_equal(a: str, b: str, cmp: Compare) -> bool:
    ia, ib = _INFINITY.match(a), _INFINITY.match(b)
    if ia or ib:
        return bool(ia and ib and (ia.group(1) == "-") == (ib.group(1) == "-"))
    return equal(a, b, cmp)[0]


def intervals(p: str, g: str, cmp: Compare) -> Result | None:
    """Intervals, inequalities, memberships and unions of them, in any order of the parts;
    open and closed ends must agree (`x < 2` is not `x \\le 2`)."""
    if cmp.depth >= _MAX_DEPTH or not (_interval_like(p) or _interval_like(g)):
        return None
    gi, pi = interval_set(g), interval_set(p)
    if gi is not None and pi is None and to_number(p) is not None:
        return False, "interval", "a single value, the reference is an interval"
    if gi is None or pi is None:
        return None
    if len(gi) != len(pi):
        return False, "interval", f"{len(pi)} interval(s), reference has {len(gi)}"
    left = list(gi)
    inner = cmp.inner()
    for lo_closed, lo, hi, hi_closed in pi:
        hit = next(
            (
                k
                for k, (glc, glo, ghi, ghc) in enumerate(left)
                if (glc, ghc) == (lo_closed, hi_closed)
                and _bounds_equal(lo, glo, inner)
                and _bounds_equal(hi, ghi, inner)
            ),
            None,
        )
        if hit is None:
            return False, "interval", "different interval (ends or open/closed)"
        left.pop(hit)
    return True, "interval", "same interval"


_MATRIX = re.compile(
    r"^[(\[]?\s*\\begin\{(pmatrix|bmatrix|Bmatrix|matrix|smallmatrix|array)\}(?:\{[^{}]*\})?"
    r"(.*)\\end\{\1\}\s*[)\]]?$",
    re.DOTALL,
)


def _grid(s: str) -> list[list[str]] | None:
    """The cells of a `pmatrix`/`bmatrix`/`array`, row by row; None if not one matrix."""
    m = _MATRIX.match(s.strip())
    if not m or "\\begin" in m.group(2):
        return None
    rows = re.split(r"\\\\", m.group(2))
    while rows and not rows[-1].strip():
        rows.pop()
    grid = [[c.strip() for c in r.split("&")] for r in rows]
    if not grid or len({len(r) for r in grid}) != 1:
        return None
    return grid


def _vector(s: str, grid: list[list[str]] | None) -> list[str] | None:
    """The entries of a one-row or one-column matrix, or of a tuple `(a, b, c)`."""
    if grid is not None:
        if len(grid) == 1 or len(grid[0]) == 1:
            return [c for row in grid for c in row]
        return None
    kind, items = _structure(s)
    return items if kind == "tuple" else None


def matrices(p: str, g: str, cmp: Compare) -> Result | None:
    """Matrices and vectors entry by entry (`3/4`, `\\frac{3}{4}` and `0.75` alike); a
    column or row vector is the tuple of its entries."""
    gg, pg = _grid(g), _grid(p)
    if (gg is None and pg is None) or cmp.depth >= _MAX_DEPTH:
        return None
    if gg is not None and pg is not None and len(gg) == len(pg) and len(gg[0]) == len(pg[0]):
        cells_g, cells_p = [c for r in gg for c in r], [c for r in pg for c in r]
    else:
        cells_g, cells_p = _vector(g, gg), _vector(p, pg)  # type: ignore[assignment]
        if cells_g is None or cells_p is None or len(cells_g) != len(cells_p):
            if gg is not None and pg is not None:
                return False, "matrix", "different shape"
            return None
    return _ordered(cells_p, cells_g, cmp, "matrix")


def _set_body(s: str) -> str | None:
    """The inside of `\\{...\\}` (or of `{a, b}`, as plain text writes a set) when the
    braces enclose the whole answer."""
    if s.startswith("\\{") and s.endswith("\\}") and balanced(s[2:-2]):
        return s[2:-2]
    if s.startswith("{") and s.endswith("}") and balanced(s[1:-1]) and "," in s:
        return s[1:-1]
    return None


_PERMUTATION = re.compile(r"\d+(?:\s*(?:-|→|\\to|\\rightarrow|>)\s*\d+){2,}")


def _structure(s: str) -> tuple[str, list[str]]:
    """(kind, items): `set` for `\\{...\\}` and alternatives (`1 or 2`); `tuple` for `(a, b)`
    and `[a, b, c]`; `sequence` for a permutation `5-2-3-1-4`; `list` for a bare list; `one`
    for a single answer."""
    body = _set_body(s)
    if body is not None:
        return "set", split_items(body)
    if len(s) >= 2 and s[0] + s[-1] in ("()", "[]") and balanced(s[1:-1]):
        items = split_items(s[1:-1])
        if len(items) > 1:
            return "tuple", items
    if _PERMUTATION.fullmatch(s):
        return "sequence", re.findall(r"\d+", s)
    items = split_items(s)
    if len(items) > 1:
        return ("set" if joined_by_or(s) else "list"), items
    return "one", [s]


def _is_tuple(s: str) -> bool:
    return _structure(s)[0] == "tuple"


def _ordered(pi: list[str], gi: list[str], cmp: Compare, method: str) -> Result:
    inner = cmp.inner()
    for k, (a, b) in enumerate(zip(pi, gi, strict=True)):
        if not equal(a, b, inner)[0]:
            return False, method, f"item {k + 1} ({a!r}) differs from the reference's ({b!r})"
    return True, method, "same items in the same order"


def _other_count(pi: list[str], gi: list[str], method: str) -> Result | None:
    """A list with more or fewer items than the reference's is wrong (a partial answer too)."""
    if len(pi) == len(gi):
        return None
    what = "partial answer" if len(pi) < len(gi) else "extra items"
    return False, method, f"{what}: {len(pi)} item(s), reference has {len(gi)}"


def _unordered(pi: list[str], gi: list[str], cmp: Compare, method: str) -> Result:
    miscount = _other_count(pi, gi, method)
    if miscount:
        return miscount
    left = list(gi)
    inner = cmp.inner()
    for item in pi:
        hit = next((k for k, gg in enumerate(left) if equal(item, gg, inner)[0]), None)
        if hit is None:
            return False, method, f"item {item!r} is not in the reference"
        left.pop(hit)
    return True, method, "same items"


def sequences(p: str, g: str, cmp: Compare) -> Result | None:
    """Lists. Ordered (item by item) unless the reference is a set of solutions: `\\{...\\}`,
    alternatives (`x=1 or x=2`), a list of points; a sequence, tuple, permutation or bare
    list keeps its order. A partial list is wrong."""
    if cmp.depth >= _MAX_DEPTH:
        return None
    gk, gi = _structure(g)
    pi = _structure(p)[1]
    if len(gi) <= 1 and len(pi) <= 1:
        return None
    if gk == "set" or (gk == "list" and all(_is_tuple(x) for x in gi)):
        return _unordered(pi, gi, cmp, "list")
    return _other_count(pi, gi, "list") or _ordered(pi, gi, cmp, "list")


def units_dropped(p: str, g: str, cmp: Compare) -> Result | None:
    """A unit after an expression (`16\\pi cm^2`, `8\\sqrt{3}{squareinches}`): another unit is
    another answer; a unit on one side only is taken as implied."""
    pb, pu = split_unit(p, numeric_body=False)
    gb, gu = split_unit(g, numeric_body=False)
    if pu is None and gu is None:
        return None
    if pu is not None and gu is not None and (pu.dimension, pu.factor) != (gu.dimension, gu.factor):
        return False, "unit", f"unit {pu.name} differs from {gu.name}"
    return equal(pb, gb, cmp)


def words(p: str, g: str, cmp: Compare) -> Result | None:
    """Text answers (words, Chinese): case, spaces and punctuation aside; never algebra."""
    if not (is_wordy(g) or is_wordy(p)):
        return None
    ok = text_key(p) == text_key(g) and _digits(p) == _digits(g)
    return ok, "text", "same text" if ok else "different text"


def degrees_as_radians(p: str, g: str, cmp: Compare) -> Result | None:
    """`60°` against `\\frac{\\pi}{3}` (either way): the degrees rewritten in radians."""
    pn, gn = to_number(p), to_number(g)
    if gn is not None and gn.degree and "\\pi" in p:
        return symbolic(p, f"\\frac{{{gn.value}\\pi}}{{180}}", cmp)
    if pn is not None and pn.degree and "\\pi" in g:
        return symbolic(f"\\frac{{{pn.value}\\pi}}{{180}}", g, cmp)
    return None


def polynomials(p: str, g: str, cmp: Compare) -> Result | None:
    """Polynomials with rational coefficients, read exactly (`polynomial.py`): expressions
    equal term by term (`(x-1)(x+1)` = `x^2-1`), equations the same up to a nonzero factor
    (`y = 2x + 3` = `2x - y + 3 = 0`; `R^2-r^2=16` is not `R^2-r^2=32`). Decides without
    sympy whenever both answers are read."""
    found = same_polynomial(p, g)
    if found is None:
        return None
    if found:
        return True, "polynomial", "same polynomial (exact)"
    return False, "polynomial", "different polynomial (exact)"


def symbolic(p: str, g: str, cmp: Compare) -> Result:
    """math-verify in a worker process, its "equal" confirmed by the guard (symbolic.py)."""
    if cmp.budget is None:
        return False, "rule", "no rule decides and symbolic comparison is off"
    return cmp.budget.symbolic(g, p)


COMPARATORS: tuple[Callable[[str, str, Compare], Result | None], ...] = (
    same_text,
    plus_minus,
    named,
    numbers,
    ratios,
    intervals,
    matrices,
    sequences,
    units_dropped,
    words,
    degrees_as_radians,
    polynomials,
)


def equal(p: str, g: str, cmp: Compare) -> Result:
    """(equal, method, reason) for two cleaned answers: the first comparator that applies
    decides, else symbolic comparison."""
    p, g = strip_words(p), strip_words(g)
    for comparator in COMPARATORS:
        found = comparator(p, g, cmp)
        if found is not None:
            return found
    return symbolic(p, g, cmp)


def compare(pred: str, gold: str, options: Options, cmp: Compare) -> Result:
    """(correct, method, reason) for an extracted answer against one reference: choices and
    circled statements first, then `equal`."""
    huge = max(len(pred), len(gold)) > 10 * MAX_ANSWER_CHARS  # not worth cleaning
    p, g = (pred.strip(), gold.strip()) if huge else (clean(pred), clean(gold))
    if not p:
        return False, "empty", "no answer"
    if len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
        ok = p == g
        return ok, "exact", "same answer" if ok else "answer or reference too long to compare"
    return choice(p, g, option_map(options), cmp) or circled(p, g) or equal(p, g, cmp)
