"""An OpenAI-compatible test server with fault injection (tests, benchmarks, dry runs).

    python -m deepvision.cli.fake_server --port 8000 [--fail-rate 0.1] [--reset-rate 0.02] ...

GET /v1/models and /health; POST /v1/chat/completions answers at once with a deterministic text
(`--reply`, default: a boxed echo of the request number). Faults are drawn per request from a
seeded generator: HTTP 500, 429 with a delay to wait, a connection reset, a malformed body, a slow
reply, a reply trickled one byte at a time, a `usage` that is a string, a null content;
`--ignore-n` answers one choice whatever `n` asks. Binds 127.0.0.1 unless --host.
`FakeServer(models=[...])` lists those models at /v1/models (default: none listed, any
accepted).
In code, `FakeServer(responder=fn)` scripts the replies: `fn(body)` returns the reply text
(every choice), a list of texts (one per choice) or a `Scripted` (status, delay, texts).
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deepvision.llm.http import RETRY_AFTER_HEADER


@dataclass
class Faults:
    fail_rate: float = 0.0  # HTTP 500
    rate_limit_rate: float = 0.0  # HTTP 429 + how long to wait (`retry_after` s)
    retry_after: float = 0.05
    reset_rate: float = 0.0  # close the connection without answering
    malformed_rate: float = 0.0  # 200 with a body that is not JSON
    slow_rate: float = 0.0
    slow_s: float = 2.0
    bad_request_rate: float = 0.0  # HTTP 400 (not retryable), like a context-length error
    ignore_n: bool = False
    reply: str = ""
    seed: int = 0
    trickle_rate: float = 0.0  # 200 whose body comes one byte every `trickle_s` seconds
    trickle_s: float = 1.0
    bad_usage_rate: float = 0.0  # 200 whose `usage` is a string
    null_content_rate: float = 0.0  # 200 whose message content is null


@dataclass
class Scripted:
    """A scripted reply: choice texts (None: the default echo), an HTTP status other than 200
    (with an error body), or a delay before answering (to provoke client timeouts)."""

    texts: list[str] | None = None
    status: int = 200
    delay: float = 0.0


Responder = Callable[[dict[str, Any]], "Scripted | str | list[str]"]


@dataclass
class Stats:
    requests: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str) -> int:
        with self.lock:
            self.requests += 1
            self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
            return self.requests


class FakeServer:
    """Start with `FakeServer(faults).start()`; `.url` is the /v1 base URL; `.stop()`."""

    def __init__(
        self,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        models: list[str] | tuple[str, ...] = (),
    ):
        self.faults = faults or Faults()
        self.models = list(models)
        self.responder = responder
        self.stats = Stats()
        self._rng = random.Random(self.faults.seed)
        self._rng_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/v1/models", "/health", "/v1/health"):
                    data = [{"id": m, "object": "model"} for m in server.models]
                    body = {"object": "list", "data": data}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                    return
                server.handle_completion(self, raw)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # a burst of new connections must not be refused
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                exc = sys.exc_info()[1]
                if not isinstance(exc, ConnectionError):  # a client that gave up: expected
                    super().handle_error(request, client_address)

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_port
        self.url = f"http://{host}:{self.port}/v1"
        self._thread: threading.Thread | None = None

    def _draw(self) -> str:
        f = self.faults
        with self._rng_lock:
            x = self._rng.random()
        for name, rate in (
            ("500", f.fail_rate),
            ("429", f.rate_limit_rate),
            ("reset", f.reset_rate),
            ("malformed", f.malformed_rate),
            ("slow", f.slow_rate),
            ("400", f.bad_request_rate),
            ("trickle", f.trickle_rate),
            ("bad_usage", f.bad_usage_rate),
            ("null_content", f.null_content_rate),
        ):
            if x < rate:
                return name
            x -= rate
        return "ok"

    def handle_completion(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        outcome = self._draw()
        number = self.stats.count(outcome)
        if outcome == "reset":
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        if outcome == "500":
            h._send(500, b'{"error": {"message": "injected failure"}}')  # type: ignore[attr-defined]
            return
        if outcome == "429":
            h._send(
                429,
                b'{"error": {"message": "rate limited"}}',  # type: ignore[attr-defined]
                {RETRY_AFTER_HEADER: str(self.faults.retry_after)},
            )
            return
        if outcome == "400":
            msg = b'{"error": {"message": "This model\'s maximum context length is 32768 tokens"}}'
            h._send(400, msg)  # type: ignore[attr-defined]
            return
        if outcome == "malformed":
            h._send(200, b'{"choices": [ {"message"')  # type: ignore[attr-defined]
            return
        if outcome == "slow":
            time.sleep(self.faults.slow_s)
        try:
            body = json.loads(raw)
        except ValueError:
            h._send(400, b'{"error": {"message": "request body is not JSON"}}')  # type: ignore[attr-defined]
            return
        n = 1 if self.faults.ignore_n else int(body.get("n") or 1)
        scripted: list[str] | None = None
        if self.responder is not None:
            r = self.responder(body)
            if isinstance(r, str):
                r = Scripted([r] * n)
            elif isinstance(r, list):
                r = Scripted(list(r))
            if r.delay:
                time.sleep(r.delay)
            if r.status != 200:
                err = json.dumps({"error": {"message": f"scripted {r.status}"}}).encode()
                h._send(r.status, err)  # type: ignore[attr-defined]
                return
            scripted = r.texts
        images = sum(
            1
            for m in body.get("messages", [])
            if isinstance(m.get("content"), list)
            for p in m["content"]
            if p.get("type") == "image_url"
        )
        choices = [
            {
                "index": i,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": scripted[i]
                    if scripted is not None
                    else self.faults.reply
                    or f"request {number}, {images} image(s): \\boxed{{{i}}}",
                },
            }
            for i in range(n if scripted is None else len(scripted))
        ]
        usage: Any = {"prompt_tokens": 10, "completion_tokens": 5 * n, "total_tokens": 10 + 5 * n}
        if outcome == "bad_usage":
            usage = "lots"
        if outcome == "null_content":
            for c in choices:
                c["message"]["content"] = None
        payload = {
            "id": f"fake-{number}",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": choices,
            "usage": usage,
        }
        if outcome == "trickle":
            self._trickle(h, json.dumps(payload).encode())
            return
        h._send(200, json.dumps(payload).encode())  # type: ignore[attr-defined]

    def _trickle(self, h: BaseHTTPRequestHandler, payload: bytes) -> None:
        """Headers at once, then the body one byte every `trickle_s` seconds."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        try:
            h.wfile.flush()
            for k in range(len(payload)):
                h.wfile.write(payload[k : k + 1])
                h.wfile.flush()
                time.sleep(self.faults.trickle_s)
        except OSError:  # the client gave up
            h.close_connection = True

    def start(self) -> FakeServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
