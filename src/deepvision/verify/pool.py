"""A pool of symbolic-comparison worker processes with a hard per-item time limit.

Each worker is a plain subprocess (`python -m deepvision.verify.symbolic`) talking JSON lines
over pipes, so the pool works from any thread, asyncio task, daemon process or Ray worker: no
signals, no fork of the caller. A worker that overruns the limit is killed and replaced; one
that dies (out of memory, crash) is replaced too. Memory per worker is capped with RLIMIT_AS.

Two bounds, kept apart because they mean different things: `timeout` limits the comparison
itself (an answer that overruns it is the answer's doing), `wait` limits the time spent waiting
for a free, started worker (the pool's load, not the answer's doing). A caller is served first
come, first served; one that gets no worker within `wait` gets `no_worker` back, never a guess.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MAX_MEMORY_MB = 2048
_START_TIMEOUT_S = 60.0


@dataclass
class SymbolicResult:
    """One comparison's outcome. `equal` is None when it was not decided: the answer does not
    parse, the worker crashed, the comparison ran and overran its limit (`timed_out`), or it
    never ran because no worker was free within the wait (`no_worker`)."""

    equal: bool | None
    reason: str
    timed_out: bool = False
    elapsed: float = 0.0  # seconds of comparison
    no_worker: bool = False
    waited: float = 0.0  # seconds spent waiting for a worker


def _no_worker(patience: float, since: float) -> SymbolicResult:
    """The result of a comparison that never ran: no worker was free within `patience`."""
    reason = f"no symbolic worker free within {patience:g} s (busy or starting)"
    return SymbolicResult(None, reason, no_worker=True, waited=time.monotonic() - since)


class _Worker:
    def __init__(self, max_memory_mb: int) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deepvision.verify.symbolic", str(max_memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self.ready = False

    def _readline(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def wait_ready(self, timeout: float = _START_TIMEOUT_S) -> bool:
        """True once the worker has said it is ready; False if not within `timeout`."""
        if not self.ready:
            line = self._readline(timeout)
            if line is None:
                return False
            if not line:
                raise RuntimeError("symbolic worker did not start (is math-verify installed?)")
            self.ready = True
        return True

    def settled(self) -> bool:
        """Not worth waiting for: ready, or dead (the caller finds out and replaces it)."""
        try:
            return self.wait_ready(0)
        except RuntimeError:
            return True

    def ask(self, gold: str, pred: str, timeout: float) -> SymbolicResult | None:
        """The answer, or None when the worker overran `timeout` or died."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"g": gold, "p": pred}) + "\n")
            self.proc.stdin.flush()
            line = self._readline(timeout)
        except (OSError, ValueError):
            return None
        if not line:
            return None
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            return None
        return SymbolicResult(msg.get("ok"), msg.get("r", ""))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass


class SymbolicPool:
    """Thread-safe: `compare()` may be called from many threads at once (one item per
    worker at a time; callers are served in arrival order, preferring workers already started).

    `timeout` is the comparison time limit, `wait` (default: `timeout`) how long a caller may
    wait for a worker before it gets `no_worker`. The first use waits for the workers to start
    (up to a minute), once."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
        wait: float | None = None,
    ) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.wait = timeout if wait is None else wait
        self.max_memory_mb = max_memory_mb
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._queue: deque[object] = deque()  # callers waiting for a worker, in arrival order
        self._started = False
        self._up = threading.Event()  # set once the first start has finished
        self._closed = False
        self.replaced = 0

    def start(self) -> SymbolicPool:
        """Start every worker now and wait until they are ready (else: on first use). A caller
        that comes while another is starting the pool waits for that start."""
        with self._cond:
            if self._closed:
                raise RuntimeError("SymbolicPool is closed")
            fresh = [] if self._started else [_Worker(self.max_memory_mb) for _ in range(self.size)]
            self._started = True
            self._all += fresh
        if not fresh:
            self._up.wait(_START_TIMEOUT_S)
            return self
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            for w in fresh:
                with contextlib.suppress(RuntimeError):  # a worker that failed is replaced on use
                    w.wait_ready(max(0.0, deadline - time.monotonic()))
        finally:
            with self._cond:
                self._idle += fresh
                self._cond.notify_all()
            self._up.set()
        return self

    def _take(self, deadline: float) -> _Worker | None:
        """An idle worker once this caller's turn comes, or None at `deadline`."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or not self._idle:
                    if self._closed:
                        raise RuntimeError("SymbolicPool is closed")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
                for k, w in enumerate(self._idle):  # a worker that is ready, if any
                    if w.settled():
                        return self._idle.pop(k)
                return self._idle.pop(0)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next caller in line may now be first

    def _put(self, w: _Worker) -> None:
        with self._cond:
            self._idle.append(w)
            self._cond.notify_all()

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._cond:
            if w in self._all:
                self._all.remove(w)
            self.replaced += 1
            if self._closed:
                return
            fresh = _Worker(self.max_memory_mb)  # starts now, ready by the next call
            self._all.append(fresh)
        self._put(fresh)

    def _ready_worker(self, patience: float) -> _Worker | SymbolicResult:
        """A started worker within `patience` seconds, else the result of not getting one:
        `no_worker` when none was free (or done starting) in time, or why the one taken could
        not start (it is replaced)."""
        t0 = time.monotonic()
        deadline = t0 + max(0.0, patience)
        w = self._take(deadline)
        if w is None:
            return _no_worker(patience, t0)
        try:
            ready = w.wait_ready(max(0.0, deadline - time.monotonic()))
        except RuntimeError as exc:
            self._replace(w)
            return SymbolicResult(None, str(exc), waited=time.monotonic() - t0)
        if not ready:
            self._put(w)  # still starting: it serves whoever comes once it is up
            return _no_worker(patience, t0)
        return w

    def compare(
        self, gold: str, pred: str, timeout: float | None = None, wait: float | None = None
    ) -> SymbolicResult:
        """Equal or not, decided within `timeout` seconds (default: the pool's) of comparison
        time, after at most `wait` seconds (default: the pool's) waiting for a started worker.
        A comparison that overruns is `timed_out`; one that found no worker in time is
        `no_worker` and did not run. Returns within `wait + timeout` seconds plus the moment
        it takes to kill an overrunning worker (and, on first use, the pool's start)."""
        limit = self.timeout if timeout is None else timeout
        patience = self.wait if wait is None else wait
        self.start()
        t0 = time.monotonic()
        w = self._ready_worker(patience)
        if isinstance(w, SymbolicResult):
            return w
        t1 = time.monotonic()
        waited = t1 - t0
        result = w.ask(gold, pred, max(0.0, limit))
        elapsed = time.monotonic() - t1
        if result is None:
            alive = w.alive()
            self._replace(w)
            if alive:
                reason = f"timed out after {limit:g} s"
                return SymbolicResult(None, reason, True, elapsed, waited=waited)
            return SymbolicResult(
                None, "symbolic worker died (replaced)", False, elapsed, waited=waited
            )
        result.elapsed, result.waited = elapsed, waited
        if w.alive():
            self._put(w)
        else:
            self._replace(w)
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._all, self._idle = self._all, [], []
            self._cond.notify_all()
        for w in workers:
            w.kill()


_default: SymbolicPool | None = None
_default_pid: int | None = None
_default_lock = threading.Lock()


def default_pool() -> SymbolicPool:
    """The process-wide pool (recreated in a forked child, which must not share pipes)."""
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default = SymbolicPool()
            _default_pid = os.getpid()
        return _default


@atexit.register
def _close_default() -> None:
    if _default is not None and _default_pid == os.getpid():
        _default.close()
