"""The one OpenAI-compatible test server with fault injection (tests, benchmarks, dry runs).

    python -m deepvision.cli.fake_server --port 8000 [--fail-rate 0.1] [--reset-rate 0.02] ...

GET /v1/models and /health list `models` (default: none listed, any accepted); POST
/v1/chat/completions answers at once with a deterministic text (`Faults.reply`, default: a boxed
echo of the request number and the images it carried). Binds 127.0.0.1 unless `host`.

It runs on `aiohttp.web` in its own event loop on a background thread. Measured on a 2-core VM
(2026-11, server and an aiohttp client process pinned to a core each, 32 connections, small
requests): the server spends 75-80 us of CPU per request, i.e. about 12,500 requests/s per core
(the `http.server` one it replaced: about 7,000), while one client process gets 2,000-3,000/s
out of it, its own limit: the server stays out of the way of any client measured against it.

Every way a server was seen to fail is a *mode*, drawn per request from a seeded generator at
the rate `Faults` gives it (`MODES`: mode -> rate field), or chosen for one request by a
responder (`Scripted(mode=...)`):

    500, 400 (a context-length error), 429 with `Retry-After` in seconds (`retry_after`),
    429_date (as an HTTP-date), 429_huge (10**9 s), html (a proxy's 502 page, text/html),
    reset (the connection is reset, no answer), malformed (a 200 whose body is cut JSON),
    slow (`slow_s` late), hang (never answers), trickle (one byte every `trickle_s` s),
    usage_str / usage_list / usage_fields (a `usage` that is a string, a list, or has
    non-numeric counts), null_message, null_content, huge (a reply of `huge_bytes`).

`ignore_n` answers one choice whatever `n` asks; `api_key` makes every route answer 401 to a
request without that bearer key (like `vllm serve --api-key`); `models_status` is what GET
/v1/models answers (e.g. 404 for a server without a model list).

In code, `FakeServer(responder=fn)` scripts the replies: `fn(body)` returns the reply text (every
choice), a list of texts (one per choice), a `Scripted` (texts, status, delay, mode, finish
reasons, usage), or None (the default reply). A drawn fault that sends no completion (an error
status, a reset, a hang, a cut body) comes before the responder is asked. The responder runs
in the server's event loop, one request at a time: it must not block (`Scripted(delay=...)`
waits without holding the others up).
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import email.utils
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from deepvision.llm.http import RETRY_AFTER_HEADER

__all__ = ["MODES", "BackgroundApp", "FakeServer", "Faults", "Responder", "Scripted", "Stats"]


@dataclass
class Faults:
    """The rate of each mode (see `MODES`) and the settings some of them take."""

    fail_rate: float = 0.0  # HTTP 500
    rate_limit_rate: float = 0.0  # HTTP 429, Retry-After `retry_after` seconds
    retry_after: float = 0.05
    reset_rate: float = 0.0  # the connection is reset without an answer
    malformed_rate: float = 0.0  # a 200 whose body is cut JSON
    slow_rate: float = 0.0  # the reply comes `slow_s` seconds late
    slow_s: float = 2.0
    bad_request_rate: float = 0.0  # HTTP 400 (not retryable), like a context-length error
    ignore_n: bool = False
    reply: str = ""
    seed: int = 0
    trickle_rate: float = 0.0  # a 200 whose body comes one byte every `trickle_s` seconds
    trickle_s: float = 1.0
    bad_usage_rate: float = 0.0  # a 200 whose `usage` is a string
    null_content_rate: float = 0.0  # a 200 whose message content is null
    rate_limit_date_rate: float = 0.0  # HTTP 429, Retry-After an HTTP-date `retry_after` ahead
    rate_limit_huge_rate: float = 0.0  # HTTP 429, Retry-After 10**9 seconds
    html_rate: float = 0.0  # HTTP 502 with a proxy's HTML error page
    hang_rate: float = 0.0  # headers never come
    usage_list_rate: float = 0.0  # a 200 whose `usage` is a list
    usage_fields_rate: float = 0.0  # a 200 whose `usage` counts are not numbers
    null_message_rate: float = 0.0  # a 200 whose choice message is null
    huge_rate: float = 0.0  # a 200 of about `huge_bytes` bytes
    huge_bytes: int = 20 << 20


# mode -> the Faults field holding its rate, in the order a draw tries them (new modes go last:
# a seed draws the same modes it always did).
MODES = {
    "500": "fail_rate",
    "429": "rate_limit_rate",
    "reset": "reset_rate",
    "malformed": "malformed_rate",
    "slow": "slow_rate",
    "400": "bad_request_rate",
    "trickle": "trickle_rate",
    "usage_str": "bad_usage_rate",
    "null_content": "null_content_rate",
    "429_date": "rate_limit_date_rate",
    "429_huge": "rate_limit_huge_rate",
    "html": "html_rate",
    "hang": "hang_rate",
    "usage_list": "usage_list_rate",
    "usage_fields": "usage_fields_rate",
    "null_message": "null_message_rate",
    "huge": "huge_rate",
}

HUGE_RETRY_AFTER = 10**9
_CONTEXT_ERROR = "This model's maximum context length is 32768 tokens"
_PROXY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass
class Scripted:
    """A scripted reply: choice texts (None: the default echo), an HTTP status other than 200
    (with an error body), a delay before answering, a fault `mode` for this request (a name
    of `MODES`), each choice's finish reason (a list, or one for all; default "stop") and the
    `usage` object to send (None: the default counts)."""

    texts: list[str] | None = None
    status: int = 200
    delay: float = 0.0
    mode: str | None = None
    finish_reasons: list[str | None] | str | None = None
    usage: Any = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")


Responder = Callable[[dict[str, Any]], "Scripted | str | list[str] | None"]


@dataclass
class Stats:
    """Requests answered so far, and how many of each mode (`ok` for a plain reply)."""

    requests: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str) -> int:
        with self.lock:
            self.requests += 1
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
            return self.requests


# Modes that send no completion: they happen before a responder is asked.
_NO_COMPLETION = frozenset(
    {"500", "400", "429", "429_date", "429_huge", "html", "reset", "malformed", "hang"}
)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"error": {"message": message}}, headers)


def _image_count(body: dict[str, Any]) -> int:
    return sum(
        1
        for m in body.get("messages") or []
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    )


async def _cancel_the_rest() -> None:
    """Cancel the handlers still running once the server closed (a hang whose client left)."""
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def _as_scripted(reply: Scripted | str | list[str] | None, n: int) -> Scripted:
    if reply is None:
        return Scripted()
    if isinstance(reply, str):
        return Scripted([reply] * n)
    if isinstance(reply, list):
        return Scripted(list(reply))
    return reply


class BackgroundApp(abc.ABC):
    """An aiohttp application served from a background thread on a socket bound when it is
    made (`port=0`: a free one, in `.port`): the one way the toolkit's test servers serve
    (this module's FakeServer, the tests' Hub stand-in). Subclasses add their routes."""

    client_max_size = 1 << 20  # request bodies, bytes

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.create_server((host, port), backlog=1024)
        self.host, self.port = host, self._sock.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the server's routes to `app`."""

    def start(self) -> Self:
        """Serve from a background thread; returns once the server accepts requests."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve,
            args=(ready,),
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        ready.result()
        return self

    def stop(self) -> None:
        """Stop serving: in-flight requests (slow, hanging, trickling) are cut, the port freed."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(30)
        self._sock.close()

    def serve_forever(self) -> None:
        """Serve until Ctrl-C (the command line's way)."""
        self.start()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            runner = loop.run_until_complete(self._open())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        self._loop = loop
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(_cancel_the_rest())
            loop.close()

    async def _open(self) -> web.AppRunner:
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.SockSite(runner, self._sock, backlog=1024).start()
        return runner


class FakeServer(BackgroundApp):
    """`FakeServer(faults).start()`; `.url` is the /v1 base URL; `.stats`; `.stop()`.
    The port is bound when the server is made (`port=0`: a free one, in `.port`)."""

    client_max_size = 1 << 31

    def __init__(
        self,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        models: list[str] | tuple[str, ...] = (),
        *,
        api_key: str | None = None,
        models_status: int = 200,
    ):
        super().__init__(host, port)
        self.faults = faults or Faults()
        self.models = list(models)
        self.responder = responder
        self.api_key = api_key
        self.models_status = models_status
        self.stats = Stats()
        self._rng = random.Random(self.faults.seed)
        self.url = f"http://{host}:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completion)
        for path in ("/v1/models", "/health", "/v1/health"):
            app.router.add_get(path, self._models)

    # -- routes ------------------------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid API key")
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if refused := self._refused(request):
            return refused
        if self.models_status != 200:
            return _error(self.models_status, "no model list here")
        data = [{"id": m, "object": "model"} for m in self.models]
        return _json(200, {"object": "list", "data": data})

    async def _completion(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if refused := self._refused(request):
            return refused
        mode = self._draw()
        if mode in _NO_COMPLETION:
            self.stats.count(mode)
            return await self._fault(request, mode)
        try:
            body = json.loads(raw)
        except ValueError:
            self.stats.count("400")
            return _error(400, "request body is not JSON")
        n = 1 if self.faults.ignore_n else int(body.get("n") or 1)
        script = _as_scripted(self.responder(body) if self.responder else None, n)
        mode = script.mode or mode
        number = self.stats.count(mode)
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.status != 200:
            return _error(script.status, f"scripted {script.status}")
        if mode in _NO_COMPLETION:
            return await self._fault(request, mode)
        if mode == "slow":
            await asyncio.sleep(self.faults.slow_s)
        payload = self._completion_body(body, n, number, script, mode)
        if mode == "trickle":
            return await self._trickle(request, payload)
        return web.Response(body=payload, content_type="application/json")

    # -- modes -------------------------------------------------------------------------------

    def _draw(self) -> str:
        x = self._rng.random()
        for mode, rate_field in MODES.items():
            rate = getattr(self.faults, rate_field)
            if x < rate:
                return mode
            x -= rate
        return "ok"

    async def _fault(self, request: web.Request, mode: str) -> web.StreamResponse:
        """The answer of a mode that sends no completion."""
        f = self.faults
        if mode == "500":
            return _error(500, "injected failure")
        if mode == "400":
            return _error(400, _CONTEXT_ERROR)
        if mode == "429":
            return _error(429, "rate limited", {RETRY_AFTER_HEADER: f"{f.retry_after:g}"})
        if mode == "429_date":
            when = email.utils.formatdate(time.time() + f.retry_after, usegmt=True)
            return _error(429, "rate limited", {RETRY_AFTER_HEADER: when})
        if mode == "429_huge":
            return _error(429, "rate limited", {RETRY_AFTER_HEADER: str(HUGE_RETRY_AFTER)})
        if mode == "html":
            return web.Response(status=502, text=_PROXY_PAGE, content_type="text/html")
        if mode == "malformed":
            return web.Response(body=b'{"choices": [ {"message"', content_type="application/json")
        if mode == "hang":
            await asyncio.Event().wait()  # cancelled when the server stops
        return self._reset(request)

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        """Reset the connection (RST, no answer); the response returned is never sent."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)

    def _completion_body(
        self, body: dict[str, Any], n: int, number: int, script: Scripted, mode: str
    ) -> bytes:
        """The JSON of a chat completion: the scripted texts or the default echo, with the
        corruption `mode` asks for."""
        if script.texts is not None:
            texts = list(script.texts)
        else:
            images = _image_count(body)
            texts = [
                self.faults.reply or f"request {number}, {images} image(s): \\boxed{{{i}}}"
                for i in range(n)
            ]
        reasons = script.finish_reasons
        if reasons is None or isinstance(reasons, str):
            reasons = [reasons or "stop"] * len(texts)
        choices: list[dict[str, Any]] = [
            {"index": i, "finish_reason": why, "message": {"role": "assistant", "content": text}}
            for i, (text, why) in enumerate(zip(texts, reasons, strict=True))
        ]
        k = len(choices)
        usage: Any = script.usage or {
            "prompt_tokens": 10,
            "completion_tokens": 5 * k,
            "total_tokens": 10 + 5 * k,
        }
        if mode == "usage_str":
            usage = "lots"
        elif mode == "usage_list":
            usage = [10, 5 * k]
        elif mode == "usage_fields":
            usage = {"prompt_tokens": "ten", "completion_tokens": "many"}
        elif mode == "null_message":
            for c in choices:
                c["message"] = None
        elif mode == "null_content":
            for c in choices:
                c["message"]["content"] = None
        elif mode == "huge" and choices:
            choices[0]["message"]["content"] = "x" * self.faults.huge_bytes
        payload = {
            "id": f"fake-{number}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": choices,
            "usage": usage,
        }
        return json.dumps(payload).encode()

    async def _trickle(self, request: web.Request, payload: bytes) -> web.StreamResponse:
        """Headers at once, then the body one byte every `trickle_s` seconds."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(payload)
        try:
            await resp.prepare(request)
            for k in range(len(payload)):
                await resp.write(payload[k : k + 1])
                await asyncio.sleep(self.faults.trickle_s)
        except (ConnectionError, RuntimeError):  # the client gave up
            pass
        return resp
