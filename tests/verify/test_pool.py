"""The symbolic pool: a hard time limit from any thread or task, bounded, self-healing."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from deepvision.verify import SymbolicPool, check

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
    pool = SymbolicPool(workers=1, timeout=1.0)
    try:
        worst = 0.0
        for bad in PATHOLOGICAL:
            for gold, pred in ((bad, "1"), ("1", bad), (bad, bad + "+1")):
                t = time.perf_counter()
                v = check(pred, gold, pool=pool)
                worst = max(worst, time.perf_counter() - t)
                assert v.correct in (True, False)
        # A hang, not a slow machine: the limit plus a generous margin for the kill and a
        # loaded CI host (a check that ignored the limit would take minutes here).
        assert worst < 1.0 + HANG_MARGIN_S
        # The pool still works after killing workers.
        assert check("(x+1)^2", "x^2+2x+1", pool=pool).correct
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


def test_a_dead_worker_is_replaced():
    pool = SymbolicPool(workers=1, timeout=5.0)
    try:
        assert pool.compare("x+x", "2x").equal
        w = pool._idle[0]
        w.proc.kill()
        w.proc.wait()
        res = pool.compare("x+x", "2x")
        assert res.equal is None and "died" in res.reason
        assert pool.compare("x+x", "2x").equal
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
    assert time.perf_counter() - t < 1.0 + HANG_MARGIN_S
