"""One chat completion against an OpenAI-compatible endpoint, with retries.

Retries 429, 5xx, timeouts, connection errors and malformed bodies with exponential backoff
and jitter (honouring Retry-After); other 4xx fail at once with the server's message. The API
key is sent as a bearer token and never logged."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from deepvision.errors import EndpointError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return min(60.0, float(resp.headers.get("retry-after", "")))
    except ValueError:
        return None


async def chat(
    client: httpx.AsyncClient,
    base_url: str,
    model: str,
    messages: list[dict[str, Any]],
    *,
    api_key: str | None = None,
    max_tokens: int = 16,
    temperature: float = 0.0,
    timeout: float = 60.0,
    max_attempts: int = 4,
    backoff: float = 0.5,
) -> str:
    """The assistant text of one completion; raises EndpointError after `max_attempts`."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    last = "no attempt made"
    for attempt in range(1, max_attempts + 1):
        wait = backoff * 2 ** (attempt - 1) * (0.5 + random.random())
        try:
            resp = await client.post(url, json=body, headers=headers, timeout=timeout)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            last = f"{type(exc).__name__}: {exc}".strip()
        else:
            if resp.status_code == 200:
                try:
                    return str(resp.json()["choices"][0]["message"]["content"] or "")
                except (ValueError, KeyError, IndexError, TypeError):
                    last = f"malformed response body: {resp.text[:200]!r}"
            elif resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                wait = _retry_after(resp) or wait
            else:
                raise EndpointError(f"HTTP {resp.status_code}: {resp.text[:500]}", retryable=False)
        if attempt < max_attempts:
            await asyncio.sleep(wait)
    raise EndpointError(f"gave up after {max_attempts} attempts: {last}", retryable=True)


def asker(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    max_tokens: int = 8,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_attempts: int = 4,
) -> Callable[[list[dict[str, Any]]], Awaitable[str]]:
    """`await ask(messages)` -> the reply text, through one shared connection pool (the LLM
    judge's calls: short answers, retried like `chat`)."""
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency))

    async def ask(messages: list[dict[str, Any]]) -> str:
        return await chat(
            client,
            base_url,
            model,
            messages,
            api_key=api_key,
            max_tokens=max_tokens,
            timeout=timeout,
            max_attempts=max_attempts,
        )

    return ask
