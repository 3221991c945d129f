"""The options of every command that talks to a model (infer, eval run, judge, curate): one
name, one default and one help text each, and `build_endpoint`, which turns them into the
`llm.Endpoint` the library takes.

Defaults live in `llm.Endpoint` itself: an option left out is not passed, so the command line,
the Python API and the pipeline YAML cannot drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Annotated

import typer

from deepvision.cli.common import split_list
from deepvision.errors import UsageError
from deepvision.llm.endpoint import DEFAULT_API_KEY_ENV, Endpoint
from deepvision.llm.http import check_endpoint

__all__ = [
    "ApiKeyEnvOpt",
    "AttemptsOpt",
    "ConcurrencyOpt",
    "EndpointOpt",
    "JudgeApiKeyEnvOpt",
    "JudgeConcurrencyOpt",
    "JudgeEndpointOpt",
    "JudgeModelOpt",
    "ModelOpt",
    "TimeoutOpt",
    "build_endpoint",
    "check_now",
]

_DEFAULTS = {f.name: f.default for f in fields(Endpoint)}
_KEY_HELP = (
    f"Environment variable holding the API key (default {DEFAULT_API_KEY_ENV} if set, else no "
    "key); a variable named here must be set."
)

EndpointOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        help="OpenAI-compatible base URL (…/v1); repeat or comma-separate for several servers.",
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model name the servers serve (where a command can start servers: without "
        "--endpoint, a local model folder to serve).",
    ),
]
ApiKeyEnvOpt = Annotated[str | None, typer.Option("--api-key-env", help=_KEY_HELP)]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help=f"Requests in flight per endpoint URL (default {_DEFAULTS['concurrency']}).",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds for one whole attempt, connect to last byte "
        f"(default {_DEFAULTS['timeout']:g}).",
    ),
]
AttemptsOpt = Annotated[
    int | None,
    typer.Option(
        "--attempts",
        help="Tries per request: timeouts, resets, 408/409/425/429/5xx and malformed replies "
        f"are tried again (default {_DEFAULTS['attempts']}).",
    ),
]
JudgeEndpointOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--judge-endpoint",
        help="The LLM judge's OpenAI-compatible base URL (…/v1); repeat or comma-separate.",
    ),
]
JudgeModelOpt = Annotated[str | None, typer.Option("--judge-model", help="The judge model.")]
JudgeApiKeyEnvOpt = Annotated[
    str | None, typer.Option("--judge-api-key-env", help="The judge's API key: " + _KEY_HELP)
]
JudgeConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--judge-concurrency",
        help=f"Judge requests in flight per URL (default {_DEFAULTS['concurrency']}).",
    ),
]


def build_endpoint(
    endpoint: list[str] | None,
    model: str | None,
    api_key_env: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
    attempts: int | None = None,
    *,
    prefix: str = "",
) -> Endpoint:
    """The Endpoint the options describe; options left out take the Endpoint's defaults.
    `prefix="judge_"` names the judge's options in errors (`--judge-endpoint`)."""
    urls = split_list(endpoint)
    if not urls:
        raise UsageError("give the server's base URL (…/v1)", param=prefix + "endpoint")
    if not model:
        raise UsageError("give the model name the server serves", param=prefix + "model")
    given = {"concurrency": concurrency, "timeout": timeout, "attempts": attempts}
    settings = {k: v for k, v in given.items() if v is not None}
    with _named(prefix):
        return Endpoint(tuple(urls), model, api_key_env=api_key_env, **settings)


def check_now(endpoint: Endpoint, *, prefix: str = "") -> None:
    """`llm.check_endpoint` before any work (errors name the `prefix`ed options)."""
    with _named(prefix):
        asyncio.run(check_endpoint(endpoint))


@contextmanager
def _named(prefix: str) -> Iterator[None]:
    """Re-raise a UsageError on `endpoint`, `model`, ... as one on `<prefix>endpoint`, ..."""
    try:
        yield
    except UsageError as exc:
        if prefix and exc.param in ("endpoint", "model", "api_key_env", "concurrency"):
            raise UsageError(exc.reason, param=prefix + exc.param) from None
        raise
