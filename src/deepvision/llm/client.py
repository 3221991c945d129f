"""The async inference engine: continuous batching over OpenAI-compatible endpoints with
exactly-once, resumable JSONL output.

- A fixed number of requests in flight per endpoint; a shared queue feeds every endpoint's
  workers, so faster endpoints take more (least-outstanding balancing).
- Prompts are built and images encoded only when a worker is about to send the request: peak
  memory depends on concurrency, not on the dataset.
- Output lines are keyed by problem id (a line holds samples 0..n-1). Re-running skips keys
  already written; a torn last line from a killed run is cut off on start; duplicate ids in the
  input are reported and sent once.
- Retries with exponential backoff and jitter for 429/5xx/timeouts/connection errors/bad bodies
  (honouring Retry-After); other 4xx go straight to the errors file with the server's message;
  an endpoint that keeps failing is benched and probed again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deepvision.llm.chat import RETRY_STATUS
from deepvision.llm.messages import ImageSource, openai_messages
from deepvision.records import Completion

log = logging.getLogger(__name__)


@dataclass
class Request:
    """One problem to send: its key, the fields to keep in the output, messages with
    `<image>` placeholders and lazy image sources."""

    key: str
    fields: dict[str, Any]
    messages: list[dict[str, str]]
    images: list[ImageSource] = field(default_factory=list)


@dataclass
class InferConfig:
    endpoints: list[str]
    model: str
    concurrency: int = 32  # requests in flight per endpoint
    n: int = 1
    sampling: dict[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    timeout: float = 600.0
    max_attempts: int = 4
    backoff: float = 1.0
    bench_after: int = 5  # consecutive failures that bench an endpoint
    bench_seconds: float = 30.0
    api_key: str | None = None


@dataclass
class InferSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0  # already in the output
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    first_request_s: float | None = None

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s else 0.0


class _Failure(Exception):
    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class _Endpoint:
    url: str
    failures: int = 0
    benched_until: float = 0.0
    outstanding: int = 0


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no newline) left by a killed run; returns bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # find the last newline, reading backwards in blocks
        pos, block = size, 1 << 16
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                fh.truncate(start + nl + 1)
                return size - (start + nl + 1)
            pos = start
        fh.truncate(0)
        return size


def done_keys(path: Path, key_field: str = "id") -> set[str]:
    keys: set[str] = set()
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    keys.add(str(json.loads(line)[key_field]))
    return keys


class _Writer:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a", encoding="utf-8")

    def write(self, rec: dict[str, Any]) -> None:
        # One write call per line, flushed: a kill leaves at most one torn last line.
        self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


async def _post(
    client: httpx.AsyncClient, ep: _Endpoint, body: dict[str, Any], cfg: InferConfig
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    url = ep.url.rstrip("/") + "/chat/completions"
    try:
        resp = await client.post(url, json=body, headers=headers, timeout=cfg.timeout)
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise _Failure(f"{type(exc).__name__}: {exc}".strip(), True) from None
    if resp.status_code == 200:
        try:
            data = resp.json()
            data["choices"][0]["message"]
            return data
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Failure(f"malformed response body: {resp.text[:200]!r}", True) from None
    retry_after = None
    with contextlib.suppress(ValueError):
        retry_after = min(60.0, float(resp.headers.get("retry-after", "")))
    retryable = resp.status_code in RETRY_STATUS or resp.status_code >= 500
    raise _Failure(f"HTTP {resp.status_code}: {resp.text[:500]}", retryable, retry_after)


async def infer(
    requests: Iterable[Request],
    out: str | Path,
    cfg: InferConfig,
    *,
    errors: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> InferSummary:
    """Send every request not already in `out`; append one line per finished problem."""
    out = Path(out)
    errors_path = Path(errors) if errors else out.with_name(out.stem + ".errors.jsonl")
    if not cfg.endpoints:
        raise ValueError("no endpoint given")
    repair_tail(out)
    finished = done_keys(out)
    summary = InferSummary()
    t_start = time.monotonic()
    endpoints = [_Endpoint(u) for u in cfg.endpoints]
    slots = max(1, cfg.concurrency) * len(endpoints)
    queue: asyncio.Queue = asyncio.Queue(maxsize=slots)
    retry_q: asyncio.Queue = asyncio.Queue()
    state = {"outstanding": 0, "producer_done": False}
    all_done = asyncio.Event()
    writer = _Writer(out)
    err_writer: _Writer | None = None

    def record_error(req: Request, reason: str, attempts: int) -> None:
        nonlocal err_writer
        if err_writer is None:
            err_writer = _Writer(errors_path)
        err_writer.write(
            {
                "id": req.key,
                "reason": reason,
                "attempts": attempts,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
        summary.failed += 1

    def finish_one() -> None:
        state["outstanding"] -= 1
        if progress:
            progress(1)
        if state["producer_done"] and state["outstanding"] == 0:
            all_done.set()

    async def produce() -> None:
        seen: set[str] = set()
        for req in requests:
            if req.key in finished:
                summary.skipped += 1
                if progress:
                    progress(1)
                continue
            if req.key in seen:
                summary.duplicates += 1
                if len(summary.duplicate_examples) < 20:
                    summary.duplicate_examples.append(req.key)
                continue
            seen.add(req.key)
            state["outstanding"] += 1
            await queue.put((req, 1))
        state["producer_done"] = True
        if state["outstanding"] == 0:
            all_done.set()

    def schedule_retry(item: tuple[Request, int], delay: float) -> None:
        summary.retries += 1
        asyncio.get_running_loop().call_later(delay, retry_q.put_nowait, item)

    async def next_item() -> tuple[Request, int] | None:
        while True:
            if not retry_q.empty():
                return retry_q.get_nowait()
            if all_done.is_set():
                return None
            getter = asyncio.ensure_future(queue.get())
            retry_getter = asyncio.ensure_future(retry_q.get())
            done_waiter = asyncio.ensure_future(all_done.wait())
            finished_set, pending = await asyncio.wait(
                {getter, retry_getter, done_waiter}, return_when=asyncio.FIRST_COMPLETED
            )
            for p in pending:
                p.cancel()
            got = None
            for t in (retry_getter, getter):
                if t in finished_set and not t.cancelled():
                    if got is None:
                        got = t.result()
                    else:  # both arrived: put the second back
                        retry_q.put_nowait(t.result())
            if got is not None:
                return got
            if all_done.is_set():
                return None

    async def one_request(client, ep: _Endpoint, req: Request, n: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": openai_messages(req.messages, req.images),
            "n": n,
            **cfg.sampling,
        }
        if cfg.max_tokens:
            body["max_tokens"] = cfg.max_tokens
        if summary.first_request_s is None:
            summary.first_request_s = time.monotonic() - t_start
        summary.requests += 1
        ep.outstanding += 1
        try:
            return await _post(client, ep, body, cfg)
        finally:
            ep.outstanding -= 1

    async def work(client: httpx.AsyncClient, ep: _Endpoint) -> None:
        while True:
            item = await next_item()
            if item is None:
                return
            req, attempt = item
            wait = ep.benched_until - time.monotonic()
            if wait > 0:  # benched: hand the item to another endpoint, probe later
                await retry_q.put(item)
                await asyncio.sleep(min(wait, 1.0))
                continue
            t0 = time.monotonic()
            try:
                texts, finishes = [], []
                usage = {"prompt_tokens": 0, "completion_tokens": 0}
                while len(texts) < cfg.n:
                    data = await one_request(client, ep, req, cfg.n - len(texts))
                    for ch in data["choices"][: cfg.n - len(texts)]:
                        texts.append(str((ch.get("message") or {}).get("content") or ""))
                        finishes.append(ch.get("finish_reason"))
                    u = data.get("usage") or {}
                    for k in usage:
                        usage[k] += int(u.get(k) or 0)
            except ValueError as exc:  # bad prompt (placeholder count): not retryable
                record_error(req, str(exc), attempt)
                finish_one()
                continue
            except _Failure as exc:
                ep.failures += 1
                now = time.monotonic()
                if ep.failures >= cfg.bench_after and ep.benched_until <= now:
                    ep.benched_until = now + cfg.bench_seconds
                    log.warning(
                        "endpoint %s benched for %ss after %d failures in a row (last: %s)",
                        ep.url,
                        cfg.bench_seconds,
                        ep.failures,
                        exc,
                    )
                if exc.retryable and attempt < cfg.max_attempts:
                    delay = exc.retry_after or cfg.backoff * 2 ** (attempt - 1) * (
                        0.5 + random.random()
                    )
                    schedule_retry((req, attempt + 1), delay)
                else:
                    record_error(req, str(exc), attempt)
                    finish_one()
                continue
            ep.failures = 0
            ep.benched_until = 0.0
            shared = dict(
                usage=usage,
                latency_s=round(time.monotonic() - t0, 3),
                endpoint=ep.url,
                model=cfg.model,
                sampling={"n": cfg.n, **cfg.sampling, "max_tokens": cfg.max_tokens},
            )
            samples = [
                Completion(req.key, k, t, f, **shared)
                for k, (t, f) in enumerate(zip(texts, finishes, strict=True))
            ]
            writer.write(Completion.to_output_line(req.fields, samples))
            summary.done += 1
            summary.prompt_tokens += usage["prompt_tokens"]
            summary.completion_tokens += usage["completion_tokens"]
            finish_one()

    ssl_context = httpx.create_ssl_context()  # built once: loading CA certificates is slow

    async def worker(ep: _Endpoint) -> None:
        # One connection per worker, each in its own client: httpx's shared pool scans every
        # connection for every request, which costs more than the request at 64+ in flight.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits, verify=ssl_context) as client:
            await work(client, ep)

    try:
        workers = [
            asyncio.create_task(worker(ep))
            for ep in endpoints
            for _ in range(max(1, cfg.concurrency))
        ]
        producer = asyncio.create_task(produce())
        await producer
        await all_done.wait()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        writer.close()
        if err_writer is not None:
            err_writer.close()
    summary.wall_s = time.monotonic() - t_start
    return summary


def summary_dict(s: InferSummary) -> dict[str, Any]:
    d = asdict(s)
    d.update(requests_per_s=round(s.requests_per_s, 2), tokens_per_s=round(s.tokens_per_s, 2))
    return d
