"""Which server takes the next request: the least busy one that is up, within its capacity.

A server that fails `bench_after` times in a row is benched for `bench_seconds` (its share of
the work goes to the others), then probed with a single request: a success brings it back,
a failure benches it again. A server is benched only while another one is working (its last
request succeeded): the pool never benches its last working server, so a lone endpoint that
fails half of its requests keeps being used instead of stalling the run (issue 13: 150 s for
300 problems when it was benched for 30 s after every 5 failures in a row).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from deepvision.llm.endpoint import redact_url

__all__ = ["EndpointPool", "Server"]

log = logging.getLogger(__name__)


@dataclass
class Server:
    """One URL's state: requests in flight, failures in a row, benched until when."""

    url: str
    capacity: int
    outstanding: int = 0
    failures: int = 0
    benched_until: float = 0.0
    probing: bool = False  # back from the bench: one request at a time until one succeeds
    sent: int = 0

    def usable(self, now: float) -> bool:
        if self.benched_until > now:
            return False
        limit = 1 if self.probing else self.capacity
        return self.outstanding < limit


class EndpointPool:
    """`server = await pool.acquire()` ... `pool.release(server, ok)`; see the module doc."""

    def __init__(
        self,
        urls: Sequence[str],
        capacity: int,
        *,
        bench_after: int = 5,
        bench_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.servers = [Server(u, max(1, capacity)) for u in urls]
        self.bench_after = max(1, bench_after)
        self.bench_seconds = bench_seconds
        self.clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()

    def pick(self) -> Server | None:
        """The usable server with the fewest requests in flight (now taken: its count is
        raised), or None when every server is busy or benched."""
        now = self.clock()
        best = None
        for s in self.servers:
            if s.usable(now) and (best is None or s.outstanding < best.outstanding):
                best = s
        if best is not None:
            best.outstanding += 1
            best.sent += 1
        return best

    def next_probe_in(self) -> float | None:
        """Seconds until a benched server may be probed (None when none is benched)."""
        now = self.clock()
        waits = [s.benched_until - now for s in self.servers if s.benched_until > now]
        return max(0.0, min(waits)) if waits else None

    async def acquire(self) -> Server:
        """A server for one request, waiting while all are busy or benched."""
        while True:
            server = self.pick()
            if server is not None:
                return server
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, self.next_probe_in())
            except TimeoutError:
                pass
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake(1)  # pass the wake-up on: this waiter will not use it
                raise

    def release(self, server: Server, ok: bool | None) -> None:
        """The request on `server` is over: `ok` True (it answered), False (it failed in a way
        that may be the server's: timeout, reset, 5xx, bad body) or None (not its fault)."""
        server.outstanding -= 1
        if ok:
            was_probing = server.probing
            server.failures, server.probing, server.benched_until = 0, False, 0.0
            self._wake(len(self._waiters) if was_probing else 1)
            return
        if ok is False:
            server.failures += 1
            if server.probing or server.failures >= self.bench_after:
                self._bench(server)
        self._wake(1)

    def _bench(self, server: Server) -> None:
        now = self.clock()
        working = [
            s
            for s in self.servers
            if s is not server and s.benched_until <= now and not s.probing and s.failures == 0
        ]
        if not working:  # never bench the last working server
            server.probing = False
            return
        if server.benched_until <= now:
            log.warning(
                "endpoint %s benched for %gs after %d failure(s) in a row",
                redact_url(server.url),
                self.bench_seconds,
                server.failures,
            )
        server.benched_until = now + self.bench_seconds
        server.probing = True

    def _wake(self, count: int) -> None:
        while count > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                count -= 1
