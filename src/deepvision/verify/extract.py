"""Find the final answer in a model response: the last `\\boxed{...}` / `\\fbox{...}`.

Linear in the response length whatever it holds (1 MB responses, thousands of unbalanced
braces); never raises on any string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

BOX_COMMANDS = ("\\boxed", "\\fbox")
FALLBACKS = ("answer_is", "answer_line")  # tried in this order when no box is found
_MAX_BOX_CHARS = 2000  # a boxed answer longer than this is not an answer
_MAX_TRIES = 8  # boxes tried from the end (an unclosed last box falls back to the one before)

_THINK_END = "</think>"
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:)\s*[:：]?\s*"
    r"\$*([^\n$]{1,200}?)\$*\s*(?:\.\s*)?$",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_LINE = re.compile(
    r"^\s*(?:\*\*)?(?:final answer|answer|答案)(?:\*\*)?"
    r"\s*[:：]\s*(.{1,200})$",
    re.IGNORECASE | re.MULTILINE,
)


def strip_thinking(text: str) -> str:
    """Drop a `<think>...</think>` block: everything up to the last `</think>`."""
    cut = text.rfind(_THINK_END)
    return text[cut + len(_THINK_END) :] if cut >= 0 else text


def _box_content(text: str, start: int) -> str | None:
    """The braced argument right after position `start`, or None if not closed in time."""
    i = start
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":
        # `\boxed 5`: a single token up to the next space or `$`.
        m = re.match(r"[^\s${}]+", text[i : i + 100])
        return m.group(0) if m else None
    depth = 0
    end = min(n, i + _MAX_BOX_CHARS + 2)
    for j in range(i, end):
        c = text[j]
        if c == "{" and text[j - 1] != "\\":
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last closed `\\boxed{}` or `\\fbox{}` (nested braces kept)."""
    positions = []
    for cmd in BOX_COMMANDS:
        pos = len(text)
        for _ in range(_MAX_TRIES):
            pos = text.rfind(cmd, 0, pos)
            if pos < 0:
                break
            positions.append((pos, pos + len(cmd)))
    for _, after in sorted(positions, reverse=True)[:_MAX_TRIES]:
        content = _box_content(text, after)
        if content is not None:
            return content.strip()
    return None


def _tail_match(pattern: re.Pattern[str], text: str) -> str | None:
    # Only the end of a long response can hold its final answer; bound the regex work.
    tail = text[-4000:]
    found = None
    for m in pattern.finditer(tail):
        found = m.group(1)
    return found.strip().rstrip(".").strip() if found else None


def extract_answer(text: str | None, fallbacks: Sequence[str] = FALLBACKS) -> str | None:
    """The final answer of a response, or None when it has none.

    The last `\\boxed{}`/`\\fbox{}` after any thinking block; else, in `fallbacks` order,
    "the answer is X" and an "Answer: X" line (pass `fallbacks=()` for boxes only)."""
    if not text:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "")
    body = strip_thinking(text)
    boxed = last_boxed(body)
    if boxed is not None:
        return boxed
    for name in fallbacks:
        if name == "answer_is":
            found = _tail_match(_ANSWER_IS, body)
        elif name == "answer_line":
            found = _tail_match(_ANSWER_LINE, body)
        else:
            raise ValueError(f"unknown fallback {name!r}; known: {', '.join(FALLBACKS)}")
        if found:
            return found
    return None


_ANSWER_MARK = re.compile(r"answer\s*[:：]", re.IGNORECASE)


def answer_after_last_marker(text: str | None) -> str | None:
    """MMMU-Pro's rule: the text after the last `Answer:` (to the end of its line)."""
    if not text:
        return None
    body = strip_thinking(text.replace("\x00", ""))[-4000:]
    last = None
    for m in _ANSWER_MARK.finditer(body):
        last = m
    if last is None:
        return None
    found = body[last.end() :].strip().split("\n", 1)[0].strip().strip("*$ ").rstrip(".").strip()
    return found or None


def extract_choice(text: str | None, options: Sequence[str]) -> str | None:
    """A multiple-choice letter named in free text, for responses with no box and no answer
    line (MMMU's and M3CoT's parsing, without their random guess). Only explicit mentions
    count: `(B)`, `option B` / `choice B`, `answer is B`, or a line that is just `B` / `B.` /
    `B) text`; else the option whose text is quoted last (longest first, on word
    boundaries). None when nothing is named: a point `B` or the article `A` is not a choice."""
    if not text or not options:
        return None
    body = strip_thinking(text.replace("\x00", ""))[-4000:]
    letters = "".join(chr(65 + i) for i in range(min(len(options), 26)))
    found: list[tuple[int, str]] = []
    for pattern in (
        rf"\(([{letters}])\)",
        rf"(?i:\b(?:option|choice|answer)\s*(?:is\s*)?[:：]?\s*)([{letters}])\b",
        rf"(?m)^\s*\**([{letters}])\**\s*(?:[.):]|$)",
    ):
        found += [(m.start(1), m.group(1)) for m in re.finditer(pattern, body)]
    if found:
        return max(found)[1]
    low = body.lower()
    best: tuple[int, int, str] | None = None
    for i, opt in enumerate(options):
        o = str(opt).strip().lower()
        if len(o) < 2:
            continue
        for m in re.finditer(rf"(?<!\w){re.escape(o)}(?!\w)", low):
            cand = (m.start(), len(o), letters[i])
            if best is None or cand[:2] > best[:2]:
                best = cand
    return best[2] if best else None
