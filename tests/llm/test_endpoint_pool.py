"""The endpoint pool: least-busy choice, benching after failures in a row, probing, and never
benching the last working server."""

import asyncio

import pytest

from deepvision.llm.pool import EndpointPool


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _pool(n=2, capacity=2, **kw):
    clock = Clock()
    return EndpointPool([f"u{i}" for i in range(n)], capacity, clock=clock, **kw), clock


def test_the_least_busy_server_within_its_capacity_takes_the_request():
    pool, _ = _pool(n=2, capacity=2)
    taken = [pool.pick().url for _ in range(4)]
    assert sorted(taken) == ["u0", "u0", "u1", "u1"] and taken[:2] == ["u0", "u1"]
    assert pool.pick() is None  # all busy
    pool.release(pool.servers[1], ok=True)
    assert pool.pick().url == "u1"


def test_a_failing_server_is_benched_then_probed_with_one_request():
    pool, clock = _pool(n=2, capacity=4, bench_after=2, bench_seconds=30)
    bad, _ = pool.servers
    for _ in range(2):
        bad.outstanding += 1
        pool.release(bad, ok=False)
    assert bad.benched_until == 130.0
    assert {pool.pick().url for _ in range(4)} == {"u1"} and pool.pick() is None
    assert pool.next_probe_in() == 30.0
    clock.now = 131.0
    probe = pool.pick()
    assert probe is bad and pool.pick() is None  # one probe at a time
    pool.release(bad, ok=False)  # the probe fails: benched again
    assert bad.benched_until == 161.0
    clock.now = 162.0
    pool.pick()
    pool.release(bad, ok=True)  # back in service, full capacity
    assert bad.failures == 0 and not bad.probing
    assert [pool.pick() for _ in range(3)] == [bad, bad, bad]


def test_the_last_working_server_is_never_benched():
    pool, _ = _pool(n=1, capacity=2, bench_after=1, bench_seconds=3600)
    (only,) = pool.servers
    for _ in range(10):
        assert pool.pick() is only
        pool.release(only, ok=False)
    assert only.benched_until == 0.0 and pool.pick() is only
    # two servers failing alike: the first to fail is benched, the other one then is not
    pool, _ = _pool(n=2, capacity=1, bench_after=1)
    a, b = pool.servers
    pool.pick(), pool.pick()
    pool.release(a, ok=False)
    pool.release(b, ok=False)
    assert a.benched_until > 0.0 and b.benched_until == 0.0
    assert pool.pick() is b


def test_failures_that_are_not_the_servers_fault_do_not_count():
    pool, _ = _pool(n=2, bench_after=1)
    a = pool.pick()
    pool.release(a, ok=None)  # e.g. HTTP 400 for a prompt too long
    assert a.failures == 0 and a.benched_until == 0.0


def test_waiters_are_woken_one_per_freed_slot():
    async def go():
        pool, _ = _pool(n=1, capacity=1)
        first = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        pool.release(first, ok=True)
        got = await asyncio.wait_for(waiter, 1)
        assert got is first and got.outstanding == 1

    asyncio.run(go())


def test_an_empty_pool_is_refused():
    with pytest.raises(ValueError):
        EndpointPool([], 4)
