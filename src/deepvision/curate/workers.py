"""Worker processes that do not outlive the process that started them.

A `kill -9` of a curation command gives its pool no chance to shut down, and a worker left
waiting for work would live on, re-parented, holding its memory. So each worker asks Linux to
send it SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), then checks that the process
that started the pool is still there (it may have died before the request took effect).
Where prctl is not available, a thread in the worker watches that process instead.

With the `forkserver` start method the parent is the fork server, which exits when the
process that started it dies; the worker follows it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
_WATCH_S = 1.0  # how often the fallback thread looks for the parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _parent_death_signal() -> bool:
    """Ask the kernel for SIGKILL when the parent dies; False where that cannot be asked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(creator: int) -> None:
    while _alive(creator):
        time.sleep(_WATCH_S)
    os._exit(1)


def die_with(creator: int) -> None:
    """Run in a worker when it starts: end it as soon as `creator` (the pid that made the
    pool) is gone."""
    if not _parent_death_signal():
        threading.Thread(target=_watch, args=(creator,), daemon=True).start()
    if not _alive(creator):
        os._exit(1)


def tied_process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers die with the process that calls this (see module doc)."""
    return ProcessPoolExecutor(workers, initializer=die_with, initargs=(os.getpid(),))
