"""Ask a model about many problems through the inference engine, and parse its replies.

Replies go through `llm.client.infer` (continuous batching, exactly-once resumable JSONL).
A reply that cannot be parsed is never guessed: it is sent again (with a note saying why it
was refused) up to `retries` times, then reported as unparsed with the raw text. A request
that fails for good (HTTP errors, timeouts after the client's own retries) is a model error.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

from deepvision.errors import ReplyParseError, UsageError
from deepvision.llm.client import InferConfig, Request, infer
from deepvision.llm.endpoint import Endpoint
from deepvision.llm.messages import problem_image_sources
from deepvision.records import IMAGE_PLACEHOLDER, Completion, Problem, repair_tail

T = TypeVar("T")


_ENDPOINT = {f.name: f.default for f in fields(Endpoint)}


@dataclass
class ModelConfig:
    """One model behind one or more OpenAI-compatible endpoints (keys from the environment);
    how to talk to it (concurrency, timeout, attempts, backoff) defaults as `llm.Endpoint`."""

    endpoints: list[str]
    model: str
    api_key_env: str | None = None
    concurrency: int = _ENDPOINT["concurrency"]
    max_tokens: int | None = 1024
    temperature: float = 0.0
    sampling: dict[str, Any] = field(default_factory=dict)
    timeout: float = _ENDPOINT["timeout"]
    attempts: int = _ENDPOINT["attempts"]
    backoff: float = _ENDPOINT["backoff"]

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str):
            self.endpoints = [self.endpoints]
        if not self.endpoints:
            raise UsageError(f"model {self.model!r}: no endpoint given")

    def endpoint(self) -> Endpoint:
        """The llm Endpoint (reads the API key now: an unset `api_key_env` is a UsageError)."""
        return Endpoint(
            tuple(self.endpoints),
            self.model,
            concurrency=self.concurrency,
            timeout=self.timeout,
            attempts=self.attempts,
            backoff=self.backoff,
            api_key_env=self.api_key_env,
        )

    def infer_config(self, n: int = 1) -> InferConfig:
        return InferConfig(
            self.endpoint(),
            n=n,
            sampling={"temperature": self.temperature, **self.sampling},
            max_tokens=self.max_tokens,
        )

    def public(self) -> dict[str, Any]:
        """Settings for the resume check and reports (no key values)."""
        return {
            "endpoints": self.endpoints,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "sampling": self.sampling,
        }


@dataclass
class Answer(Generic[T]):
    value: T | None = None
    raw: str | None = None
    error: str | None = None  # why there is no value
    kind: str | None = None  # None | "unparsed" | "model_error"


def request_key(i: int, p: Problem) -> str:
    """The key of the i-th problem of a chunk: ids may repeat within a chunk (two different
    problems under one id), positions do not; the same chunk gets the same keys on resume."""
    return f"{i}:{p.id}"


def judge_request(p: Problem, system: str, user: str, key: str) -> Request:
    """A request under `key` (see `request_key`) that shows the problem's images first, then
    `user`."""
    text = IMAGE_PLACEHOLDER * len(p.images) + ("\n" if p.images else "") + user
    return Request(
        key,
        {},
        [{"role": "system", "content": system}, {"role": "user", "content": text}],
        problem_image_sources(p),
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The one JSON object in a reply (fenced or bare, thinking stripped); ReplyParseError else."""
    text = re.sub(r"<think>.*?</think>", "", text or "", flags=re.DOTALL).strip()
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)] or [text]
    for cand in candidates:
        start = cand.find("{")
        if start < 0:
            continue
        try:
            obj, _ = json.JSONDecoder().raw_decode(cand[start:])
        except (json.JSONDecodeError, RecursionError):  # not JSON, or nested past any use
            continue
        if isinstance(obj, dict):
            return obj
    snippet = (text[:80] + "...") if len(text) > 80 else text
    raise ReplyParseError(f"no JSON object in the reply: {snippet!r}")


def usage_of(path: Path) -> dict[str, int]:
    """Tokens used by the replies in an inference output; a `usage` that is not a mapping
    of whole numbers (a server's bug) counts nothing rather than stopping the stage."""
    total = {"prompt_tokens": 0, "completion_tokens": 0}
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                u = json.loads(line).get("usage")
                if not isinstance(u, dict):
                    continue
                for k in total:
                    v = u.get(k)
                    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                        total[k] += v
    return total


def _read(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if path.exists():
        repair_tail(path)
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    out[str(rec["id"])] = [c.text for c in Completion.from_output_line(rec)]
    return out


def _errors(path: Path) -> dict[str, str]:
    errs: dict[str, str] = {}
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = json.loads(line)
                    errs[str(rec["id"])] = str(rec.get("reason"))
    return errs


def sample(
    requests: list[Request], prefix: Path, cfg: ModelConfig, n: int
) -> tuple[dict[str, list[str]], dict[str, str], dict[str, int]]:
    """n samples per request (resumable in `<prefix>.jsonl`): texts by key, errors by key for
    the keys without texts, token usage."""
    out = prefix.with_name(prefix.name + ".jsonl")
    errors = prefix.with_name(prefix.name + ".errors.jsonl")
    asyncio.run(infer(requests, out, cfg.infer_config(n), errors=errors))
    texts = _read(out)
    errs = {k: v for k, v in _errors(errors).items() if k not in texts}
    return texts, errs, usage_of(out)


def parse_reply(parse: Callable[[str], T], raw: str) -> T:
    """`parse(raw)`; any failure of the parser on a reply (a bug, a reply that breaks it) is a
    ReplyParseError naming it, so the reply is re-asked and then reported, never fatal."""
    try:
        return parse(raw)
    except ReplyParseError:
        raise
    except Exception as exc:
        raise ReplyParseError(f"the reply broke the parser ({type(exc).__name__}: {exc})") from exc


def ask(
    requests: list[Request],
    prefix: Path,
    cfg: ModelConfig,
    parse: Callable[[str], T],
    retries: int = 2,
) -> tuple[dict[str, Answer[T]], dict[str, int]]:
    """One parsed answer per request key; unparsable replies are re-asked `retries` times."""
    answers: dict[str, Answer[T]] = {}
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    pending = list(requests)
    for attempt in range(retries + 1):
        if not pending:
            break
        round_prefix = prefix.with_name(f"{prefix.name}.ask{attempt}")
        texts, errs, u = sample(pending, round_prefix, cfg, 1)
        for k in usage:
            usage[k] += u[k]
        retry: list[Request] = []
        for req in pending:
            if req.key in errs or req.key not in texts:
                answers[req.key] = Answer(error=errs.get(req.key, "no reply"), kind="model_error")
                continue
            raw = texts[req.key][0]
            try:
                answers[req.key] = Answer(value=parse_reply(parse, raw), raw=raw)
            except ReplyParseError as exc:
                answers[req.key] = Answer(raw=raw, error=str(exc), kind="unparsed")
                note = (
                    f"Your previous reply could not be used: {exc}. Reply again with only the "
                    "JSON object asked for."
                )
                msgs = [
                    *req.messages,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": note},
                ]
                retry.append(Request(req.key, req.fields, msgs, req.images))
        pending = retry
    return answers, usage
