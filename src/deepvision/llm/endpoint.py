"""`Endpoint`: one frozen description of a model behind one or more OpenAI-compatible servers,
used by every command that talks to a model (infer, eval, judge, curate).

The API key is never stored in the config's fields that are written anywhere: `api_key_env`
names the environment variable, read once when the Endpoint is made. An explicitly named
variable that is unset is an error; the default (`OPENAI_API_KEY`) simply sends no key when
unset (a local vLLM needs none).

Credentials inside a URL (`http://user:pass@host/v1`) are sent as HTTP basic auth and never
shown: every URL written or printed goes through `redact_url` (the Endpoint's repr too), and
any text that may quote one (an error message) through `redact_text`. A URL with credentials
takes the place of the default key (`OPENAI_API_KEY` is then not read); with an explicitly
named key variable it is a usage error, since a request carries one Authorization only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from deepvision.errors import UsageError

__all__ = ["DEFAULT_API_KEY_ENV", "Endpoint", "redact_text", "redact_url"]

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
# the `user:pass@` of a URL in a text (up to its last `@` before the path)
_CREDENTIALS = re.compile(r"(?<=://)[^/\s]*@")


def redact_url(url: str) -> str:
    """`url` without credentials (`http://user:pass@host` -> `http://host`), for logs and
    output lines."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def redact_text(text: str) -> str:
    """`text` with the credentials of every URL in it removed (error messages may quote one)."""
    return _CREDENTIALS.sub("", text)


def _has_credentials(url: str) -> bool:
    return "@" in urlsplit(url).netloc


@dataclass(frozen=True)
class Endpoint:
    """A model behind `urls` (each a base URL ending in `/v1`), and how to talk to it.

    concurrency: requests in flight per URL; timeout: seconds for one whole attempt, from
    connect to the last byte; attempts: tries per request (retryable failures only); backoff:
    the first retry's base delay (doubling, with jitter; the delay a server asks for wins, capped at
    `retry_after_cap`)."""

    urls: tuple[str, ...]
    model: str
    concurrency: int = 32
    timeout: float = 600.0
    attempts: int = 4
    backoff: float = 1.0
    retry_after_cap: float = 60.0
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        urls = tuple(u.rstrip("/") for u in urls if u and u.strip())
        if not urls:
            raise UsageError("no endpoint URL given", param="endpoint")
        for u in urls:
            if urlsplit(u).scheme not in ("http", "https"):
                raise UsageError(f"{redact_url(u)!r} is not an http(s) URL", param="endpoint")
        object.__setattr__(self, "urls", urls)
        if not self.model:
            raise UsageError("no model name given", param="model")
        for name, low in (("concurrency", 1), ("attempts", 1)):
            if getattr(self, name) < low:
                raise UsageError(f"must be >= {low}", param=name)
        if not self.timeout > 0:
            raise UsageError("must be > 0", param="timeout")
        if any(_has_credentials(u) for u in urls):
            if self.api_key_env is not None or self.api_key:
                raise UsageError(
                    "a URL with credentials and an API key cannot both be sent: give one",
                    param="endpoint",
                )
        elif self.api_key is None:
            object.__setattr__(self, "api_key", _read_key(self.api_key_env))

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["urls"] = tuple(redact_url(u) for u in self.urls)
        return f"Endpoint({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def with_(self, **changes: Any) -> Endpoint:
        """A copy with some settings changed (the key is read again only if its source is)."""
        if "api_key_env" not in changes:
            changes.setdefault("api_key", self.api_key)
        return replace(self, **changes)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def chat_url(self, url: str) -> str:
        return url + "/chat/completions"

    def public(self) -> dict[str, Any]:
        """The settings as they may be written to a run folder (no key, no credentials)."""
        return {
            "urls": [redact_url(u) for u in self.urls],
            "model": self.model,
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "attempts": self.attempts,
        }


def _read_key(env: str | None) -> str | None:
    if env is None:
        return os.environ.get(DEFAULT_API_KEY_ENV) or None
    value = os.environ.get(env)
    if not value:
        raise UsageError(
            f"environment variable {env} (the API key) is not set", param="api_key_env"
        )
    return value
