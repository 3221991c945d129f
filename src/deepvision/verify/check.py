"""Is the answer right? Rules first (letters, numbers, exact strings, lists, intervals, text),
math-verify in the worker pool for the rest; a timeout or a parse failure counts as wrong, and an
answer whose comparison found no free worker in time is undecided (`Verdict.undecided`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction

from deepvision.records import Verdict
from deepvision.verify.extract import FALLBACKS, extract_answer
from deepvision.verify.normalize import (
    LETTERS,
    circled_of,
    clean,
    inequality_to_interval,
    is_wordy,
    letters_of,
    numbers_equal,
    split_items,
    strip_assignment,
    strip_unit,
    text_key,
    to_number,
)
from deepvision.verify.pool import SymbolicPool, default_pool

Options = Sequence[str] | Mapping[str, str] | None
_MAX_ANSWER_CHARS = 2000


def option_map(options: Options) -> dict[str, str]:
    """Options as letter -> text (a list is lettered A, B, C, ... in order)."""
    if not options:
        return {}
    if isinstance(options, Mapping):
        return {str(k).strip().upper()[:1]: str(v) for k, v in options.items()}
    return {LETTERS[i]: str(v) for i, v in enumerate(options) if i < len(LETTERS)}


@dataclass
class _Ctx:
    """The budgets of one check, shared by all its symbolic comparisons: `timeout` seconds of
    comparison and `wait` seconds of waiting for a worker (None: the pool's)."""

    pool: SymbolicPool | None
    timeout: float | None
    wait: float | None = None
    used: float = 0.0  # seconds of symbolic comparison this check has spent
    waited: float = 0.0  # seconds this check has waited for a worker
    timed_out: bool = False  # a comparison ran and overran: counts as wrong
    not_run: list[str] = field(default_factory=list)  # why comparisons never ran (no worker)

    def remaining(self) -> float:
        if self.timeout is not None:
            return self.timeout - self.used
        return (self.pool.timeout if self.pool is not None else 0.0) - self.used

    def patience(self) -> float:
        if self.wait is not None:
            return max(0.0, self.wait - self.waited)
        return max(0.0, (self.pool.wait if self.pool is not None else 0.0) - self.waited)

    def symbolic(self, g: str, p: str) -> tuple[bool, str, str]:
        """(equal, "symbolic", reason) from the pool, within what is left of both budgets."""
        assert self.pool is not None
        left = self.remaining()
        if left <= 0:
            self.timed_out = True
            return False, "symbolic", "time limit used up by earlier comparisons"
        res = self.pool.compare(g, p, left, self.patience())
        self.used += res.elapsed
        self.waited += res.waited
        self.timed_out |= res.timed_out
        if res.no_worker:
            self.not_run.append(res.reason)
        return bool(res.equal), "symbolic", res.reason


def _ratio(s: str) -> tuple[Fraction, ...] | None:
    parts = s.split(":")
    if len(parts) < 2:
        return None
    nums = [to_number(x) for x in parts]
    if any(n is None or n.value == 0 for n in nums):
        return None
    first = nums[0].value  # type: ignore[union-attr]
    return tuple(n.value / first for n in nums)  # type: ignore[union-attr]


def _interval(s: str) -> tuple[str, str, str, str] | None:
    t = inequality_to_interval(s) or s
    m = re.fullmatch(r"\s*([(\[])\s*([^,]+?)\s*,\s*([^,]+?)\s*([)\]])\s*", t)
    if not m:
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4)


def _is_tuple(s: str) -> bool:
    return bool(re.fullmatch(r"\(.*,.*\)", s.strip())) and s.count("(") == 1


def _strip_outer(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] + s[-1] in ("()", "{}", "[]") and s.count(s[0]) == 1:
        return s[1:-1]
    if s.startswith("\\{") and s.endswith("\\}"):
        return s[2:-2]
    return s


def _equal(p: str, g: str, ctx: _Ctx, depth: int = 0) -> tuple[bool, str, str]:
    """(equal, method, reason) for two cleaned answers (no option letters involved)."""
    if p == g:
        return True, "exact", "same answer"
    if "=" not in p or "=" not in g:
        p, g = strip_assignment(p), strip_assignment(g)
        if p == g:
            return True, "exact", "same answer after dropping the variable"
    pn, gn = to_number(p), to_number(g)
    if pn is not None and gn is not None:
        if numbers_equal(pn, gn):
            return True, "number", "same value"
        return False, "number", f"value {p} differs from {g}"
    pr, gr = _ratio(p), _ratio(g)
    if gr is not None and (pr is not None or pn is not None):
        if pr is not None:
            ok = len(pr) == len(gr) and pr == gr
        else:
            ok = len(gr) == 2 and pn is not None and pn.value == 1 / gr[1]
        return ok, "ratio", "same ratio" if ok else "different ratio"
    if pr is not None and gn is not None:
        return len(pr) == 2 and 1 / pr[1] == gn.value, "ratio", "ratio vs value"
    gi, pi = _interval(g), _interval(p)
    if (
        gi is not None
        and pi is not None
        and (
            gi[0] + gi[3] != "()"
            or pi[0] + pi[3] != "()"
            or inequality_to_interval(p)
            or inequality_to_interval(g)
        )
    ):
        if gi[0] != pi[0] or gi[3] != pi[3]:
            return False, "interval", "different interval ends (open/closed)"
        ok = all(_equal(a, b, ctx, depth + 1)[0] for a, b in ((pi[1], gi[1]), (pi[2], gi[2])))
        return ok, "interval", "same interval" if ok else "different interval"
    if depth < 2:
        ordered = _is_tuple(g)
        g_items = split_items(_strip_outer(g) if not ordered or _is_tuple(p) else g)
        p_items = split_items(_strip_outer(p) if not ordered or _is_tuple(p) else p)
        if len(g_items) > 1 or len(p_items) > 1:
            if len(g_items) != len(p_items):
                what = "partial answer" if len(p_items) < len(g_items) else "extra items"
                return (
                    False,
                    "list",
                    f"{what}: {len(p_items)} item(s), reference has {len(g_items)}",
                )
            if ordered and _is_tuple(p):
                ok = all(
                    _equal(a, b, ctx, depth + 1)[0] for a, b in zip(p_items, g_items, strict=True)
                )
                return ok, "list", "same tuple" if ok else "different tuple"
            left = list(g_items)
            for item in p_items:
                hit = next(
                    (k for k, gg in enumerate(left) if _equal(item, gg, ctx, depth + 1)[0]), None
                )
                if hit is None:
                    return False, "list", f"item {item!r} is not in the reference"
                left.pop(hit)
            return True, "list", "same items"
    p, g = strip_unit(p), strip_unit(g)
    if is_wordy(g) or is_wordy(p):
        ok = text_key(p) == text_key(g)
        return ok, "text", "same text" if ok else "different text"
    if gn is not None and gn.degree and "\\pi" in p:
        g = f"\\frac{{{gn.value}\\pi}}{{180}}"
    elif pn is not None and pn.degree and "\\pi" in g:
        p = f"\\frac{{{pn.value}\\pi}}{{180}}"
    elif pn is not None and pn.unit:
        p = str(pn.value)
    if ctx.pool is None:
        return False, "rule", "no rule decides and symbolic comparison is off"
    return ctx.symbolic(g, p)


def compare_answers(
    pred: str, gold: str, options: Options = None, ctx: _Ctx | None = None
) -> tuple[bool, str, str]:
    """(correct, method, reason) for an extracted answer against one reference answer."""
    ctx = ctx or _Ctx(default_pool(), None)
    p, g = clean(pred), clean(gold)
    if not p:
        return False, "empty", "no answer"
    if len(p) > _MAX_ANSWER_CHARS:
        return False, "rule", "answer longer than any reference"
    opts = option_map(options)
    gl = letters_of(g, strict=True)
    if gl is not None and (opts or len(g.replace(" ", "")) <= 4):
        pl = letters_of(p)
        if pl is not None and (
            len(pl) > 1
            or not opts
            or p.strip("().: ").upper() in opts
            or len(p) <= 3
            or p[:6].lower() in ("option", "choice")
            or re.match(r"^\(?[A-J]\)?[.:)]", p)
        ):
            ok = pl == gl
            return ok, "choice", f"chose {''.join(sorted(pl))}, reference {''.join(sorted(gl))}"
        if opts:  # the option's text or value instead of its letter
            not_run = len(ctx.not_run)
            chosen = {k for k, text in opts.items() if _equal(p, clean(text), ctx)[0]}
            if len(ctx.not_run) > not_run:  # an option left uncompared could change the choice
                return False, "choice", ctx.not_run[-1]
            if chosen:
                ok = chosen == set(gl)
                return ok, "choice", f"answer matches option {''.join(sorted(chosen))}"
        return False, "choice", "no option letter found in the answer"
    gc = circled_of(g)
    if gc is not None:
        pc = circled_of(p)
        ok = pc == gc
        return ok, "choice", "same statements" if ok else "different statements"
    return _equal(p, g, ctx)


def final_answer(
    pred: str | None, extract: bool | None = None, fallbacks: Sequence[str] = FALLBACKS
) -> str | None:
    """The answer a verdict is about, or None when `pred` has none: the one place where
    "extract or not" is decided. `extract=True`: `pred` is a whole response (its last box, else
    the `fallbacks`); `False`: `pred` is the answer itself; `None`: extract when the text has a
    box (or a `</think>`), else take it as it is."""
    text = pred or ""
    if extract or (
        extract is None and ("\\boxed" in text or "\\fbox" in text or "</think>" in text)
    ):
        return extract_answer(text, fallbacks) or None
    return text.replace("\x00", "").strip() or None


def _verdict(
    answer: str | None,
    gold: str,
    equivalents: Iterable[str],
    options: Options,
    pool: SymbolicPool | None,
    timeout: float | None,
    wait: float | None = None,
) -> Verdict:
    """Verdict on an answer already taken from its response (`final_answer`). A comparison
    that never ran leaves the answer undecided unless another one found it right: a list or
    interval is right only when every part compared equal, so a part not compared can only
    have made it wrong."""
    if not answer:
        return Verdict(False, None, "rule", "no final answer found")
    ctx = _Ctx(pool, timeout, wait)
    golds = [gold, *[e for e in equivalents if e and e != gold]]
    first: tuple[bool, str, str] | None = None
    for g in golds:
        ok, method, reason = compare_answers(answer, str(g), options, ctx)
        if ok:
            return Verdict(True, answer, method, reason)
        first = first or (ok, method, reason)
    assert first is not None
    if ctx.not_run:
        return Verdict(False, answer, Verdict.UNDECIDED, f"{ctx.not_run[0]}: not compared")
    method, reason = first[1], first[2]
    if ctx.timed_out:
        reason = f"{reason}; timed out counts as wrong"
    return Verdict(False, answer, method, reason)


def check(
    pred: str | None,
    gold: str,
    *,
    equivalents: Iterable[str] = (),
    options: Options = None,
    extract: bool | None = None,
    fallbacks: Sequence[str] = FALLBACKS,
    pool: SymbolicPool | None = None,
    timeout: float | None = None,
    wait: float | None = None,
    symbolic: bool = True,
) -> Verdict:
    """Verdict on `pred` against `gold` (or any of `equivalents`).

    `pred` is a whole response or an answer: with `extract=None` the final answer is taken
    from the last `\\boxed{}` when the text has one (or a `</think>`), else the text itself is
    the answer (see `final_answer`). Symbolic comparisons run in worker processes with a hard
    time limit (`timeout`, default the pool's); a comparison that overruns it counts as wrong.
    Waiting for a free worker is bounded apart (`wait`, default the pool's): a check whose
    comparison found no worker in time is undecided (`verdict.undecided`, `correct` False),
    never wrong, and the caller may check it again. A call returns within `wait + timeout`
    seconds plus the moment it takes to kill an overrunning worker."""
    answer = final_answer(pred, extract, fallbacks)
    if not answer:
        return _verdict(None, gold, equivalents, options, None, timeout)
    symbolic_pool = (pool or default_pool()) if symbolic else None
    return _verdict(answer, gold, equivalents, options, symbolic_pool, timeout, wait)


@dataclass
class Item:
    """One thing to verify (see `verify_batch`)."""

    pred: str | None
    gold: str
    equivalents: tuple[str, ...] = ()
    options: tuple[str, ...] | None = None
    extract: bool | None = None  # True: `pred` is a whole response (no box: no answer)


def verify_batch(
    items: Iterable[Item | Mapping],
    *,
    pool: SymbolicPool | None = None,
    timeout: float | None = None,
    wait: float | None = None,
    threads: int | None = None,
) -> list[Verdict]:
    """Verdicts for many items, in order. Repeated (answer, reference) pairs are decided once;
    symbolic comparisons run on all the pool's workers at the same time.

    The batch keeps its own queue (about two items in flight per worker), so its size alone
    does not leave items undecided: an item whose comparison found no worker within `wait`
    (workers restarting after a timeout, a pool shared with other callers) is tried again in a
    next round, with a fresh wait, for as long as each round decides some. What is still
    undecided when a round decides none comes back undecided (`verdict.undecided`)."""
    pool = pool or default_pool()
    norm = [_item(it) for it in items]

    # The answer of each item is decided once, here; equal (answer, reference) pairs share
    # one verdict, whatever text or extraction rule each answer came from.
    answers = [final_answer(it.pred, it.extract) for it in norm]
    keyed = [_batch_key(a, it) for a, it in zip(answers, norm, strict=True)]
    pending: dict[tuple, tuple[str | None, Item]] = {}
    for k, a, it in zip(keyed, answers, norm, strict=True):
        pending.setdefault(k, (a, it))

    def run(job: tuple[str | None, Item]) -> Verdict:
        answer, it = job
        return _verdict(answer, it.gold, it.equivalents, it.options, pool, timeout, wait)

    n_threads = threads or max(2, 2 * pool.size)
    decided: dict[tuple, Verdict] = {}
    while pending:
        got = _decide_round(pending, run, n_threads)
        decided.update(got)
        undecided = {k: pending[k] for k, v in got.items() if v.undecided}
        if len(undecided) == len(pending):  # no progress: the pool is not ours to wait for
            break
        pending = undecided
    return [decided[k] for k in keyed]


def _item(it: Item | Mapping) -> Item:
    """An `Item` from an item or a mapping with the same keys."""
    if not isinstance(it, Mapping):
        return it
    opts = it.get("options")
    return Item(
        it.get("pred"),
        str(it["gold"]),
        tuple(it.get("equivalents") or ()),
        tuple(opts) if isinstance(opts, list | tuple) else opts,
        it.get("extract"),
    )


def _batch_key(answer: str | None, it: Item) -> tuple:
    """Items with equal keys get one verdict."""
    opts = tuple(sorted(it.options.items())) if isinstance(it.options, Mapping) else it.options
    return (answer, it.gold, it.equivalents, opts)


def _decide_round(
    jobs: dict[tuple, tuple[str | None, Item]],
    run: Callable[[tuple[str | None, Item]], Verdict],
    n_threads: int,
) -> dict[tuple, Verdict]:
    """One verdict per job, on `n_threads` threads (inline when that would not help)."""
    if len(jobs) <= 1 or n_threads <= 1:
        return {k: run(job) for k, job in jobs.items()}
    with ThreadPoolExecutor(min(n_threads, len(jobs))) as ex:
        return dict(zip(jobs, ex.map(run, jobs.values()), strict=True))
