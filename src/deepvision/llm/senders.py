"""Sender processes: request bodies built and HTTP attempts made off the main event loop.

A request of `infer` costs its client far more CPU in the HTTP exchange (aiohttp, the kernel's
copy of a ~90 KB body) and in building that body (image files read, base64, JSON) than in
anything else. `SenderPool` runs that part in a few worker processes, each with its own event
loop and connection pool, so it runs on every core; the main process keeps everything that
decides: which server, when to retry, what is written. A sender only makes one attempt:

    main  --(id, url, request params, messages, portable image sources)-->  sender
    main  <--(id, "ok", completion) | (id, "error", EndpointError) | (id, "input", reason)--

("input": the item's own input cannot be made into a request, an unreadable image say; it
comes back as a DataError, and trying again cannot help.)

Only small things cross the pipe (the messages with image *references*, the parsed reply), so
the main process does not copy bodies either. Output stays exactly-once: only the main process
writes, and an attempt whose sender died is not an answer (`SenderGone`): the caller sends it
again. A sender is a fresh interpreter (`workers.python_worker`: it holds no file of the main
process) that ends when its pipe closes or its parent is gone. Until it has started and said so, the
main process sends from itself; a small run never waits for one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import pickle
import socket
import struct
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from deepvision.errors import DataError, EndpointError, SenderGone
from deepvision.llm.endpoint import Endpoint
from deepvision.llm.http import ModelSession
from deepvision.llm.messages import ImageSource, PortableImage, body_with, messages_json
from deepvision.workers import end_with_parent, python_worker

__all__ = ["SenderPool", "close_shared_pool", "portable", "shared_pool"]

log = logging.getLogger(__name__)

_HEAD = struct.Struct("!I")  # the length of the pickled frame that follows


def portable(images: Sequence[ImageSource]) -> bool:
    """Whether a sender process can read these image sources (they pickle as references)."""
    return all(isinstance(s, PortableImage) for s in images)


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEAD.pack(len(data)) + data


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    """The next frame, or None at the end of the stream."""
    try:
        (size,) = _HEAD.unpack(await reader.readexactly(_HEAD.size))
        return pickle.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


# -- the sender process ------------------------------------------------------------------------

# What a sender process runs (`workers.python_worker`: argv[1] is its parent); {fd}: its pipe.
_CHILD = (
    "import sys; from deepvision.llm.senders import sender_main; "
    "sender_main(int(sys.argv[1]), {fd})"
)


def sender_main(parent: int, fd: int) -> None:
    """A sender process: reads its endpoint from the pipe, says it is ready, then makes the
    attempts it is given until the pipe closes."""
    end_with_parent(parent)
    asyncio.run(_serve(socket.socket(fileno=fd)))


async def _serve(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
    setup = await _read_frame(reader)
    if setup is None:
        return
    endpoint, connections = setup
    tasks: set[asyncio.Task[None]] = set()
    async with ModelSession(endpoint, connections=connections) as session:
        while (frame := await _read_frame(reader)) is not None:
            if frame == "ping":  # a run attached: it learns that this sender is ready
                writer.write(_frame("ready"))
                continue
            task = asyncio.create_task(_attempt(session, writer, *frame))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    writer.close()


async def _attempt(
    session: ModelSession,
    writer: asyncio.StreamWriter,
    rid: int,
    url: str,
    params: dict[str, Any],
    messages: list[dict[str, Any]],
    images: list[ImageSource],
) -> None:
    """Build one body and make one attempt; the outcome goes back as one frame."""
    try:
        body = body_with(params, messages_json(messages, images))
    except (DataError, ValueError, OSError) as exc:
        outcome: tuple[Any, ...] = (rid, "input", str(exc))
    except Exception as exc:  # an input nobody foresaw: this item fails alone
        outcome = (rid, "input", f"{type(exc).__name__}: {exc}")
    else:
        try:
            outcome = (rid, "ok", await session.complete(url, body))
        except EndpointError as exc:
            outcome = (rid, "error", exc)
        except Exception as exc:  # a bug of ours: reported as an unusable attempt
            outcome = (rid, "error", EndpointError(f"{type(exc).__name__}: {exc}"))
    writer.write(_frame(outcome))


# -- the main process's side -------------------------------------------------------------------


class _Sender:
    """One sender process seen from the main process: its pipe, and while a run uses it, that
    run's connection to the pipe and its attempts in flight. `alive` once it said it is ready,
    until its pipe closes."""

    def __init__(self, endpoint: Endpoint, connections: int) -> None:
        ours, theirs = socket.socketpair()
        try:
            code = _CHILD.format(fd=theirs.fileno())
            self.proc = python_worker(code, pass_fds=(theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.setup: tuple[Endpoint, int] | None = (endpoint, connections)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.listening: asyncio.Task[None] | None = None
        self.alive = False
        self.ended = False

    async def attach(self) -> None:
        """Connect the running event loop to the pipe (through a copy of its end, so that
        `detach` leaves the pipe open for the next run); the first time, send the setup. The
        sender answers the ping once it is ready: only then does this run use it."""
        reader, self.writer = await asyncio.open_connection(sock=self.sock.dup(), limit=1 << 22)
        if self.setup is not None:
            self.writer.write(_frame(self.setup))
            self.setup = None
        self.writer.write(_frame("ping"))
        self.listening = asyncio.create_task(self._listen(reader))

    def detach(self) -> None:
        """Disconnect the run's event loop; the process waits for the next run (a 'ready'
        left unread is no loss: the next run pings again)."""
        self.alive = False
        if self.listening is not None:
            self.listening.cancel()
            self.listening = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        while (frame := await _read_frame(reader)) is not None:
            if frame == "ready":
                self.alive = True
                continue
            rid, kind, payload = frame
            fut = self.pending.pop(rid, None)
            if fut is None or fut.done():
                continue
            if kind == "ok":
                fut.set_result(payload)
            elif kind == "input":
                fut.set_exception(DataError(payload))
            else:
                fut.set_exception(payload)
        self._gone()

    def _gone(self) -> None:
        if not self.ended:
            log.warning("a sender process ended (exit code %s)", self.proc.poll())
        self.alive, self.ended = False, True
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SenderGone("the sender process ended during the attempt"))

    def close(self) -> None:
        """End the pipe now (a transport would only close on its loop's next turn): the
        sender sees the end of its input (at once, or when it has started) and exits."""
        self.ended = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.detach()
        self.sock.close()
        self._gone()


class SenderPool:
    """`processes` sender processes sharing `endpoint`'s connections; `attempt` sends one
    request through the least busy one. A pool is kept between runs (`shared_pool`): the
    chunks of a curation stage and the benchmarks of an evaluation each call `infer`, and
    starting interpreters for each would cost more than they save. While none is ready (not
    started yet, none could start, all died) `ready` is False and the caller sends itself."""

    def __init__(self, processes: int, endpoint: Endpoint) -> None:
        self.processes = processes
        self.endpoint = endpoint
        self._senders: list[_Sender] = []
        self._ids = itertools.count()
        self._started = False
        self.closed = False

    @property
    def ready(self) -> bool:
        """At least one sender is running and said to this run that it is ready."""
        return any(s.alive for s in self._senders)

    async def start(self) -> None:
        """Start the processes if they are not running yet (each is ready a moment later,
        when it has imported what it needs) and attach them to the running event loop. Where
        none can be started, the caller goes on sending itself."""
        if self.processes < 1 or self.closed:
            return
        try:
            if not self._started:
                self._started = True
                total = self.endpoint.concurrency * len(self.endpoint.urls)
                share = -(-total // self.processes)
                for _ in range(self.processes):
                    self._senders.append(_Sender(self.endpoint, share))
            for sender in self._senders:
                if not sender.ended and sender.writer is None:
                    await sender.attach()
        except (OSError, RuntimeError) as exc:  # no process or pipe can be made here
            log.warning("requests are sent from the main process: %s", exc)
            self.close()

    def serves(self, processes: int, endpoint: Endpoint) -> bool:
        return (self.processes, self.endpoint) == (processes, endpoint)

    def detach(self) -> None:
        """The run ends: keep the processes for the next one, unless an attempt is still in
        flight (a run cut short): its reply could reach the next run, so they are closed."""
        if any(s.pending for s in self._senders):
            self.close()
            return
        for sender in self._senders:
            sender.detach()

    async def attempt(
        self,
        url: str,
        params: dict[str, Any],
        messages: list[dict[str, Any]],
        images: list[ImageSource],
    ) -> dict[str, Any]:
        """One attempt at `url`: the completion, or EndpointError (the server's or the
        transport's failure), DataError (the item's own input), SenderGone (ask again)."""
        live = [s for s in self._senders if s.alive]
        if not live:
            raise SenderGone("no sender process is running")
        sender = min(live, key=lambda s: len(s.pending))
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        sender.pending[rid] = fut
        assert sender.writer is not None
        try:
            sender.writer.write(_frame((rid, url, params, messages, images)))
        except (OSError, RuntimeError):
            sender._gone()
        return await fut

    def close(self, wait: float = 0.0) -> None:
        """Close every pipe: each sender ends its attempts and exits on its own (one still
        starting, once it has started). `wait`: seconds to wait for them, then kill."""
        self.closed = True
        for sender in self._senders:
            sender.close()
        if wait <= 0:
            return
        deadline = time.monotonic() + wait
        for sender in self._senders:
            try:
                sender.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                sender.proc.kill()
                sender.proc.wait()


# The pool kept between runs: one at a time (a run for another endpoint or size closes it), so
# idle senders never pile up; closed when the process exits.
_shared: SenderPool | None = None


def shared_pool(processes: int, endpoint: Endpoint) -> SenderPool:
    """The sender pool for `endpoint`, the one kept from an earlier run when it matches."""
    global _shared
    pool = _shared
    if pool is not None and not pool.closed and pool.serves(processes, endpoint):
        return pool
    if pool is not None:
        pool.close()  # no wait: a run for another endpoint starts now
    _shared = SenderPool(processes, endpoint)
    return _shared


def close_shared_pool(wait: float = 1.0) -> None:
    """End the kept sender processes (at exit, or to free them earlier), waiting up to
    `wait` seconds for them to exit before killing them."""
    global _shared
    pool, _shared = _shared, None
    if pool is not None:
        pool.close(wait)


atexit.register(close_shared_pool)
