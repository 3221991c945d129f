"""Answer normalization: LaTeX wrappers, units, degrees, percent, full-width forms, numbers,
option letters, circled numbers, lists and intervals. Pure string work; never raises."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
LETTERS = "ABCDEFGHIJ"

_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mathit|operatorname|mbox|rm)\s*\{([^{}]*)\}"
)
_SPACING = re.compile(r"\\[,;:!> ]|\\q?quad|\\displaystyle|\\left|\\right|\\big|\\Big|~")
_DEGREE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\^\s*\{\\text\{o\}\}|度|(?<=\d)\s*degrees?\b"
)
_UNITS = (
    r"km|cm|mm|dm|m|kg|mg|g|ml|mL|l|L|s|sec|min|h|hr|hours?|minutes?|seconds?|days?|yuan|dollars?"
    r"|units?|meters?|cm\^2|cm\^3|m\^2|m\^3|km\^2|mm\^2|cm²|cm³|m²|m³|km/h|m/s"
    r"|平方厘米|平方米|立方厘米|立方米|厘米|毫米|千米|公里|米|克|千克|元|角|分|个|只|人|天|小时|秒|页|本|块|辆|棵|条|次|岁|倍|度"
)
_UNIT_TAIL = re.compile(rf"^(.*?\d[\d.}}\s]*)\s*(?:\\,)?\s*({_UNITS})\s*$")
_SYMBOL_MAP = {
    "−": "-",
    "–": "-",
    "×": "\\times ",
    "÷": "\\div ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "π": "\\pi ",
    "∞": "\\infty ",
    "√": "\\sqrt",
    "∪": "\\cup ",
    "∈": "\\in ",
    "\\leq": "\\le",
    "\\geq": "\\ge",
    "\\neq": "\\ne",
    "\\dfrac": "\\frac",
    "\\tfrac": "\\frac",
    "\\%": "%",
    "％": "%",
    "\\lt": "<",
    "\\gt": ">",
    "：": ":",
    "，": ",",
    "、": ",",
    "；": ";",
    "（": "(",
    "）": ")",
    "。": "",
}
_SYMBOL_RE = re.compile("|".join(re.escape(k) for k in sorted(_SYMBOL_MAP, key=len, reverse=True)))


def nfkc(text: str) -> str:
    """NFKC (full-width to ASCII and so on), keeping circled numbers as they are."""
    if not any(c in CIRCLED for c in text):
        return unicodedata.normalize("NFKC", text)
    return "".join(c if c in CIRCLED else unicodedata.normalize("NFKC", c) for c in text)


def clean(text: str) -> str:
    """Strip the presentation from an answer: `$`, `\\text{}`, spacing commands, `\\left`,
    `\\dfrac`, full-width forms, a trailing period. The degree sign and `%` are kept."""
    s = _SYMBOL_RE.sub(lambda m: _SYMBOL_MAP[m.group(0)], text)
    s = nfkc(s).strip()
    s = s.replace("$", "").replace("\\(", "").replace("\\)", "")
    s = s.replace("\\[", "").replace("\\]", "")
    for _ in range(3):
        s2 = _WRAPPERS.sub(r"\1", s)
        if s2 == s:
            break
        s = s2
    s = _SPACING.sub(" ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip(".").strip()
    return s


_UNIT_SUFFIX = re.compile(
    rf"^(.*?[\d}}]|.*?\\pi)\s*(?:\\,)?\s*(?:{_UNITS})(?:\^\{{?[23]\}}?|[²³])?\s*$"
)


def strip_unit(s: str) -> str:
    """`16\\pi cm^2` -> `16\\pi`: a unit after a number or an expression ending in one."""
    m = _UNIT_SUFFIX.match(s)
    return m.group(1).strip() if m else s


def strip_assignment(s: str) -> str:
    """`x = 3` -> `3` (a single variable, one `=`, nothing relational on the right)."""
    m = re.fullmatch(r"\s*([a-zA-Z](?:_\{?\w+\}?)?|\\[a-zA-Z]+)\s*=\s*([^=<>]+)", s)
    if m and not re.search(r"\\(?:le|ge|ne)\b", m.group(2)):
        return m.group(2).strip()
    return s


@dataclass(frozen=True)
class Number:
    value: Fraction
    percent: bool = False
    degree: bool = False
    unit: str | None = None


_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+|\d+)"


def _thousands(s: str) -> str:
    """`1,000,000` / `1 000` / `1{,}000` -> `1000000` (groups of exactly three digits)."""
    s = s.replace("{,}", ",")
    if re.fullmatch(r"[+-]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?", s):
        return s.replace(",", "").replace(" ", "")
    return s


def _plain_number(s: str) -> Fraction | None:
    s = s.strip().replace(" ", "") if len(s) < 60 else s.strip()
    s = s.strip("{}") if s.startswith("{") and s.endswith("}") and s.count("{") == 1 else s
    if re.fullmatch(_DEC, s):
        return Fraction(s)
    m = re.fullmatch(rf"({_DEC})/({_DEC})", s)
    if m:
        den = Fraction(m.group(2))
        return Fraction(m.group(1)) / den if den else None
    m = re.fullmatch(r"([+-]?)\\frac\{?(\d+(?:\.\d+)?)\}?\{?(\d+(?:\.\d+)?)\}?", s)
    if m and (len(m.group(2)) == 1 or "{" in s):
        den = Fraction(m.group(3))
        if den:
            v = Fraction(m.group(2)) / den
            return -v if m.group(1) == "-" else v
    m = re.fullmatch(r"([+-]?)\\frac\{([+-]?\d+(?:\.\d+)?)\}\{([+-]?\d+(?:\.\d+)?)\}", s)
    if m:
        den = Fraction(m.group(3))
        if den:
            v = Fraction(m.group(2)) / den
            return -v if m.group(1) == "-" else v
    m = re.fullmatch(r"([+-]?\d+)\\frac\{(\d+)\}\{(\d+)\}", s)  # mixed number 2\frac{1}{2}
    if m and int(m.group(3)):
        whole, frac = int(m.group(1)), Fraction(int(m.group(2)), int(m.group(3)))
        return whole - frac if m.group(1).startswith("-") else whole + frac
    m = re.fullmatch(rf"({_DEC})(?:\\times|\\cdot|\*|x)10\^\{{?({_INT})\}}?", s)
    if m and abs(int(m.group(2))) <= 400:
        return Fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    m = re.fullmatch(rf"({_DEC})[eE]({_INT})", s)
    if m and abs(int(m.group(2))) <= 400:
        return Fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    return None


def to_number(text: str) -> Number | None:
    """A plain number with its decorations (percent, degree, unit), or None."""
    s = text.strip()
    degree = percent = False
    unit = None
    if _DEGREE.search(s):
        s, degree = _DEGREE.sub("", s).strip(), True
    if s.endswith("%"):
        s, percent = s[:-1].strip(), True
    m = _UNIT_TAIL.match(s)
    if m and _plain_number(_thousands(m.group(1).strip())) is not None:
        s, unit = m.group(1).strip(), m.group(2).replace("^", "")
    value = _plain_number(_thousands(s))
    if value is None:
        return None
    return Number(value, percent, degree, unit)


def numbers_equal(a: Number, b: Number) -> bool:
    if a.unit and b.unit and a.unit.lower() != b.unit.lower() and a.unit != b.unit:
        return False
    if a.value == b.value:
        return True
    if a.percent != b.percent:  # 25% vs 0.25
        pct, other = (a, b) if a.percent else (b, a)
        return pct.value / 100 == other.value
    return False


def letters_of(text: str, strict: bool = False) -> frozenset[str] | None:
    """Option letters in an answer: `A`, `(A)`, `A.`, `Option A`, `A: text`, `AC`,
    `A, C`, `(A)(C)`, `A and C`. None when the text is not a choice. With `strict`, only
    bare letter sets (for reading a reference answer)."""
    s = clean(text)
    core = re.sub(r"(?i)\b(?:and|or|options?|choices?)\b|[,;&()\s]", "", s)
    if 2 <= len(core) <= len(LETTERS) and all(c in LETTERS for c in core):
        return frozenset(core) if len(set(core)) == len(core) else None
    if len(core) == 1 and core.upper() in LETTERS and (core.isupper() or len(s) <= 3):
        return frozenset(core.upper())
    if strict:
        return None
    m = re.fullmatch(
        r"(?:(?:the\s+)?(?:option|choice|answer)\s*(?:is\s*)?)?"
        r"\(?([A-J])\)?(?:\s*[.:)]\s*.*|\s+.*)?",
        s,
        re.IGNORECASE | re.DOTALL,
    )
    if m and (
        s[0] == "("
        or (s[:1].isupper() and not s[1:2].isalpha())
        or s[:6].lower() in ("option", "choice", "answer", "the op", "the an")
    ):
        return frozenset(m.group(1).upper())
    return None


def circled_of(text: str) -> frozenset[str] | None:
    s = re.sub(r"[,;\s()和与及]|and", "", text.strip())
    if s and all(c in CIRCLED for c in s) and len(set(s)) == len(s):
        return frozenset(s)
    return None


def split_items(s: str) -> list[str]:
    """Top-level items of a list answer, split on `,` `;` ` and ` ` or ` (not inside brackets)."""
    items, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 0 and c in ",;":
            items.append("".join(cur))
            cur = []
        elif depth == 0 and s.startswith((" and ", " or ", "或", "和"), i):
            word = next(w for w in (" and ", " or ", "或", "和") if s.startswith(w, i))
            items.append("".join(cur))
            cur = []
            i += len(word)
            continue
        else:
            cur.append(c)
        i += 1
    items.append("".join(cur))
    return [x.strip() for x in items if x.strip()]


_INEQ = re.compile(r"^(?:([^<>=]+?)\s*(<|\\le)\s*)?([a-zA-Z])\s*(<|\\le|>|\\ge)\s*([^<>=]+)$")


def inequality_to_interval(s: str) -> str | None:
    """`0 < x < 12.5` -> `(0,12.5)`, `x \\ge 3` -> `[3,\\infty)`, `3 < x` -> `(3,\\infty)`."""
    t = s.replace(" ", "")
    m = re.fullmatch(r"([^<>=a-zA-Z]+?)(<|\\le)([a-zA-Z])(<|\\le)([^<>=a-zA-Z]+)", t)
    if m:
        lo = "(" if m.group(2) == "<" else "["
        hi = ")" if m.group(4) == "<" else "]"
        return f"{lo}{m.group(1)},{m.group(5)}{hi}"
    m = re.fullmatch(r"([a-zA-Z])(<|\\le|>|\\ge)([^<>=a-zA-Z][^<>=]*)", t)
    if m:
        op, v = m.group(2), m.group(3)
    else:
        m = re.fullmatch(r"([^<>=a-zA-Z][^<>=]*)(<|\\le|>|\\ge)([a-zA-Z])", t)
        if not m:
            return None
        flip = {"<": ">", "\\le": "\\ge", ">": "<", "\\ge": "\\le"}
        op, v = flip[m.group(2)], m.group(1)
    if op in (">", "\\ge"):
        return f"{'(' if op == '>' else '['}{v},\\infty)"
    return f"(-\\infty,{v}{')' if op == '<' else ']'}"


def is_wordy(s: str) -> bool:
    """True for text answers (words), which must never go to symbolic parsing."""
    t = re.sub(r"\\[a-zA-Z]+", "", s)
    if re.search(r"[\u4e00-\u9fff]", t):
        return True
    return bool(re.search(r"[a-zA-Z]{3,}", t))


def text_key(s: str) -> str:
    """Comparison key of a text answer: case, spaces and punctuation do not matter."""
    t = clean(s).lower()
    t = re.sub(r"\\[a-z]+\s*", "", t)
    return re.sub(r"[\s.,;:!?'\"`{}()\[\]-]", "", t)


def vote_key(answer: str) -> str:
    """A key under which equal answers meet for majority voting: a set of option letters,
    a number's exact value (`0.5`, `1/2`, `\\frac{1}{2}` alike), else the cleaned text."""
    s = strip_assignment(clean(answer))
    letters = letters_of(s, strict=True)
    if letters:
        return "letters:" + "".join(sorted(letters))
    num = to_number(s)
    if num is not None:
        return f"number:{num.value}{'%' if num.percent else ''}"
    return "text:" + "".join(s.split()).lower()
