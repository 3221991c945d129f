"""One chat completion against an Endpoint, with retries (`chat`), and `asker`, the
`ask(messages) -> text` coroutine the LLM judges use.

Every attempt goes through `llm.http` (one whole-attempt timeout, one classification of
replies, one backoff rule); attempts rotate over the Endpoint's URLs. The API key is sent as a
bearer token and never logged."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from deepvision.errors import EndpointError
from deepvision.llm.endpoint import Endpoint
from deepvision.llm.http import ModelSession, retry_delay

__all__ = ["Asker", "asker", "chat"]


async def chat(
    endpoint: Endpoint,
    messages: Sequence[dict[str, Any]],
    *,
    max_tokens: int = 16,
    temperature: float = 0.0,
    session: ModelSession | None = None,
) -> str:
    """The assistant text of one completion. Retryable failures are tried again up to
    `endpoint.attempts` times in all; the last failure is raised as an EndpointError."""
    if session is None:
        async with ModelSession(endpoint) as own:
            return await chat(
                endpoint, messages, max_tokens=max_tokens, temperature=temperature, session=own
            )
    body = {
        "model": endpoint.model,
        "messages": list(messages),
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    urls = endpoint.urls
    for attempt in range(1, endpoint.attempts + 1):
        try:
            completion = await session.complete(urls[(attempt - 1) % len(urls)], body)
        except EndpointError as exc:
            if not exc.retryable:
                raise
            if attempt == endpoint.attempts:
                raise EndpointError(
                    f"gave up after {attempt} attempt(s): {exc.reason}", retryable=True
                ) from None
            await asyncio.sleep(retry_delay(attempt, endpoint, exc.retry_after))
        else:
            return completion["choices"][0]["message"]["content"]
    raise AssertionError("unreachable")  # the loop returns or raises


class Asker:
    """`await ask(messages)` -> the reply text, through one connection pool per event loop
    (the pool is closed when `asyncio.run` ends that loop, or by `aclose()`)."""

    def __init__(self, endpoint: Endpoint, *, max_tokens: int = 8, temperature: float = 0.0):
        self.endpoint = endpoint
        self.max_tokens = max_tokens
        self.temperature = temperature
        # per event loop: its pool, and the task that closes it when the loop ends
        self._sessions: dict[asyncio.AbstractEventLoop, tuple[ModelSession, asyncio.Task]] = {}

    def _session(self) -> ModelSession:
        loop = asyncio.get_running_loop()
        held = self._sessions.get(loop)
        if held is None:
            for old in [lp for lp in self._sessions if lp.is_closed()]:
                del self._sessions[old]
            session = ModelSession(self.endpoint)
            # asyncio.run cancels the tasks still pending when its main coroutine ends: this
            # one then closes the pool, inside the loop that owns it.
            closer = loop.create_task(self._close_at_end(loop, session))
            held = self._sessions[loop] = (session, closer)
        return held[0]

    async def _close_at_end(self, loop: asyncio.AbstractEventLoop, session: ModelSession):
        try:
            await asyncio.Event().wait()
        finally:
            self._sessions.pop(loop, None)
            with contextlib.suppress(Exception):
                await session.close()

    async def __call__(self, messages: Sequence[dict[str, Any]]) -> str:
        return await chat(
            self.endpoint,
            messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            session=self._session(),
        )

    async def aclose(self) -> None:
        held = self._sessions.pop(asyncio.get_running_loop(), None)
        if held is not None:
            session, closer = held
            closer.cancel()
            await session.close()


def asker(endpoint: Endpoint, *, max_tokens: int = 8, temperature: float = 0.0) -> Asker:
    """An `ask(messages)` coroutine for LLM judges: short answers, retried like `chat`, at most
    `endpoint.concurrency` connections per URL."""
    return Asker(endpoint, max_tokens=max_tokens, temperature=temperature)
