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
    elapsed: float = 0.0  # seconds of comparison


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
    worker at a time; callers wait for a free worker, preferring workers already started)."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    ) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.max_memory_mb = max_memory_mb
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._started = False
        self._closed = False
        self.replaced = 0

    def start(self) -> SymbolicPool:
        """Start every worker now and wait until they are ready (else: on first use)."""
        with self._cond:
            if self._closed:
                raise RuntimeError("SymbolicPool is closed")
            fresh = [] if self._started else [_Worker(self.max_memory_mb) for _ in range(self.size)]
            self._started = True
            self._all += fresh
        for w in fresh:
            with contextlib.suppress(RuntimeError):  # a worker that failed is replaced on use
                w.wait_ready()
        with self._cond:
            self._idle += fresh
            self._cond.notify_all()
        return self

    def _take(self) -> _Worker:
        if not self._started:
            self.start()
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise RuntimeError("SymbolicPool is closed")
                self._cond.wait(1.0)
            for k, w in enumerate(self._idle):  # a worker that is ready, if any
                if w.ready or w.wait_ready(0):
                    return self._idle.pop(k)
            return self._idle.pop(0)

    def _put(self, w: _Worker) -> None:
        with self._cond:
            self._idle.append(w)
            self._cond.notify()

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

    def compare(self, gold: str, pred: str, timeout: float | None = None) -> SymbolicResult:
        """Equal or not, decided within `timeout` seconds (default: the pool's) of comparison
        time. Waiting for a free worker, or for a replacement worker to start, is not counted:
        it is not the item's doing."""
        limit = self.timeout if timeout is None else timeout
        w = self._take()
        try:
            w.wait_ready()
        except RuntimeError as exc:
            self._replace(w)
            return SymbolicResult(None, str(exc))
        t0 = time.monotonic()
        result = w.ask(gold, pred, max(0.0, limit))
        elapsed = time.monotonic() - t0
        if result is None:
            alive = w.alive()
            self._replace(w)
            if alive:
                return SymbolicResult(None, f"timed out after {limit:g} s", True, elapsed)
            return SymbolicResult(None, "symbolic worker died (replaced)", False, elapsed)
        result.elapsed = elapsed
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
