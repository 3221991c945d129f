"""Worker processes that never outlive the command that started them.

A command killed with SIGKILL cannot stop its process pool, and a worker waiting for work would
live on, re-parented, holding its memory. Every process pool of the toolkit comes from
`process_pool`: each worker runs `end_with_parent` first, a daemon thread that ends it as soon as
its parent is gone (the creator with fork or spawn; with forkserver the fork server, which ends
with the creator). Nothing happens where there is no such notion (Windows). A long-lived worker
that talks over its own pipe (`infer`'s senders) is a fresh interpreter from `python_worker`,
which calls `end_with_parent` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["end_with_parent", "process_pool", "python_worker"]

_PARENT_POLL_S = 0.25


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def end_with_parent(creator: int) -> None:
    """Pool-worker initializer: end this worker (exit 1) within a quarter second of its parent's
    end; at once if `creator`, the process that made the pool, is already gone."""
    if os.name != "posix":
        return
    parent = os.getppid()
    if parent != creator and not _running(creator):  # gone before this worker started
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers end with the process that made it, however it ends
    (`kill -9` included)."""
    return ProcessPoolExecutor(workers, initializer=end_with_parent, initargs=(os.getpid(),))


def python_worker(code: str, *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """A long-lived worker: a fresh interpreter running `code`, holding no open file of this
    process but `pass_fds` (a forked worker would keep this process's listening sockets and
    pipes open as long as it lives). `code` must call `end_with_parent(int(sys.argv[1]))`
    first: argv[1] is this process's pid."""
    return subprocess.Popen(
        [sys.executable, "-c", code, str(os.getpid())],
        stdin=subprocess.DEVNULL,
        pass_fds=pass_fds,
    )
