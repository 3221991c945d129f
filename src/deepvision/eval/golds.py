"""Golds as benchmarks ship them, made answerable once, at load time.

Some official golds no answer can match as stored. MathVision test has math delimiters
around the whole gold (`$4 \\pi$`), a whole gold in `\\boxed{..}`, LaTeX commands whose
backslash a JSON escape ate (`"\\frac"` written unescaped is a form feed + `rac`), and units
as braced words (`69{degrees}`, `8\\sqrt{3}{squareinches}`); MathVerse has values named in
words (`Area $=9.4 \\mathrm{~cm}^{2}$`), parts on separate lines (`C\\nD`) and `°` read in
the wrong encoding (`118掳T`).
`normalize_gold` undoes these and nothing else; the loader lists every gold it changed.
"""

from __future__ import annotations

import re

# A control character that stands where a JSON escape ate a LaTeX command's backslash, with
# the command letters that follow it (`\f` + `rac` = `\frac`). Only these are undone: a new
# line or tab followed by ordinary text stays as it is.
_EATEN = {
    "\f": r"rac|orall|lat",
    "\b": r"oxed|eta|ar|inom|egin|ig|ot",
    "\t": r"imes|heta|an|ext|frac|o\b|riangle|au|ilde|op",
    "\r": r"ho|ight|angle|m\b|oot",
    "\n": r"eq|u\b|abla|ot|e\b|ewline|eg",
    "\a": r"lpha|pprox|ngle|st",
    "\v": r"ec|ar|dots",
}
_EATEN_RX = re.compile("|".join(f"{re.escape(c)}(?=(?:{rest}))" for c, rest in _EATEN.items()))
_ESCAPE_OF = {"\f": "f", "\b": "b", "\t": "t", "\r": "r", "\n": "n", "\a": "a", "\v": "v"}
_DELIMITED = re.compile(r"^\$\$?(.*?)\$?\$$|^\\\((.*)\\\)$|^\\\[(.*)\\\]$", re.S)
_DEGREES = re.compile(r"\{\s*degrees?\s*\}$")
# `Circumference $=113.1 \mathrm{~cm}$`: a value named in words (MathVerse): the value.
_NAMED_VALUE = re.compile(r"^[A-Za-z][A-Za-z .']{0,40}?\s*\$\s*=\s*(.+?)\s*\$(.*)$", re.S)
_MOJIBAKE = {"掳": "°"}  # UTF-8 `°` read as GBK (MathVerse `118掳T`)
# A unit spelled as one braced word after a value (`8\sqrt{3}{squareinches}`): dropped.
_UNIT_WORD = re.compile(
    r"(?:(?<=[\d}])|(?<=\\pi))\{\s*(?:square|cubic)?(?:inches|inch|feet|foot|units|unit|meters|metres|"
    r"centimeters|centimetres|miles|yards|cm|km|mm)\s*\}$"
)


def _unbox(s: str) -> str | None:
    """The content of a gold that is one whole `\\boxed{...}` (balanced braces), else None."""
    for head in ("\\boxed{", "\\fbox{"):
        if not s.startswith(head) or not s.endswith("}"):
            continue
        depth = 0
        for i, ch in enumerate(s[len(head) - 1 :], start=len(head) - 1):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if depth == 0:
                return s[len(head) : i] if i == len(s) - 1 else None
    return None


def normalize_gold(gold: str) -> str:
    """`gold` with the storage artefacts above undone (stripped of outer spaces)."""
    s = _EATEN_RX.sub(lambda m: "\\" + _ESCAPE_OF[m.group(0)], gold).strip()
    for bad, good in _MOJIBAKE.items():
        s = s.replace(bad, good)
    if "\n" in s:  # parts on lines of their own (MathVerse `C\nD`): one list
        s = ", ".join(x.strip() for x in s.splitlines() if x.strip())
    named = _NAMED_VALUE.match(s)
    if named:
        s = " ".join((named.group(1) + named.group(2)).replace("$", " ").split())
    while True:
        m = _DELIMITED.match(s)
        inner = next((g for g in m.groups() if g is not None), None) if m else _unbox(s)
        if inner is None or not inner.strip():
            break
        s = inner.strip()
    s = _DEGREES.sub(r"^\\circ", s)
    return _UNIT_WORD.sub("", s).strip()
