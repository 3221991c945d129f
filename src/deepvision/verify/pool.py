"""A pool of symbolic-comparison worker processes with a hard per-item time limit.

Each worker is a process of its own talking JSON lines (`symbolic.serve`), so the pool works
from any thread, asyncio task, daemon process or Ray worker: no signals, no fork of the caller.
On Linux the workers are forked from one fork server (`python -m deepvision.verify.pool`) that
has imported math-verify once: N workers, and every replacement of a killed one, cost one
start-up instead of N (about 2 s of CPU each, which is what a small judge run on a loaded
machine used to spend most of its time on). Elsewhere, or if the fork server fails, each worker
is an interpreter of its own (`python -m deepvision.verify.symbolic`). A worker that overruns
the limit is killed and replaced; one that dies (out of memory, crash) is replaced too. Memory
per worker is capped with RLIMIT_AS.

Two bounds, kept apart because they mean different things: `timeout` limits the comparison
itself (an answer that overruns it is the answer's doing), `wait` limits the time spent waiting
for a free, started worker (the pool's load, not the answer's doing). A caller is served first
come, first served; one that gets no worker within `wait` gets `no_worker` back, never a guess.

Verdicts are cached per pool by the (reference, answer) pair compared (bounded, least recently
used out first): the same pair is not compared twice. Only verdicts a worker reached are kept;
a pair left undecided (no worker in time, overran, unparsable, worker died) is asked again.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import IO

DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MAX_MEMORY_MB = 2048
DEFAULT_CACHE_SIZE = 65536  # (reference, answer) pairs
_CACHE_MAX_CHARS = 8_000_000  # and at most this many characters of them (~ tens of MB)
_START_TIMEOUT_S = 60.0
# Forking workers needs pidfds (a worker is not our child: a pidfd kills it, never a reused pid).
_CAN_FORK = all(
    (hasattr(os, "pidfd_open"), hasattr(socket, "send_fds"), hasattr(signal, "pidfd_send_signal"))
)


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


class _VerdictCache:
    """The verdicts workers reached, by the (gold, pred) pair compared (both already cleaned by
    the rules). Only a verdict is kept (equal or not, from a comparison that ran to its end), so
    a hit never decides what no comparison decided. Bounded by pairs and by characters; the
    least recently used pair goes first. Thread-safe."""

    def __init__(self, max_entries: int, max_chars: int = _CACHE_MAX_CHARS) -> None:
        self.max_entries = max(0, max_entries)
        self.max_chars = max_chars
        self._items: OrderedDict[tuple[str, str], tuple[bool, str]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, gold: str, pred: str) -> SymbolicResult | None:
        with self._lock:
            found = self._items.get((gold, pred))
            if found is None:
                return None
            self._items.move_to_end((gold, pred))
        return SymbolicResult(found[0], found[1])

    def put(self, gold: str, pred: str, result: SymbolicResult) -> None:
        size = len(gold) + len(pred) + len(result.reason)
        if result.equal is None or not self.max_entries or size > self.max_chars:
            return
        with self._lock:
            if (gold, pred) in self._items:
                return
            self._items[(gold, pred)] = (result.equal, result.reason)
            self._chars += size
            while len(self._items) > self.max_entries or self._chars > self.max_chars:
                (g, p), (_, reason) = self._items.popitem(last=False)
                self._chars -= len(g) + len(p) + len(reason)


class _Worker:
    """One comparison process, spoken to in `symbolic.serve`'s JSON lines over `reader` and
    `writer`: an interpreter of its own (`spawn`) or a child of the fork server (`forked`)."""

    def __init__(
        self, reader: IO[str], writer: IO[str], pid: int, proc: subprocess.Popen | int
    ) -> None:
        self.reader, self.writer, self.pid = reader, writer, pid
        self._proc = proc  # the Popen of a spawned worker, the pidfd of a forked one
        self._sock: socket.socket | None = None
        self._kill_lock = threading.Lock()
        self.ready = False

    @classmethod
    def spawn(cls, max_memory_mb: int) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deepvision.verify.symbolic", str(max_memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert proc.stdout is not None and proc.stdin is not None
        return cls(proc.stdout, proc.stdin, proc.pid, proc)

    @classmethod
    def forked(cls, sock: socket.socket, pidfd: int, pid: int) -> _Worker:
        w = cls(
            sock.makefile("r", encoding="utf-8"), sock.makefile("w", encoding="utf-8"), pid, pidfd
        )
        w._sock = sock
        return w

    def _readline(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.reader], [], [], timeout)
        if not ready:
            return None
        return self.reader.readline()

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
        try:
            self.writer.write(json.dumps({"g": gold, "p": pred}) + "\n")
            self.writer.flush()
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
        proc = self._proc
        if isinstance(proc, subprocess.Popen):
            return proc.poll() is None
        try:  # a pidfd turns readable when its process has ended
            return proc >= 0 and not select.select([proc], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """Kill the process (if it still runs), wait until it is gone, free its pipes."""
        with self._kill_lock:  # the pool's close() and a replacement may race here
            proc, self._proc = self._proc, -1
        if isinstance(proc, subprocess.Popen):
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        elif proc >= 0:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(proc, signal.SIGKILL)
                select.select([proc], [], [], 5)
            os.close(proc)
        for f in (self.writer, self.reader, self._sock):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


class _ForkServer:
    """A process that has imported math-verify once and forks ready workers from itself on
    request (`_serve_forks`): a new worker is up in milliseconds instead of seconds."""

    def __init__(self, max_memory_mb: int) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deepvision.verify.pool",
                str(theirs.fileno()),
                str(max_memory_mb),
            ],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        theirs.close()
        self._chan = ours
        self._lock = threading.Lock()
        self._up: bool | None = None  # None: starting; False: gone (the pool spawns instead)

    def _ready(self, timeout: float) -> bool:
        if self._up is None:
            self._chan.settimeout(timeout)
            try:
                self._up = self._chan.recv(1) == b"R"
            except TimeoutError:
                return False
            except OSError:
                self._up = False
        return self._up

    def fork(self, timeout: float = _START_TIMEOUT_S) -> _Worker | None:
        """A new worker, or None when the server is not up within `timeout` or has failed."""
        with self._lock:
            if not self._ready(timeout):
                return None
            try:
                self._chan.settimeout(timeout)
                self._chan.sendall(b"F")
                msg, fds, _, _ = socket.recv_fds(self._chan, 32, 2)
            except OSError:  # gone, or too slow to answer: out of step, so not used again
                self._up = False
                return None
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self._up = self._up and msg == b"-"  # that one fork failed; the server is fine
            return None
        return _Worker.forked(socket.socket(fileno=fds[0]), fds[1], int(msg))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._chan.close()
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


# One comparison of each kind the workers meet (equations, factoring, radicals, decimals of pi,
# intervals, sets, trigonometry, exponentials, logarithms): sympy sets each kind up on first use
# (0.1-0.3 s apiece), and a worker forked after this inherits all of it instead of paying again.
_WARM_UP_PAIRS = (
    ("y=3x+2", "3x-y+2=0"),
    ("x^2-9", "(x-3)(x+3)"),
    ("4\\sqrt{3}", "\\sqrt{48}"),
    ("5\\pi", "15.70"),
    ("[1,2)", "[1,2]"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("\\sin x", "\\cos x"),
    ("e^{x}", "\\exp(x)"),
    ("\\log_2 8", "3"),
)


def _serve_forks(fd: int, max_memory_mb: int) -> None:
    """The fork server (`python -m deepvision.verify.pool FD MB`): import math-verify and warm
    it up on every kind of comparison once, say ready, then fork one worker per byte received on
    socket `fd`, sending back its socket, a pidfd and its pid. Forked workers are reaped by the
    kernel. Ends when the pool's end of the socket closes (the pool closed or its process
    died)."""
    from deepvision.verify import symbolic

    chan = socket.socket(fileno=fd)
    symbolic.prepare()
    for gold, pred in _WARM_UP_PAIRS:
        with contextlib.suppress(Exception):
            symbolic.symbolic_equal(gold, pred)
    symbolic.parse_answer.cache_clear()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    chan.sendall(b"R")
    while chan.recv(1):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            chan.close()
            ours.close()
            _be_worker(theirs, max_memory_mb)
        theirs.close()
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # it died at once: say so, send nothing
            socket.send_fds(chan, [b"-"], [])
            ours.close()
            continue
        socket.send_fds(chan, [str(pid).encode()], [ours.fileno(), pidfd])
        ours.close()
        os.close(pidfd)


def _be_worker(sock: socket.socket, max_memory_mb: int) -> None:
    """In a forked child: serve comparisons on `sock` as stdin and stdout, then exit."""
    from deepvision.verify import symbolic

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.dup2(sock.fileno(), 0)
    os.dup2(sock.fileno(), 1)
    sock.close()
    try:
        with open(0, encoding="utf-8") as stdin, open(1, "w", encoding="utf-8") as stdout:
            sys.stdin, sys.stdout = stdin, stdout
            symbolic.serve(max_memory_mb)
    finally:
        os._exit(0)  # never back into the fork server's loop


class SymbolicPool:
    """Thread-safe: `compare()` may be called from many threads at once (one item per
    worker at a time; callers are served in arrival order, preferring workers already started).

    `timeout` is the comparison time limit, `wait` (default: `timeout`) how long a caller may
    wait for a worker before it gets `no_worker`. The workers start on the first comparison
    that is not in the cache (`cache_size` pairs; 0: no cache), which waits for them (up to a
    minute), once."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
        wait: float | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
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
        self._server: _ForkServer | None = None
        self._cache = _VerdictCache(cache_size)
        self.replaced = 0

    def start(self) -> SymbolicPool:
        """Start every worker now and wait until they are ready (else: on first use). A caller
        that comes while another is starting the pool waits for that start."""
        with self._cond:
            if self._closed:
                raise RuntimeError("SymbolicPool is closed")
            first, self._started = not self._started, True
            if first and _CAN_FORK:
                self._server = _ForkServer(self.max_memory_mb)
        if not first:
            self._up.wait(_START_TIMEOUT_S)
            return self
        deadline = time.monotonic() + _START_TIMEOUT_S
        fresh: list[_Worker] = []
        try:
            for _ in range(self.size):
                fresh.append(self._new_worker())
            for w in fresh:
                with contextlib.suppress(RuntimeError):  # a worker that failed is replaced on use
                    w.wait_ready(max(0.0, deadline - time.monotonic()))
        finally:
            with self._cond:
                closed = self._closed  # closed while starting: these were never handed out
                if not closed:
                    self._all += fresh
                    self._idle += fresh
                self._cond.notify_all()
            for w in fresh if closed else ():
                w.kill()
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

    def _new_worker(self) -> _Worker:
        """A worker forked by the fork server, or, where there is none (or it failed), a
        worker started as an interpreter of its own."""
        server = self._server
        return (server.fork() if server is not None else None) or _Worker.spawn(self.max_memory_mb)

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
        fresh = self._new_worker()  # forked: ready at once; spawned: by the next call
        with self._cond:
            if self._closed:
                fresh.kill()
                return
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
        it takes to kill an overrunning worker (and, on first use, the pool's start). A pair
        already decided comes from the cache, at once."""
        cached = self._cache.get(gold, pred)
        if cached is not None:
            return cached
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
        self._cache.put(gold, pred, result)
        if w.alive():
            self._put(w)
        else:
            self._replace(w)
        return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._all, self._idle = self._all, [], []
            server, self._server = self._server, None
            self._cond.notify_all()
        for w in workers:
            w.kill()
        if server is not None:
            server.close()


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


if __name__ == "__main__":
    _serve_forks(int(sys.argv[1]), int(sys.argv[2]))
