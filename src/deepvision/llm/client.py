"""The async inference engine: continuous batching over an Endpoint's servers, with
exactly-once, resumable JSONL output.

Four small parts, each testable alone:

- `EndpointPool` (llm/pool.py): the least busy server that is up takes the next request; a
  server failing again and again is benched and probed later.
- `Dispatcher`: the work queue. New items are read just ahead of need (memory depends on
  concurrency, not on the dataset); retries come back when their delay is up; it knows when
  all is settled.
- `SenderPool` (llm/senders.py): each attempt's body is built (image files read, base64,
  JSON) and sent by one of a few sender processes, each with its own event loop, so the HTTP
  work runs on every core while this process only decides and writes. Items whose images are
  not `PortableImage`s, small runs, and runs where no sender process can run are built and
  sent from this process, as before.
- `SampleFanOut`: n samples per problem, over as many requests as the server needs (a server
  that ignores `n` answers one at a time); the output line of a finished problem.
- `infer`: the workers. Each takes an item, sends one request, and settles it: written to the
  output, scheduled again (retryable failure, attempts left; `llm.http.retry_delay`), or
  recorded in the errors file with its reason. A worker catches every exception: an item that
  breaks something fails alone, the run goes on. An item is settled once, whatever fails
  after.

Output and errors are `records.AppendLog`s keyed by problem id, named by `records.InferFiles`;
the lines finished in one turn of the event loop are written together at its end, so a kill
loses only the requests in flight. A file that cannot be written (a full disk) stops the run
at once with a one-line error: every line written before is whole and kept, and a re-run
resumes (a torn last line is cut first). Re-running skips the ids already in the output; an
output line that cannot be read (a corrupt middle line, a line without `id`) is an error
naming file:line, never repaired by dropping it. The errors file holds the failures of the
latest run only, since a re-run tries every item not yet in the output again. Duplicate ids
in the input are reported and sent once.

A retry goes out at once when the server answered (an HTTP 500, an unusable reply) and is
still answering others (`_Run._retry_wait`): a lone server failing half of its requests at
random does 300 problems in seconds, not minutes of backoff. A server that is busy (429, 503),
restarting or down is waited out: as long as it asked (Retry-After, capped), or exponentially
by the item's failures (`llm.http.retry_delay`). Every wait is counted in the summary
(`retries`, `waited_s`, `retry_after_waits`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepvision.errors import DataError, DeepVisionError, EndpointError, SenderGone, UsageError
from deepvision.llm.endpoint import Endpoint, redact_text, redact_url
from deepvision.llm.http import ModelSession, check_endpoint, retry_delay, server_answered
from deepvision.llm.messages import ImageSource, body_with, messages_json
from deepvision.llm.pool import EndpointPool, Server
from deepvision.llm.senders import portable, shared_pool
from deepvision.records import AppendLog, Completion, InferFiles

__all__ = [
    "Dispatcher",
    "InferConfig",
    "InferSummary",
    "Job",
    "Request",
    "SampleFanOut",
    "infer",
    "summary_dict",
]

log = logging.getLogger(__name__)

_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass
class Request:
    """One problem to send: its key, the fields to keep in the output, messages with
    `<image>` placeholders and lazy image sources. `error` marks an input item that cannot be
    sent (a bad line, say): it is recorded as failed with that reason, without a request."""

    key: str
    fields: dict[str, Any]
    messages: list[dict[str, Any]]
    images: list[ImageSource] = field(default_factory=list)
    error: str | None = None


@dataclass
class InferConfig:
    """The job: which model and servers (`endpoint`), how many samples per problem, the
    sampling parameters and token limit, and when to bench a failing server."""

    endpoint: Endpoint
    n: int = 1
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    bench_after: int = 5  # consecutive failures that bench a server
    bench_seconds: float = 30.0
    # processes building and sending the requests (None: one per core, at most 2 (their
    # memory counts); 0: none, this process sends)
    senders: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise UsageError("must be >= 1", param="n")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError("must be >= 1", param="max_tokens")
        if self.senders is None:
            self.senders = min(2, os.cpu_count() or 1)


@dataclass
class InferSummary:
    """What a run did. Every input item is counted once: `inputs` = `done` + `failed` +
    `skipped` + `duplicates`."""

    inputs: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0  # already in the output
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0  # retry waits (backoff, Retry-After), summed over items
    retry_after_waits: int = 0  # retries that waited as long as a server asked (capped)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    first_request_s: float | None = None

    @property
    def settled(self) -> int:
        """Items accounted for: equal to `inputs` once a run has ended."""
        return self.done + self.failed + self.skipped + self.duplicates

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s else 0.0


def summary_dict(s: InferSummary) -> dict[str, Any]:
    d = asdict(s)
    d.update(requests_per_s=round(s.requests_per_s, 2), tokens_per_s=round(s.tokens_per_s, 2))
    return d


class Job:
    """One problem on its way: its request, failed tries so far, the samples collected."""

    __slots__ = (
        "encoded",
        "failures",
        "finishes",
        "fresh",
        "req",
        "settled",
        "started",
        "texts",
        "url",
        "usage",
    )

    def __init__(self, req: Request) -> None:
        self.req = req
        self.failures = 0
        self.texts: list[str] = []
        self.finishes: list[str | None] = []
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.started = 0.0
        self.url = ""
        self.fresh = True  # not yet handed to a worker
        self.settled = False  # written or given up: nothing may count it again
        self.encoded: bytes | None = None  # the messages' JSON, once built here


class Dispatcher:
    """The work queue: `put` new jobs (waits while `lookahead` of them are queued), `next`
    for a worker (None: everything is settled, stop), `again` / `retry_later` to send a job
    once more, `settle` when a job is written or given up."""

    def __init__(self, workers: int, lookahead: int) -> None:
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(max(1, lookahead))
        self._workers = workers
        self._open = 0
        self._input_done = False
        self._ended = False
        self._timers: set[asyncio.TimerHandle] = set()
        self.retries = 0

    async def put(self, job: Job) -> None:
        await self._room.acquire()
        self._open += 1
        self._queue.put_nowait(job)

    async def next(self) -> Job | None:
        job = await self._queue.get()
        if job is not None and job.fresh:
            job.fresh = False
            self._room.release()
        return job

    def again(self, job: Job) -> None:
        self._queue.put_nowait(job)

    def retry_later(self, job: Job, delay: float) -> None:
        self.retries += 1
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._timers.discard(handle)
            self._queue.put_nowait(job)

        handle = loop.call_later(delay, due)
        self._timers.add(handle)

    def settle(self, job: Job) -> None:
        """`job` is written or given up; the second call for a job does nothing."""
        if job.settled:
            return
        job.settled = True
        self._open -= 1
        self._maybe_end()

    def input_done(self) -> None:
        self._input_done = True
        self._maybe_end()

    def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _maybe_end(self) -> None:
        if self._input_done and self._open == 0 and not self._ended:
            self._ended = True
            for _ in range(self._workers):
                self._queue.put_nowait(None)


class SampleFanOut:
    """n samples per problem over as many requests as needed; builds each request's body and
    the finished problem's output line."""

    def __init__(self, cfg: InferConfig) -> None:
        self.n = cfg.n
        self.model = cfg.endpoint.model
        self.sampling = dict(cfg.sampling)
        self.max_tokens = cfg.max_tokens
        self.recorded_sampling = {"n": cfg.n, **cfg.sampling, "max_tokens": cfg.max_tokens}

    def params(self, job: Job) -> dict[str, Any]:
        """The request's parameters, asking for the samples still missing."""
        params: dict[str, Any] = {"model": self.model, "n": self.n - len(job.texts)}
        params.update(self.sampling)
        if self.max_tokens:
            params["max_tokens"] = self.max_tokens
        return params

    def body(self, job: Job) -> bytes:
        """The request's body, built in this process (its messages encoded once per job)."""
        if job.encoded is None:
            job.encoded = messages_json(job.req.messages, job.req.images)
        return body_with(self.params(job), job.encoded)

    def take(self, job: Job, completion: dict[str, Any]) -> bool:
        """Add a reply's choices (as many as are missing) and its usage; True when all n
        samples are in. `completion` passed `llm.http.check_completion`."""
        for choice in completion["choices"][: self.n - len(job.texts)]:
            job.texts.append(choice["message"]["content"])
            job.finishes.append(choice.get("finish_reason"))
        usage = completion.get("usage") or {}
        for k in job.usage:
            job.usage[k] += usage.get(k) or 0
        return len(job.texts) >= self.n

    def line(self, job: Job) -> dict[str, Any]:
        shared = dict(
            usage=dict(job.usage),
            latency_s=round(time.monotonic() - job.started, 3),
            endpoint=redact_url(job.url),
            model=self.model,
            sampling=self.recorded_sampling,
        )
        samples = [
            Completion(job.req.key, k, t, f, **shared)
            for k, (t, f) in enumerate(zip(job.texts, job.finishes, strict=True))
        ]
        return Completion.to_output_line(job.req.fields, samples)


# New items read before the sender processes start: a run with fewer sends from its own
# process (starting processes would cost more than they save).
_SENDERS_AFTER = 16


class _Run:
    """One `infer` call: the pool, the dispatcher, the fan-out, the logs and the workers."""

    def __init__(
        self,
        cfg: InferConfig,
        out: AppendLog,
        errors: AppendLog,
        session: ModelSession,
        progress: Callable[[int], None] | None,
        t_start: float,
    ) -> None:
        ep = cfg.endpoint
        self.endpoint = ep
        self.out, self.errors, self.session = out, errors, session
        self.progress = progress
        self.pool = EndpointPool(
            ep.urls, ep.concurrency, bench_after=cfg.bench_after, bench_seconds=cfg.bench_seconds
        )
        self.workers = ep.concurrency * len(ep.urls)
        self.dispatcher = Dispatcher(self.workers, lookahead=self.workers)
        self.fanout = SampleFanOut(cfg)
        self.senders = shared_pool(cfg.senders or 0, ep)
        self.summary = InferSummary()
        self.t_start = t_start
        self.kept = 0  # output lines known to be on disk
        self._flush_due = False
        self._halted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self, requests: Iterable[Request]) -> None:
        """Send every request; returns once each is settled. Raises what stopped the run
        early: a file that cannot be written, or an error reading the input."""
        tasks = [asyncio.create_task(self.work()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self.produce(requests)))
        # every task ended (or one failed), or the run was halted: whichever comes first
        ended = asyncio.ensure_future(asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION))
        try:
            await asyncio.wait([ended, self._halted], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            self.dispatcher.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for done in (self._halted, *tasks):
            if done.done() and not done.cancelled() and (exc := done.exception()) is not None:
                raise exc

    # -- writing -----------------------------------------------------------------------------

    def _write(self, file: AppendLog, record: dict[str, Any]) -> None:
        """Append one line; the logs are flushed at the end of this turn of the event loop,
        so a kill loses only the requests in flight and a burst of replies costs one write.
        Once the run is halted nothing more is written (the disk may be full)."""
        if self._halted.done():
            return
        file.append(record)  # buffered only (_FLUSHED_BY_THE_RUN): the flush writes
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        if self._flushed(self.out):
            self.kept = self.out.written
            self._flushed(self.errors)

    def _flushed(self, file: AppendLog) -> bool:
        if self._halted.done():
            return False
        try:
            file.flush()
        except OSError as exc:
            self.halt(file.path, exc)
            return False
        return True

    def halt(self, path: Path, exc: OSError) -> None:
        """A file cannot be written (a full disk, say): nothing can go on, so the run ends now
        with one line saying so; the lines written before are kept for a re-run."""
        if not self._halted.done():
            self._halted.set_exception(_cannot_write(path, exc, self.summary, self.kept))

    # -- the work ----------------------------------------------------------------------------

    async def produce(self, requests: Iterable[Request]) -> None:
        """Read the input: each new item to the dispatcher, just ahead of the workers; the
        sender processes start once the run is not a small one."""
        s, seen, new = self.summary, set(), 0
        for req in requests:
            s.inputs += 1
            if req.key in seen:
                s.duplicates += 1
                if len(s.duplicate_examples) < 20:
                    s.duplicate_examples.append(req.key)
            elif req.key in self.out:
                seen.add(req.key)
                s.skipped += 1
                self._tick()
            else:
                seen.add(req.key)
                new += 1
                if new == _SENDERS_AFTER:
                    await self.senders.start()
                await self.dispatcher.put(Job(req))
        self.dispatcher.input_done()

    async def work(self) -> None:
        while (job := await self.dispatcher.next()) is not None:
            try:
                await self._step(job)
            except Exception as exc:  # a bug or a reply nobody foresaw: this item fails alone
                log.debug("item %s failed unexpectedly", job.req.key, exc_info=True)
                if not job.settled:
                    self._give_up(job, f"{type(exc).__name__}: {exc}")

    async def _step(self, job: Job) -> None:
        if job.req.error is not None:  # an input item that cannot be sent
            self._give_up(job, job.req.error)
            return
        remote = self.senders.ready and portable(job.req.images)
        body = b""
        if not remote:
            try:
                body = self.fanout.body(job)
            except (DataError, ValueError, OSError) as exc:  # the item's own input: no retry
                self._give_up(job, str(exc))
                return
        server = await self.pool.acquire()
        try:
            completion = await self._send(job, server, body, remote)
        except EndpointError as exc:
            self.pool.release(server, False if exc.retryable else None)
            self.summary.requests += 1
            self._failed_attempt(job, server, exc)
            return
        except DataError as exc:  # the item's own input, read by a sender: no retry
            self.pool.release(server, None)
            self._give_up(job, str(exc))
            return
        except SenderGone:  # no answer: the job goes again (from here if no sender is left)
            self.pool.release(server, None)
            self.dispatcher.again(job)
            return
        except BaseException:  # cancelled, or a bug of ours: not the server's fault
            self.pool.release(server, None)
            raise
        self.pool.release(server, True)
        s = self.summary
        s.requests += 1
        if not self.fanout.take(job, completion):
            self.dispatcher.again(job)
            return
        self._write(self.out, self.fanout.line(job))
        s.done += 1
        s.prompt_tokens += job.usage["prompt_tokens"]
        s.completion_tokens += job.usage["completion_tokens"]
        self.dispatcher.settle(job)
        self._tick()

    async def _send(self, job: Job, server: Server, body: bytes, remote: bool) -> dict[str, Any]:
        """One attempt: through a sender process (`remote`: it builds the body) or from here."""
        s = self.summary
        if not job.texts:  # latency: from the first request of the samples written
            job.started = time.monotonic()
        job.url = server.url
        if s.first_request_s is None:
            s.first_request_s = time.monotonic() - self.t_start
        if remote:
            params = self.fanout.params(job)
            return await self.senders.attempt(server.url, params, job.req.messages, job.req.images)
        return await self.session.complete(server.url, body)

    def _failed_attempt(self, job: Job, server: Server, exc: EndpointError) -> None:
        """Try `job` again later (retryable, attempts left) or give it up."""
        job.failures += 1
        if not exc.retryable or job.failures >= self.endpoint.attempts:
            self._give_up(job, exc.reason)
            return
        delay = self._retry_wait(job, server, exc)
        job.encoded = None  # built again when it is sent: waiting jobs hold no bodies
        s = self.summary
        s.waited_s += delay
        if exc.retry_after is not None:
            s.retry_after_waits += 1
        self.dispatcher.retry_later(job, delay)

    def _retry_wait(self, job: Job, server: Server, exc: EndpointError) -> float:
        """Seconds before `job` is sent again. At once when its server answered (an HTTP 500, a
        reply that is no usable completion) and fails fewer requests in a row than it holds:
        it is working, waiting would not help it, and the concurrency bounds its load (a lone
        server failing half of its requests at random must not idle the run). Otherwise as
        long as the server asked, or exponentially by the item's failures: a server that is
        busy, restarting or down (it then fails every request in flight) is waited out."""
        if exc.retry_after is None and server_answered(exc) and server.failures < server.capacity:
            return 0.0
        return retry_delay(job.failures, self.endpoint, exc.retry_after)

    def _give_up(self, job: Job, reason: str) -> None:
        """Record `job` in the errors file with its reason; it is settled whatever happens."""
        self.summary.failed += 1
        try:
            self._write(
                self.errors,
                {
                    "id": job.req.key,
                    "reason": redact_text(reason),
                    "attempts": job.failures,
                    "endpoint": redact_url(job.url) if job.url else None,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                },
            )
        finally:
            self.dispatcher.settle(job)
            self._tick()

    def _tick(self) -> None:
        if self.progress:
            self.progress(1)


def _cannot_write(
    path: Path, exc: OSError, s: InferSummary | None = None, kept: int = 0
) -> DeepVisionError:
    """The one-line error of a run stopped by a file it cannot write: what was kept, and how
    to go on."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    told = f"cannot write {path}: {reason}"
    if s is not None and s.inputs:
        unfinished = s.inputs - kept - s.failed - s.skipped - s.duplicates
        told += (
            f"; the run stopped after {s.inputs} input item(s): {kept} written by this run "
            f"and kept, {s.skipped} already done, {s.failed} failed"
            + (f", {s.duplicates} duplicate id(s)" if s.duplicates else "")
            + f", {unfinished} unfinished (sent again by the next run)"
        )
    fix = "free some space" if exc.errno in _FULL_DISK else "fix that"
    return DeepVisionError(f"{told}; {fix} and run the same command again to resume")


def _output_key(record: dict[str, Any]) -> str:
    return str(record["id"])


# The run flushes its logs itself, at the end of each turn of the event loop that appended to
# them (_Run._write): a turn finishes at most one line per worker.
_FLUSHED_BY_THE_RUN = {"flush_lines": 1 << 30, "flush_seconds": float("inf")}


def _open_output(out: Path) -> AppendLog:
    """The output log, its torn last line cut; a line that cannot be read is a DataError
    naming file:line (resuming around it would hide or redo that problem)."""
    try:
        output = AppendLog(out, key=_output_key, **_FLUSHED_BY_THE_RUN)
    except DataError as exc:
        raise DataError(
            f"{exc.reason}; cannot resume from this output: fix or delete that line (each line "
            "is one finished problem with its 'id'), then run the same command again",
            file=exc.file,
            line=exc.line,
        ) from None
    if output.repaired:
        log.info("%s: cut a torn last line (%d bytes) of a run cut short", out, output.repaired)
    return output


def _close(logs: Iterable[AppendLog]) -> OSError | None:
    """Close every log (each is flushed and fsynced); the first failure, its file named."""
    failed = None
    for file in logs:
        try:
            file.close()
        except OSError as exc:
            if failed is None:
                failed = exc
                failed.filename = failed.filename or str(file.path)
    return failed


async def infer(
    requests: Iterable[Request],
    out: str | Path,
    cfg: InferConfig,
    *,
    errors: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    check: bool = True,
) -> InferSummary:
    """Send every request whose key is not already in `out`; append one line per finished
    problem to `out` and one per failed problem to `errors` (default `InferFiles(out).errors`).

    With `check` (the default), every server is asked for its model list first: an
    unreachable URL is an EndpointError, a model it does not serve a UsageError, within
    seconds and before any work. A file that cannot be written ends the run with a
    DeepVisionError saying what was kept; an unreadable output line, with a DataError."""
    t_start = time.monotonic()  # `first_request_s` counts the check and the resume scan
    if check:
        await check_endpoint(cfg.endpoint)
    out = Path(out)
    errors = Path(errors) if errors is not None else InferFiles(out).errors
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch()  # the output exists once a run started, even if nothing is done yet
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    out_log = _open_output(out)
    err_log = None
    try:
        errors.unlink(missing_ok=True)  # a re-run retries every item not in the output
        err_log = AppendLog(errors, key="id", read_keys=False, **_FLUSHED_BY_THE_RUN)
        async with ModelSession(cfg.endpoint) as session:
            run = _Run(cfg, out_log, err_log, session, progress, t_start)
            try:
                await run.run(requests)
            finally:
                run.senders.detach()
    finally:
        failed = _close(x for x in (out_log, err_log) if x is not None)
    if failed is not None:  # the run ended, but its last lines may not have reached the disk
        raise _cannot_write(Path(failed.filename), failed, run.summary, run.kept)
    run.summary.retries = run.dispatcher.retries
    run.summary.wall_s = time.monotonic() - run.t_start
    return run.summary
