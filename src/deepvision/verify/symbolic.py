"""Symbolic equivalence with math-verify, run inside a worker process (see `pool.py`); an
"equal" stands only when the guard (`guard.py`: case-sensitive symbols, values at random
points, constants to 30 digits) does not contradict it.

math-verify's own signal-based timeouts are switched off: the pool enforces the time limit by
killing the worker. Run as `python -m deepvision.verify.symbolic` it serves JSON lines on
stdin/stdout: {"g": gold, "p": pred} -> {"ok": true|false|null, "r": reason}.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from functools import lru_cache
from typing import Any

from deepvision.verify.guard import confirm, letters_in

_MAX_CHARS = 1000  # longer answers are not compared symbolically


def _mv():
    import math_verify  # imported lazily: heavy (sympy)

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return math_verify


@lru_cache(maxsize=4096)
def parse_answer(text: str) -> tuple[Any, ...]:
    """math-verify's parse of one answer (already extracted), cached: each gold parses once."""
    mv = _mv()
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    # Units are the rules' business (compare.py): math-verify's own unit stripping would read
    # `2\pi R h` as `2\pi R` (h for hours).
    latex = mv.LatexExtractionConfig(
        boxed_match_priority=0,
        normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all"
        ),
    )
    config = [latex, mv.ExprExtractionConfig()]
    return tuple(mv.parse(f"\\boxed{{{text}}}", config, parsing_timeout=None))


_RELATION = re.compile(r"<|>|\\[lg]e|\\mid|\\in\b|\\ne")


_NAMED_VALUE = re.compile(r"^\s*[a-zA-Z](?:_\{?\w+\}?)?\s*(?:=|\\approx|\\sim)")


def _dropped_letters(number: Any, text: str) -> bool:
    """math-verify made a bare number of an answer with letters in it (`N 34° W+1` read as
    34: a bearing, a label, a term it dropped); a name before `=` or `\\approx` aside."""
    if not getattr(number, "is_Number", False):
        return False
    return bool(letters_in(_NAMED_VALUE.sub("", text)))


def _whole(parsed: tuple[Any, ...], text: str) -> bool:
    """math-verify read the whole answer: not a prefix cut at a command it does not know, not
    a bare number out of a condition (it reads `\\{x \\mid x > 1\\}` as 1), and not a bare
    number out of a text with letters it dropped."""
    if len(parsed) < 2 or not isinstance(parsed[-1], str):
        return bool(parsed)
    if getattr(parsed[0], "is_Number", False) and _RELATION.search(text):
        return False
    if _dropped_letters(parsed[0], text):
        return False
    squash = lambda s: "".join(s.split())  # noqa: E731
    return squash(parsed[-1]) == squash(text) or len(squash(parsed[-1])) >= len(squash(text))


def symbolic_equal(gold: str, pred: str) -> tuple[bool | None, str]:
    """(equal, reason); None when either side does not parse."""
    if len(gold) > _MAX_CHARS or len(pred) > _MAX_CHARS:
        return None, "answer too long for symbolic comparison"
    mv = _mv()
    g, p = parse_answer(gold), parse_answer(pred)
    if not g or not p:
        return None, "does not parse as math"
    if not _whole(g, gold) or not _whole(p, pred):
        return None, "math-verify read only part of the answer"
    if not mv.verify(list(g), list(p), timeout_seconds=None):
        return False, "not equivalent (math-verify)"
    return confirm(_latex(g, gold), _latex(p, pred), g[0], p[0])


def _latex(parsed: tuple[Any, ...], text: str) -> str:
    """The LaTeX math-verify read an answer from (its last element), else the answer."""
    return parsed[-1] if isinstance(parsed[-1], str) else text


def _limit_memory(max_bytes: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    except (ImportError, ValueError, OSError):
        pass


def _warm_up() -> None:
    """Run one comparison before saying ready: the first parse builds math-verify's parser
    (about 0.3 s), which would otherwise eat into the time limit of the first real answer."""
    with contextlib.suppress(Exception):
        symbolic_equal("x^2+2x+1", "(x+1)^2")
    parse_answer.cache_clear()


def prepare() -> None:
    """What a worker does before it says ready: import math-verify (an ImportError when it is
    missing: the worker exits before saying ready, and the pool says why) and run one
    comparison."""
    _mv()
    _warm_up()


def serve(max_memory_mb: int) -> None:
    _limit_memory(max_memory_mb * 2**20)
    prepare()
    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            ok, reason = symbolic_equal(req["g"], req["p"])
        except MemoryError:
            ok, reason = None, "out of memory in symbolic comparison"
        except RecursionError:
            ok, reason = None, "expression nested too deeply"
        except Exception as exc:  # any parser/sympy failure is an answer, not a crash
            ok, reason = None, f"symbolic comparison failed: {type(exc).__name__}"
        out.write(json.dumps({"ok": ok, "r": reason}) + "\n")
        out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
