"""The symbolic pool: a hard time limit from any thread or task, bounded, self-healing; under
load a check that gets no worker in time is undecided, never wrong."""

import asyncio
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepvision.verify import SymbolicPool, check, verify_batch

# Time limits are asserted only against hangs: the limit plus this margin, so that a loaded
# 2-core machine cannot fail them while a check that ignores its limit still does.
HANG_MARGIN_S = 10.0

PATHOLOGICAL = [
    "10^{10^{10}}",
    "{" * 1000 + "1" + "}" * 1000,
    "(" * 1000 + "x" + ")" * 1000,
    "x" * 1_000_000,
    "\\frac{1}{",
    "\\frac{\\frac{\\sqrt{}}{}}{",
    "a\x00b",
    "\\begin{matrix}",
    "😀∑∫≈ÆØ",
    "2^{2^{2^{2^{2^{2^{2}}}}}}",
    "9999999999!",
]


def test_pathological_answers_return_within_the_limit():
    # A long wait: the next check after a kill waits for the replacement worker to start.
    pool = SymbolicPool(workers=1, timeout=1.0, wait=HANG_MARGIN_S)
    try:
        worst = 0.0
        for bad in PATHOLOGICAL:
            for gold, pred in ((bad, "1"), ("1", bad), (bad, bad + "+1")):
                t = time.perf_counter()
                v = check(pred, gold, pool=pool)
                worst = max(worst, time.perf_counter() - t)
                assert v.correct in (True, False) and not v.undecided
        # A hang, not a slow machine: the limit plus a generous margin for the kill and a
        # loaded CI host (a check that ignored the limit would take minutes here).
        assert worst < 1.0 + HANG_MARGIN_S
        # The pool still works after killing workers.
        assert check(r"2\sin(x)\cos(x)", r"\sin(2x)", pool=pool).correct
    finally:
        pool.close()


def test_timeout_counts_as_wrong_and_worker_is_replaced():
    pool = SymbolicPool(workers=1, timeout=0.5)
    try:
        res = pool.compare("10^{10^{10}}+1", "10^{10^{10}}")
        assert not res.equal
        if res.timed_out:
            assert pool.replaced == 1
        assert pool.compare("x+x", "2x").equal
    finally:
        pool.close()


def _kill_from_outside(pool: SymbolicPool) -> None:
    """Kill the pool's idle worker as the OOM killer would, and wait until it is gone."""
    w = pool._idle[0]
    os.kill(w.pid, signal.SIGKILL)
    deadline = time.monotonic() + HANG_MARGIN_S
    while w.alive() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_dead_worker_is_replaced():
    pool = SymbolicPool(workers=1, timeout=5.0)
    try:
        assert pool.compare("x+x", "2x").equal
        _kill_from_outside(pool)
        res = pool.compare("x+x+x", "3x")  # a pair not compared yet: it needs the worker
        assert res.equal is None and "died" in res.reason
        assert pool.compare("x+x+x", "3x").equal
    finally:
        pool.close()


def test_works_from_threads_and_asyncio_tasks(pool):
    def work(i):
        return check(f"(x+{i})^2", f"x^2+{2 * i}x+{i * i}", pool=pool).correct

    with ThreadPoolExecutor(8) as ex:
        assert all(ex.map(work, range(16)))

    async def main():
        return await asyncio.gather(*(asyncio.to_thread(work, i) for i in range(8)))

    assert all(asyncio.run(main()))
    # and from a non-main thread on its own (signal-based timeouts fail there)
    out = []
    t = threading.Thread(target=lambda: out.append(work(3)))
    t.start()
    t.join()
    assert out == [True]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.text(min_size=1, max_size=50))
def test_check_never_raises_and_answers_in_time(pool, pred, gold):
    t = time.perf_counter()
    v = check(pred, gold, pool=pool, timeout=1.0)
    assert isinstance(v.correct, bool)
    assert time.perf_counter() - t < 1.0 + pool.wait + HANG_MARGIN_S


def _hold_the_worker(pool: SymbolicPool) -> threading.Thread:
    """Start a comparison that overruns any limit, and return once it holds the one worker."""
    out: list = []
    holder = threading.Thread(target=lambda: out.append(pool.compare("9999999999!", "1")))
    holder.result = out  # type: ignore[attr-defined]
    holder.start()
    deadline = time.monotonic() + HANG_MARGIN_S
    while pool._idle and time.monotonic() < deadline:
        time.sleep(0.01)
    return holder


def test_no_worker_in_time_is_told_apart_from_a_comparison_that_overran():
    pool = SymbolicPool(workers=1, timeout=1.0, wait=0.2).start()
    try:
        holder = _hold_the_worker(pool)
        t = time.perf_counter()
        busy = pool.compare("x+x", "2x")
        assert time.perf_counter() - t < 0.2 + HANG_MARGIN_S
        assert (busy.equal, busy.no_worker, busy.timed_out) == (None, True, False)
        assert "no symbolic worker free within 0.2 s" in busy.reason
        holder.join()
        overran = holder.result[0]
        assert (overran.equal, overran.no_worker, overran.timed_out) == (None, False, True)
        # the same busy moment seen by check(): undecided, not wrong
        assert pool.compare("1", "1", wait=HANG_MARGIN_S).equal  # the replacement is up
        holder = _hold_the_worker(pool)
        v = check(r"2\sin(x)\cos(x)", r"\sin(2x)", pool=pool)  # no rule decides it
        assert (v.correct, v.undecided, v.method) == (False, True, "undecided")
        assert "no symbolic worker free" in v.reason
        holder.join()
        # and a comparison of its own that overran is wrong, as before, and says so
        v = check("1", "9999999999!", pool=pool, wait=HANG_MARGIN_S)
        assert not v.correct and not v.undecided and "timed out counts as wrong" in v.reason
    finally:
        pool.close()


# Right and wrong answers that are cheap to compare, and answers whose comparison overruns any
# short limit (each holds a worker for the whole limit, then is killed and replaced).
def _load_items(n: int = 32) -> list[tuple[str, str, bool]]:
    items = []
    for i in range(n):
        if i % 16 == 5:
            items.append(("1", "9999999999!", False))
        else:
            right = i % 4 != 3
            # `\sin(x)` keeps them from the rules (polynomials are decided without a worker)
            gold = f"x^2+{2 * i}x+{i * i + (0 if right else 1)}+\\sin(x)"
            items.append((f"(x+{i})^2+\\sin(x)", gold, right))
    return items


LIMIT_S = 1.0


def _check_from_8_threads(pool: SymbolicPool, wait: float) -> list[tuple[float, object, bool]]:
    def one(item):
        pred, gold, expected = item
        t = time.perf_counter()
        v = check(pred, gold, pool=pool, timeout=LIMIT_S, wait=wait)
        return time.perf_counter() - t, v, expected

    with ThreadPoolExecutor(8) as ex:
        return list(ex.map(one, _load_items()))


def test_under_load_every_check_returns_in_bounded_time_and_is_never_wrong_for_waiting():
    """8 threads against 2 workers with a short limit: each call returns within its wait and
    limit (plus a margin for kills), and an answer is right, or undecided, never turned wrong
    by the wait (the old pool let calls queue for tens of seconds)."""
    pool = SymbolicPool(workers=2, timeout=LIMIT_S).start()
    try:
        results = _check_from_8_threads(pool, wait=0.3)
    finally:
        pool.close()
    assert max(took for took, _, _ in results) < LIMIT_S + 0.3 + HANG_MARGIN_S
    assert [v for _, v, expected in results if v.correct != expected and not v.undecided] == []
    undecided = [v for _, v, _ in results if v.undecided]
    assert undecided, "the load never made a check wait: the test does not test waiting"
    assert all("no symbolic worker free within 0.3 s" in v.reason for v in undecided)


def test_with_enough_wait_every_check_under_load_is_decided():
    pool = SymbolicPool(workers=2, timeout=LIMIT_S).start()
    try:
        results = _check_from_8_threads(pool, wait=120.0)
    finally:
        pool.close()
    assert [v.undecided for _, v, _ in results] == [False] * len(results)
    assert [v.correct for _, v, _ in results] == [expected for _, _, expected in results]


def test_a_big_batch_on_a_busy_small_pool_is_decided_whole():
    """The batch owns its queue: a short wait does not leave items undecided merely because
    the batch is big (an item that found no worker is tried again in a next round)."""
    items = _load_items()
    pool = SymbolicPool(workers=2, timeout=LIMIT_S, wait=0.3).start()
    try:
        verdicts = verify_batch([{"pred": p, "gold": g} for p, g, _ in items], pool=pool, threads=8)
    finally:
        pool.close()
    assert [v.undecided for v in verdicts] == [False] * len(items)
    assert [v.correct for v in verdicts] == [expected for _, _, expected in items]


def test_an_option_left_uncompared_leaves_the_choice_undecided():
    """Matching an answer to an option's text: one option not compared could have matched
    too, so the choice is undecided rather than right or wrong, even when the other option's
    comparison is known from the cache. When every comparison it needs has really run before,
    the cache decides it with the worker busy."""
    pool = SymbolicPool(workers=1, timeout=2.0, wait=0.2).start()
    try:
        pred, options = r"2\sin(x)\cos(x)", [r"\cos(2x)", r"\sin(2x)"]
        decided = check(pred, "B", options=options, pool=pool)
        assert (decided.correct, decided.method) == (True, "choice")
        holder = _hold_the_worker(pool)
        v = check(pred, "A", options=[r"\sin(2x)", r"\tan(x)"], pool=pool)  # tan: never compared
        again = check(pred, "B", options=options, pool=pool)
        holder.join()
    finally:
        pool.close()
    assert (v.correct, v.undecided) == (False, True)
    assert (again.correct, again.method, again.reason) == (True, "choice", decided.reason)


def test_a_pair_compared_once_is_answered_from_the_cache_at_once():
    pool = SymbolicPool(workers=1, timeout=2.0, wait=0.2).start()
    try:
        first = pool.compare("x^2+2x+1", "(x+1)^2")
        wrong = pool.compare("x^2+1", "(x+1)^2")
        holder = _hold_the_worker(pool)
        # the only worker is held: a pair not in the cache would come back no_worker
        repeat, repeat_wrong = pool.compare("x^2+2x+1", "(x+1)^2"), pool.compare("x^2+1", "(x+1)^2")
        new = pool.compare("x^2+4x+4", "(x+2)^2")
        holder.join()
    finally:
        pool.close()
    assert (first.equal, wrong.equal) == (True, False)
    assert (repeat.equal, repeat.reason) == (True, first.reason) and not repeat.no_worker
    assert (repeat_wrong.equal, repeat_wrong.reason) == (False, wrong.reason)
    assert new.no_worker  # a pair never compared still needs a worker


def test_what_was_not_decided_is_not_cached():
    """No worker in time, and a comparison that overran: neither is remembered, so the same
    pair is compared for real the next time."""
    pool = SymbolicPool(workers=1, timeout=2.0, wait=0.2).start()
    try:
        holder = _hold_the_worker(pool)
        busy = pool.compare("x+x+x+x", "4x")
        holder.join()
        assert busy.no_worker
        assert pool.compare("x+x+x+x", "4x", wait=HANG_MARGIN_S).equal  # compared now
        assert holder.result[0].timed_out
        again = pool.compare("9999999999!", "1", timeout=0.3, wait=HANG_MARGIN_S)
        assert (again.equal, again.timed_out) == (None, True)  # ran (and overran) again
    finally:
        pool.close()


def test_the_cache_is_bounded_oldest_pair_out_first():
    pool = SymbolicPool(workers=1, timeout=2.0, wait=0.2, cache_size=2).start()
    try:
        for k in (2, 3, 4):
            assert pool.compare(f"{k}x", "+".join(["x"] * k)).equal
        holder = _hold_the_worker(pool)
        newest = pool.compare("4x", "x+x+x+x")
        oldest = pool.compare("2x", "x+x")
        holder.join()
    finally:
        pool.close()
    assert newest.equal and oldest.no_worker


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux")
def test_workers_and_their_replacements_are_forked_from_one_server():
    """The workers are forked from one process that imported math-verify once (N workers cost
    one start-up), and so is the replacement of a worker killed for overrunning."""
    pool = SymbolicPool(workers=2, timeout=0.5).start()
    try:
        parents = {_parent_pid(w.pid) for w in pool._idle}
        assert len(parents) == 1 and os.getpid() not in parents
        assert pool.compare("9999999999!", "1").timed_out
        assert pool.replaced == 1
        assert {_parent_pid(w.pid) for w in pool._idle} == parents
        assert pool.compare("x+x", "2x").equal
    finally:
        pool.close()


def test_a_batch_on_a_pool_that_stays_busy_comes_back_undecided_in_bounded_time():
    pool = SymbolicPool(workers=1, timeout=5.0, wait=0.2).start()
    try:
        holder = _hold_the_worker(pool)
        t = time.perf_counter()
        verdicts = verify_batch(
            [{"pred": "5", "gold": "5"}]
            + [{"pred": f"(x+{i})^2+\\sin(x)", "gold": "x^2"} for i in range(6)],
            pool=pool,
        )
        took = time.perf_counter() - t
    finally:
        pool.close()
    holder.join()
    assert took < 5.0 + HANG_MARGIN_S
    assert (verdicts[0].correct, verdicts[0].method) == (True, "exact")  # the rules decide
    assert [v.undecided for v in verdicts[1:]] == [True] * 6
