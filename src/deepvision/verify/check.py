"""Is the answer right? The final answer is taken from the response (`final_answer`), then the
rule comparators of `compare.py` decide in their order (choices, numbers, units, intervals,
matrices, ordered and unordered lists, text, ...), and math-verify in the worker pool, its
"equal" checked by `guard.py`, decides the rest. A timeout or a parse failure counts as wrong;
an answer whose comparison found no free worker in time is undecided (`Verdict.undecided`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from deepvision.records import Verdict
from deepvision.verify.compare import Compare, Options, compare
from deepvision.verify.compare import option_map as option_map
from deepvision.verify.extract import FALLBACKS, extract_answer
from deepvision.verify.pool import SymbolicPool, default_pool


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


def compare_answers(
    pred: str, gold: str, options: Options = None, ctx: _Ctx | None = None
) -> tuple[bool, str, str]:
    """(correct, method, reason) for an extracted answer against one reference answer (the
    comparators of `compare.py`, in their order; symbolic comparison as the last resort)."""
    ctx = ctx or _Ctx(default_pool(), None)
    return compare(pred, gold, options, Compare(ctx if ctx.pool is not None else None))


def final_answer(
    pred: str | None, extract: bool | None = None, fallbacks: Sequence[str] = FALLBACKS
) -> str | None:
    """The answer a verdict is about, or None when `pred` has none: the one place where
    "extract or not" is decided. `extract=True`: `pred` is a whole response (its last box, else
    the `fallbacks`); `False`: `pred` is the answer itself; `None`: a response when it has a
    box (or a `</think>`) or says what its answer is ("The answer is 7.", an `Answer:` line),
    else the answer itself."""
    text = (pred or "").replace("\x00", "")
    if extract is False:
        return text.strip() or None
    found = extract_answer(text, fallbacks)
    if found or extract or any(m in text for m in ("\\boxed", "\\fbox", "</think>")):
        return found or None
    return text.strip() or None


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
