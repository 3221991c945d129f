"""The one HTTP layer between the toolkit and model servers: every chat completion, model list
and retry decision goes through here (`chat`, `asker`, `infer`, `check_endpoint`).

- `ModelSession` posts a JSON body to `<url>/chat/completions` with the Endpoint's headers
  (aiohttp: one connection pool per session, kept alive). `Endpoint.timeout` bounds a whole
  attempt, connect to last byte: a server that trickles its reply cannot hold a request longer.
  The environment's proxy settings (`HTTP(S)_PROXY`, `NO_PROXY`) and `~/.netrc` are read once
  per server, not for every request (aiohttp's `trust_env` reads them in a thread each time:
  two thread hops per request).
- Every reply is classified once, here: a 200 with a usable completion is a dict; anything else
  is an `EndpointError` saying whether trying again may help (`retryable`) and, for 408 / 409 /
  425 / 429 / 5xx, after how long the server asked (`retry_after`, seconds or HTTP-date, capped
  at `Endpoint.retry_after_cap`). A 200 that is not a usable completion (not JSON, no choices,
  a null message or content, a `usage` that is not an object) is a `ReplyError`; a reply over
  `MAX_REPLY_BYTES` too.
- `retry_delay` is the one backoff rule: exponential with jitter, or the server's Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from yarl import URL

from deepvision.errors import EndpointError, ReplyError, UsageError
from deepvision.llm.endpoint import Endpoint, redact_text, redact_url

__all__ = [
    "MAX_REPLY_BYTES",
    "RETRY_AFTER_HEADER",
    "RETRY_STATUSES",
    "ModelSession",
    "check_endpoint",
    "classify_reply",
    "parse_retry_after",
    "retry_delay",
    "server_answered",
]

RETRY_AFTER_HEADER = "Retry-After"
# Statuses worth trying again: timeouts, conflicts, too early, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 409, 425, 429, *range(500, 600)})
MAX_REPLY_BYTES = 64 << 20
_MESSAGE_CHARS = 500


def parse_retry_after(value: str | None, cap: float, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP-date), at most `cap`;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:  # an HTTP-date is always GMT
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), cap)


def retry_delay(attempt: int, endpoint: Endpoint, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: the server's Retry-After when it gave one,
    else `backoff * 2**(attempt - 1)` times a jitter in [0.5, 1.5). Never more than
    `endpoint.retry_after_cap` (or `backoff`, when that is larger)."""
    cap = max(endpoint.backoff, endpoint.retry_after_cap)
    if retry_after is not None:
        return min(max(0.0, retry_after), cap)
    exp = endpoint.backoff * 2.0 ** min(max(0, attempt - 1), 30)
    return min(exp * (0.5 + random.random()), cap)


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def _server_message(raw: bytes) -> str:
    """What an error reply says, on one line: an HTML page (a proxy's error page) by its
    title or its text, anything else as it is; at most `_MESSAGE_CHARS` characters."""
    text = raw[: _MESSAGE_CHARS * 4].decode("utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        title = _HTML_TITLE.search(text)
        text = "HTML page: " + (title.group(1) if title else _HTML_TAG.sub(" ", text))
    return " ".join(text.split())[:_MESSAGE_CHARS]


def _snippet(raw: bytes) -> str:
    return repr(raw[:200].decode("utf-8", errors="replace"))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_completion(data: Any, raw: bytes = b"") -> dict[str, Any]:
    """`data` if it is a usable chat completion, else a ReplyError (retryable) saying why."""
    if not isinstance(data, dict):
        raise ReplyError(f"reply is not a JSON object: {_snippet(raw)}", retryable=True)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ReplyError(f"reply has no choices: {_snippet(raw)}", retryable=True)
    for k, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise ReplyError(f"reply choice {k} has no message", retryable=True)
        content = message.get("content")
        if content is None:
            raise ReplyError(f"reply choice {k} has null content", retryable=True)
        if not isinstance(content, str):
            kind = type(content).__name__
            raise ReplyError(f"reply choice {k} content is a {kind}, not text", retryable=True)
    usage = data.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            kind = type(usage).__name__
            raise ReplyError(f"reply usage is a {kind}, not an object", retryable=True)
        for key in ("prompt_tokens", "completion_tokens"):
            if usage.get(key) is not None and not _is_count(usage[key]):
                raise ReplyError(f"reply usage.{key} is not a whole number", retryable=True)
    return data


def classify_reply(
    status: int, raw: bytes, headers: Mapping[str, str], endpoint: Endpoint
) -> dict[str, Any]:
    """The completion of a 2xx reply with a usable body; otherwise the EndpointError it is."""
    if 200 <= status < 300:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise ReplyError(f"reply is not JSON: {_snippet(raw)}", retryable=True) from None
        return check_completion(data, raw)
    message = _status_reason(status) + _server_message(raw)
    if status in RETRY_STATUSES:
        after = parse_retry_after(headers.get(RETRY_AFTER_HEADER), endpoint.retry_after_cap)
        raise EndpointError(message, retryable=True, retry_after=after)
    raise EndpointError(message, retryable=False)


def _status_reason(status: int) -> str:
    return f"HTTP {status}: "


def server_answered(exc: EndpointError) -> bool:
    """Whether a failed attempt still shows its server up and working, just not for this
    request: it answered with an internal error (HTTP 500) or a 200 that is no usable
    completion. Busy or unavailable statuses (408, 429, 502, 503, ...) and transport failures
    (timeouts, resets, refused connections) do not: those call for waiting."""
    return isinstance(exc, ReplyError) or exc.reason.startswith(_status_reason(500))


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    length = resp.content_length
    if length is not None:
        if length > cap:
            raise ReplyError(f"reply of {length} bytes is over the {cap >> 20} MB limit")
        return await resp.read()
    chunks, size = [], 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise ReplyError(f"reply is over the {cap >> 20} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


class ModelSession:
    """One connection pool to an Endpoint's servers, bound to the running event loop.

        async with ModelSession(endpoint) as session:
            completion = await session.complete(url, body)   # one attempt, classified

    `connections` caps the open connections over all URLs (default: concurrency per URL)."""

    def __init__(
        self, endpoint: Endpoint, *, connections: int | None = None, max_reply_bytes: int = 0
    ) -> None:
        self.endpoint = endpoint
        self.max_reply_bytes = max_reply_bytes or MAX_REPLY_BYTES
        self._headers = {"Content-Type": "application/json", **endpoint.headers}
        self._connections = connections or endpoint.concurrency * len(endpoint.urls)
        self._session: aiohttp.ClientSession | None = None
        self._routes: dict[str, dict[str, Any]] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=0)
            # The whole-attempt limit is ours (asyncio.timeout below); aiohttp's own default
            # would cut every request at 5 minutes. Proxies and netrc: `_route`.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None),
            )
        return self._session

    def _route(self, url: str) -> dict[str, Any]:
        """The proxy and netrc credentials the environment gives `url` (what aiohttp's
        `trust_env` would look up for every request), looked up once per URL."""
        route = self._routes.get(url)
        if route is None:
            route = {}
            try:
                target = URL(url)
            except ValueError:  # aiohttp says what is wrong with it, as for any request
                return route
            with contextlib.suppress(LookupError):  # no proxy for it
                route["proxy"], route["proxy_auth"] = get_env_proxy_for_url(target)
            if "Authorization" not in self.endpoint.headers and not target.user and target.host:
                with contextlib.suppress(LookupError):  # no netrc, or no entry for it
                    route["auth"] = basicauth_from_netrc(netrc_from_env(), target.host)
            self._routes[url] = route
        return route

    async def complete(self, url: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
        """One attempt at a chat completion on `url` (a base URL ending in /v1)."""
        if not isinstance(body, bytes | bytearray):
            body = json.dumps(body, ensure_ascii=False).encode()
        timeout = self.endpoint.timeout
        try:
            async with asyncio.timeout(timeout):
                chat_url = self.endpoint.chat_url(url)
                async with self.session.post(
                    chat_url,
                    data=body,
                    headers=self._headers,
                    allow_redirects=False,
                    **self._route(chat_url),
                ) as resp:
                    raw = await _read_capped(resp, self.max_reply_bytes)
                    status, headers = resp.status, resp.headers
        except TimeoutError:
            raise EndpointError(
                f"no complete reply within {timeout:g} s (timeout)", retryable=True
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise EndpointError(_transport_reason(exc), retryable=True) from None
        return classify_reply(status, raw, headers, self.endpoint)

    async def served_models(self, url: str, timeout: float) -> list[str] | None:
        """The model ids `url` lists at /models; None when it does not list them (no such
        route, an error status, a body that is not a model list). EndpointError when nothing
        answers within `timeout` seconds; UsageError on `api_key_env` for HTTP 401 / 403."""
        try:
            async with asyncio.timeout(timeout):
                async with self.session.get(
                    url + "/models",
                    headers=self.endpoint.headers,
                    allow_redirects=False,
                    **self._route(url + "/models"),
                ) as resp:
                    raw = await _read_capped(resp, self.max_reply_bytes)
                    status = resp.status
        except TimeoutError:
            raise EndpointError(
                f"{redact_url(url)} did not answer within {timeout:g} s", retryable=False
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise EndpointError(
                f"{redact_url(url)} is unreachable: {_transport_reason(exc)}", retryable=False
            ) from None
        if status in (401, 403):  # the key is wrong or missing: every request would fail
            raise UsageError(
                f"{redact_url(url)} refused the API key (HTTP {status}): {_server_message(raw)}",
                param="api_key_env",
            )
        if status != 200:
            return None
        try:
            data = json.loads(raw).get("data")
            return [str(m["id"]) for m in data]
        except (ValueError, AttributeError, TypeError, KeyError):
            return None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> ModelSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _transport_reason(exc: BaseException) -> str:
    text = redact_text(str(exc).strip())  # aiohttp may quote the URL, credentials and all
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _names(models: Iterable[str], limit: int = 20) -> str:
    models = list(models)
    shown = ", ".join(models[:limit])
    return shown + (f" (+{len(models) - limit} more)" if len(models) > limit else "")


async def check_endpoint(endpoint: Endpoint, timeout: float = 5.0) -> None:
    """Before any work: every URL answers GET /models within `timeout` seconds (EndpointError
    naming the URL otherwise), accepts the API key (UsageError on `api_key_env` for 401 / 403),
    and lists `endpoint.model` when it lists models (UsageError on `model` naming what is
    served otherwise). A server without /models, or listing none, is taken at its word (a
    local folder `transformers serve` loads on request is not listed). A local folder gets no
    other exemption: vLLM lists the folder's path as its model id, so a server listing other
    models is someone else's server on that port."""
    async with ModelSession(endpoint, connections=len(endpoint.urls)) as session:
        found = await asyncio.gather(
            *(session.served_models(u, timeout) for u in endpoint.urls), return_exceptions=True
        )
    for got in found:
        if isinstance(got, BaseException):
            raise got
    for url, models in zip(endpoint.urls, found, strict=True):
        if not models or endpoint.model in models:
            continue
        raise UsageError(
            f"{redact_url(url)} does not serve {endpoint.model!r}; it serves: {_names(models)}",
            param="model",
        )
