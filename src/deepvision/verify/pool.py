"""A pool of symbolic-comparison worker processes with a hard per-item time limit.

Each worker is a plain subprocess (`python -m deepvision.verify.symbolic`) talking JSON lines
over pipes, so the pool works from any thread, asyncio task, daemon process or Ray worker: no
signals, no fork of the caller. A worker that overruns the limit is killed and replaced; one
that dies (out of memory, crash) is replaced too. Memory per worker is capped with RLIMIT_AS.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MAX_MEMORY_MB = 2048
_START_TIMEOUT_S = 60.0


@dataclass
class SymbolicResult:
    equal: bool | None  # None: could not decide (parse failure, timeout, crash)
    reason: str
    timed_out: bool = False


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
    worker at a time; callers wait for a free worker)."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    ) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.max_memory_mb = max_memory_mb
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = 0
        self._all: list[_Worker] = []
        self.replaced = 0
        self._closed = False

    def _new_worker(self) -> _Worker:
        w = _Worker(self.max_memory_mb)
        with self._lock:
            self._all.append(w)
        return w

    def _take(self, timeout: float) -> _Worker | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("SymbolicPool is closed")
            start = self._idle.empty() and self._started < self.size
            if start:
                self._started += 1
        if start:
            return self._new_worker()
        try:
            return self._idle.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def _give_back(self, w: _Worker) -> None:
        if w.alive():
            self._idle.put(w)
            return
        self._replace(w)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
            self.replaced += 1
            closed = self._closed
        if not closed:
            self._idle.put(self._new_worker())

    def compare(self, gold: str, pred: str, timeout: float | None = None) -> SymbolicResult:
        """Equal or not within `timeout` seconds (default: the pool's), all waiting included:
        for a free worker, for a fresh worker to start, and for the answer."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        timed_out = SymbolicResult(None, f"timed out after {limit:g} s", timed_out=True)
        w = self._take(limit)
        if w is None:
            return timed_out
        try:
            ready = w.wait_ready(max(0.0, deadline - time.monotonic()))
        except RuntimeError as exc:
            self._replace(w)
            return SymbolicResult(None, str(exc))
        if not ready:  # still starting (after a replacement): let it finish for the next call
            self._idle.put(w)
            return timed_out
        result = w.ask(gold, pred, max(0.0, deadline - time.monotonic()))
        if result is None:
            alive = w.alive()
            self._replace(w)
            return timed_out if alive else SymbolicResult(None, "symbolic worker died (replaced)")
        self._give_back(w)
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
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
