"""Answer normalization: LaTeX wrappers, Unicode and HTML math, units, degrees, percent,
full-width forms, numbers, option letters, circled numbers, lists and intervals. Pure string
work in linear time; never raises."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
LETTERS = "ABCDEFGHIJ"

_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|mathrm|mathbf|mathit"
    r"|mathsf|mathtt|mathnormal|boldsymbol|bm|operatorname|mbox|rm|hbox)\s*\{([^{}]*)\}"
)
_SPACING = re.compile(
    r"(?<!\\)\\[,;:> ]|\\q?quad|\\displaystyle|\\textstyle|\\left|\\right|\\[bB]igg?[lr]?|~"
)
_DEGREE = re.compile(
    r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree|\^\s*\{\\text\{o\}\}|度"
    r"|(?<=[\d}])\s*\{?\s*degrees?\s*\}?(?![a-zA-Z])"
)
_NEGATIVE_SPACE = re.compile(r"\\!\s*")
_SYMBOL_MAP = {
    "−": "-",
    "–": "-",
    "—": "-",
    "×": "\\times ",
    "÷": "\\div ",
    "·": "\\cdot ",
    "⋅": "\\cdot ",
    "∙": "\\cdot ",
    "≤": "\\le ",
    "≦": "\\le ",
    "⩽": "\\le ",
    "≥": "\\ge ",
    "≧": "\\ge ",
    "⩾": "\\ge ",
    "≠": "\\ne ",
    "≈": "\\approx ",
    "±": "\\pm ",
    "∓": "\\mp ",
    "π": "\\pi ",
    "∞": "\\infty ",
    "√": "\\sqrt",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "∈": "\\in ",
    "∅": "\\varnothing ",
    "\\emptyset": "\\varnothing",
    "∠": "\\angle ",
    "\\leqslant": "\\le",
    "\\geqslant": "\\ge",
    "\\leqq": "\\le",
    "\\geqq": "\\ge",
    "\\leq": "\\le",
    "\\geq": "\\ge",
    "\\neq": "\\ne",
    "\\dfrac": "\\frac",
    "\\tfrac": "\\frac",
    "\\cfrac": "\\frac",
    "\\lbrace": "\\{",
    "\\rbrace": "\\}",
    "\\langle": "(",
    "\\rangle": ")",
    "\\infin": "\\infty",
    "\\%": "%",
    "\\$": "",
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

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_SUP_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_SUB_RUN = re.compile("[₀₁₂₃₄₅₆₇₈₉]+")
_HTML_SCRIPT = re.compile(r"<(sup|sub)>([^<>]{0,50})</\1>", re.IGNORECASE)
_HTML_TAG = re.compile(
    r"</?(?:i|b|em|strong|span|p|br|div|font|u|var|mi|mn|mo|math)\b[^<>]{0,200}>"
)


def nfkc(text: str) -> str:
    """NFKC (full-width to ASCII and so on), keeping circled numbers as they are."""
    if not any(c in CIRCLED for c in text):
        return unicodedata.normalize("NFKC", text)
    return "".join(c if c in CIRCLED else unicodedata.normalize("NFKC", c) for c in text)


def _html_math(s: str) -> str:
    """`x<sup>2</sup>` -> `x^{2}`, `&le;` -> `≤`, other inline tags dropped."""
    if "<" in s:
        s = _HTML_SCRIPT.sub(
            lambda m: ("^" if m.group(1).lower() == "sup" else "_") + f"{{{m.group(2)}}}", s
        )
        s = _HTML_TAG.sub("", s)
    if "&" in s and ";" in s:
        s = html.unescape(s)
    return s


def _unicode_scripts(s: str) -> str:
    """`x²` -> `x^{2}`, `a₁` -> `a_{1}` (before NFKC, which would make them plain digits)."""
    s = _SUP_RUN.sub(lambda m: "^{" + m.group(0).translate(_SUPERSCRIPTS) + "}", s)
    return _SUB_RUN.sub(lambda m: "_{" + m.group(0).translate(_SUBSCRIPTS) + "}", s)


_BOX = re.compile(r"^\s*\\(?:boxed|fbox)\s*\{(.*)\}\s*$", re.DOTALL)


def _unbox(s: str) -> str:
    """`\\boxed{x}` -> `x` when the box holds the whole answer (golds stored boxed)."""
    m = _BOX.match(s)
    if m and balanced(m.group(1)):
        return m.group(1)
    return s


def balanced(s: str) -> bool:
    """Every bracket closed after it opens (`([{` against `)]}`, an interval's `[0,1)` too)."""
    depth = 0
    for c in s:
        depth += (c in "([{") - (c in ")]}")
        if depth < 0:
            return False
    return depth == 0


def clean(text: str) -> str:
    """Strip the presentation from an answer: `$`, `\\text{}`, spacing commands, `\\left`,
    `\\dfrac`, HTML tags and entities, Unicode math signs and scripts, full-width forms, a
    trailing period. The degree sign and `%` are kept."""
    s = _unicode_scripts(_html_math(text))
    s = _NEGATIVE_SPACE.sub("", s)  # `11,\! 111` is one number
    s = _SYMBOL_RE.sub(lambda m: _SYMBOL_MAP[m.group(0)], s)
    s = nfkc(s).replace("⁄", "/").strip()  # NFKC writes ½ as 1⁄2
    s = _unbox(s.replace("$", "")).replace("\\(", "").replace("\\)", "")
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


_FILLER_HEAD = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)|only|just|exactly|about|around|approx\.?"
    r"|approximately|roughly|so|thus|hence|therefore|\\therefore|\\approx|约|大约|共)\s*[:,]?\s*",
    re.IGNORECASE,
)
_FILLER_TAIL = re.compile(
    r"\s*,?\s*\(?\s*(?:respectively|in\s+(?:that\s+)?order|in\s+total|in\s+all|altogether"
    r"|each|only)\s*\)?\s*$",
    re.IGNORECASE,
)


def strip_words(s: str) -> str:
    """`only y=3` -> `y=3`, `about 12 cm` -> `12 cm`, `3, 4 respectively` -> `3, 4`: words
    around a value that do not change it. Only where a value (a digit or a LaTeX command) is
    left, so word answers keep their words."""
    t = _FILLER_TAIL.sub("", _FILLER_HEAD.sub("", s, count=1), count=1).strip()
    if t != s and t and re.search(r"[\d\\]", t) and not is_wordy(t):
        return t
    return s


# Units: alias -> (canonical name, dimension, factor to the dimension's base unit). A unit
# written with a power (`cm^2`, `square cm`, `平方厘米`) has the dimension and factor raised to it.
_UNIT_TABLE: dict[str, tuple[str, str, Fraction]] = {}


def _units(dimension: str, canonical: str, factor: Fraction | int | str, *aliases: str) -> None:
    for alias in (canonical, *aliases):
        _UNIT_TABLE[alias] = (canonical, dimension, Fraction(factor))


_units("length", "mm", "1/1000", "millimeter", "millimeters", "millimetre", "millimetres", "毫米")
_units("length", "cm", "1/100", "centimeter", "centimeters", "centimetre", "centimetres", "厘米")
_units("length", "dm", "1/10", "decimeter", "decimeters", "decimetre", "decimetres", "分米")
_units("length", "m", 1, "meter", "meters", "metre", "metres", "米")
_units("length", "km", 1000, "kilometer", "kilometers", "kilometre", "kilometres", "千米", "公里")
_units("length", "in", "127/5000", "inch", "inches")
_units("length", "ft", "381/1250", "foot", "feet")
_units("length", "yd", "1143/1250", "yard", "yards")
_units("length", "mi", "201168/125", "mile", "miles")
_units("time", "s", 1, "sec", "secs", "second", "seconds", "秒")
_units("time", "min", 60, "mins", "minute", "minutes", "分钟")
_units("time", "h", 3600, "hr", "hrs", "hour", "hours", "小时")
_units("time", "day", 86400, "days", "天")
_units("mass", "mg", "1/1000", "milligram", "milligrams", "毫克")
_units("mass", "g", 1, "gram", "grams", "克")
_units("mass", "kg", 1000, "kilogram", "kilograms", "千克", "公斤")
_units("length^3", "ml", "1/1000000", "mL", "milliliter", "milliliters", "millilitre", "毫升")
_units("length^3", "l", "1/1000", "L", "liter", "liters", "litre", "litres", "升")
_units("speed", "km/h", "5/18", "km/hr", "kmh", "千米/时")
_units("speed", "m/s", 1, "米/秒")
_units("money", "yuan", 1, "元")
_units("money", "dollar", 1, "dollars", "usd")
_units("money", "cent", "1/100", "cents")
for _count in ("unit", "units", *"个只人页本块辆棵条次岁倍"):  # counted things
    _units("count:" + _count.rstrip("s"), _count.rstrip("s"), 1)

_POWER_WORDS = {"square": 2, "sq": 2, "sq.": 2, "cubic": 3, "平方": 2, "立方": 3}
_UNIT_TOKEN = r"(?:[A-Za-z]+(?:/[A-Za-z]+)?|[\u4e00-\u9fff]{1,4}(?:/[\u4e00-\u9fff])?)"
_UNIT_AT_END = re.compile(
    rf"(?P<pre>(?:square|sq\.?|cubic|平方|立方)\s*)?\{{?\s*(?P<word>{_UNIT_TOKEN})\s*\}}?"
    r"(?:\s*\^\s*\{?\s*(?P<pow>[23])\s*\}?)?\s*$"
)
_NOT_NOUNS = frozenset(
    {"and", "or", "not", "the", "for", "all", "any", "are", "is", "no", "yes", "with"}
    | {"from", "than", "then", "each", "only", "total", "per"}
)


@dataclass(frozen=True)
class Unit:
    """A unit after a value: its canonical name (`cm^2`), dimension and factor to the base
    unit of that dimension (unknown nouns such as `apples` are their own dimension)."""

    name: str
    dimension: str
    factor: Fraction


def _lookup_unit(word: str) -> tuple[str, str, Fraction] | None:
    """A known unit; case is ignored only in words (`Hours`), never in symbols (`H`, `M`)."""
    for w in (word, word.lower()) if len(word) >= 3 else (word,):
        if w in _UNIT_TABLE:
            return _UNIT_TABLE[w]
    return None


def split_unit(s: str, numeric_body: bool = True) -> tuple[str, Unit | None]:
    """(`value`, unit) for `value unit`: `12 cm^2`, `2.5 hours`, `120{squareinches}`,
    `5 apples`, `3平方厘米`. With `numeric_body`, only when the value is a plain number (then
    an unknown noun of three or more letters after a space counts as a unit too); else any
    expression ending in a digit, `}`, `)` or `\\pi`."""
    if len(s) > 400:
        return s, None
    squashed = re.sub(r"\{\s*(square|sq|cubic)\s*([a-z]+)\s*\}$", r" \1 \2", s)
    m = _UNIT_AT_END.search(squashed)
    if not m or m.start() == 0:
        return s, None
    body = squashed[: m.start()].rstrip().rstrip("\\,").rstrip()
    if not body or not re.search(r"(?:[\d}).]|\\pi)$", body):
        return s, None
    if re.search(r"(?<![\\a-zA-Z])[a-zA-Z]", body):  # `\pi R^2 h`: h is a length here
        return s, None
    word = m.group("word")
    known = _lookup_unit(word)
    power = int(m.group("pow") or 1)
    pre = (m.group("pre") or "").strip()
    if pre:
        power = _POWER_WORDS.get(pre.rstrip("."), _POWER_WORDS.get(pre, 1))
    if known is None:
        spaced = squashed[m.start("word") - 1] in " {"
        if not (
            numeric_body
            and spaced
            and word.isalpha()
            and word.islower()
            and len(word) >= 3
            and word not in _NOT_NOUNS
            and _plain_number(_thousands(body)) is not None
        ):
            return s, None
        noun = word[:-1] if word.endswith("s") else word
        known = (noun, "noun:" + noun, Fraction(1))
    name, dimension, factor = known
    if power > 1:
        name, dimension, factor = f"{name}^{power}", f"{dimension}^{power}", factor**power
    return body, Unit(name, dimension, factor)


_NAME = (
    r"(?:[a-zA-Z](?:_\{[^{}=]{1,30}\}|_\w)?'?|[A-Z]{2,3}|\|[A-Z]{2}\||\\angle\s*[A-Z]{1,3}"
    r"|\\(?:vec|overrightarrow|overline)\s*\{?[a-zA-Z]{1,3}\}?"
    r"|\\[a-zA-Z]+(?:_\{?\w+\}?)?|[A-Z](?:_\{?\w+\}?)?:[A-Z](?:_\{?\w+\}?)?)"
)
_ASSIGNMENT = re.compile(rf"\s*({_NAME}(?:\s*\([a-z](?:\s*,\s*[a-z])*\))?)\s*=\s*([^=<>]+)")


def assignment(s: str) -> tuple[str, str] | None:
    """(`x`, `3`) for `x = 3`, (`g(x)`, `2x`) for `g(x) = 2x`: one name, one `=`, nothing
    relational on the right; None otherwise."""
    m = _ASSIGNMENT.fullmatch(s)
    if m and not re.search(r"\\(?:le|ge|ne|in)\b", m.group(2)):
        return m.group(1).replace(" ", ""), m.group(2).strip()
    return None


def strip_assignment(s: str) -> str:
    """`x = 3` -> `3` (see `assignment`)."""
    found = assignment(s)
    return found[1] if found else s


@dataclass(frozen=True)
class Number:
    value: Fraction
    percent: bool = False
    degree: bool = False
    unit: Unit | None = None


_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+|\d+)"
_MAX_NUMBER_CHARS = 200  # longer digit strings are compared as text (int() refuses > 4300)


def _thousands(s: str) -> str:
    """`1,000,000` / `1 000` / `1{,}000` -> `1000000` (groups of exactly three digits)."""
    s = s.replace("{,}", ",")
    if re.fullmatch(r"[+-]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?", s):
        return s.replace(",", "").replace(" ", "")
    return s


def _plain_number(s: str) -> Fraction | None:
    if len(s) > _MAX_NUMBER_CHARS:
        return None
    s = s.strip().replace(" ", "")
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


_PERCENT = re.compile(r"\s*(?:%|percent|pct)\s*$", re.IGNORECASE)


def to_number(text: str) -> Number | None:
    """A plain number with its decorations (percent, degree, unit), or None."""
    s = text.strip()
    if len(s) > _MAX_NUMBER_CHARS:
        return None
    degree = percent = False
    if _DEGREE.search(s):
        s, degree = _DEGREE.sub("", s).strip(), True
    m = _PERCENT.search(s)
    if m:
        s, percent = s[: m.start()].strip(), True
    body, unit = split_unit(s)
    value = _plain_number(_thousands(body))
    if value is None:
        return None
    return Number(value, percent, degree, unit)


def same_quantity(a: Unit | None, b: Unit | None, va: Fraction, vb: Fraction) -> bool | None:
    """True/False when both values carry units (converted within a dimension: `1.5 m` is
    `150 cm`; another dimension is another quantity); None when at most one does."""
    if a is None or b is None:
        return None
    if a.dimension != b.dimension:
        return False
    return va * a.factor == vb * b.factor


def numbers_equal(a: Number, b: Number) -> bool:
    """Same value: units converted when both have one (else the unit is taken as implied),
    `25%` is `0.25`, degrees are compared as numbers of degrees."""
    both = same_quantity(a.unit, b.unit, a.value, b.value)
    if both is not None:
        return both and a.percent == b.percent
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


_CONNECTIVES = (" and ", " or ", "或", "和")


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
        elif depth == 0 and s.startswith(_CONNECTIVES, i):
            word = next(w for w in _CONNECTIVES if s.startswith(w, i))
            items.append("".join(cur))
            cur = []
            i += len(word)
            continue
        else:
            cur.append(c)
        i += 1
    items.append("".join(cur))
    return [x.strip() for x in items if x.strip()]


def joined_by_or(s: str) -> bool:
    """The items are alternatives (`x=1 or x=2`, `1或2`): a set of solutions, not a sequence."""
    return bool(re.search(r"(?<![a-zA-Z])or(?![a-zA-Z])|或", s))


_VARIABLE = r"[a-zA-Z](?:_\{?\w+\}?)?(?:\([a-z]\))?"
_RELATION = re.compile(r"(\\le|\\ge|<|>)")
_FLIP = {"<": ">", "\\le": "\\ge", ">": "<", "\\ge": "\\le"}


def _is_variable(t: str) -> bool:
    return bool(re.fullmatch(_VARIABLE, t))


def inequality_to_interval(s: str) -> str | None:
    """`0 < x < 12.5` -> `(0,12.5)`, `x \\ge 3` -> `[3,\\infty)`, `3 < x` -> `(3,\\infty)`,
    `5 \\ge x > 2` -> `(2,5]`; None when `s` is not one variable bounded this way."""
    if len(s) > 400:
        return None
    parts = _RELATION.split(s.replace(" ", ""))
    if len(parts) == 5:  # lo < x < hi (or hi > x > lo)
        lo, op1, var, op2, hi = parts
        if not _is_variable(var) or not lo or not hi or _RELATION.search(lo + hi):
            return None
        if op1 in (">", "\\ge") and op2 in (">", "\\ge"):
            lo, op1, hi, op2 = hi, _FLIP[op2], lo, _FLIP[op1]
        if op1 not in ("<", "\\le") or op2 not in ("<", "\\le"):
            return None
        return f"{'(' if op1 == '<' else '['}{lo},{hi}{')' if op2 == '<' else ']'}"
    if len(parts) != 3:
        return None
    left, op, right = parts
    if _is_variable(left) and right and not _is_variable(right):
        v = right
    elif _is_variable(right) and left and not _is_variable(left):
        op, v = _FLIP[op], left
    else:
        return None
    if op in (">", "\\ge"):
        return f"{'(' if op == '>' else '['}{v},\\infty)"
    return f"(-\\infty,{v}{')' if op == '<' else ']'}"


_SHORT_WORDS = frozenset({"no", "ok"})  # words too short for the three-letter rule


def is_wordy(s: str) -> bool:
    """True for text answers (words), which must never go to symbolic parsing."""
    t = re.sub(r"\\[a-zA-Z]+", "", s)
    if re.search(r"[\u4e00-\u9fff]", t):
        return True
    return bool(re.search(r"[a-zA-Z]{3,}", t)) or t.strip().lower() in _SHORT_WORDS


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
