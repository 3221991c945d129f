"""What `infer` sends, from its two kinds of input: Problems (their prompt messages built by
the caller) and inference JSONL lines (`{"id", "messages", "images"?, ...}`).

An inference JSONL line names its images as paths relative to the JSONL's folder (read only
inside it; absolute paths only with `allow_absolute`) or as base64 data URIs. Images are read,
and their paths checked, when the request's body is built (in `infer`'s worker process): a path
that leaves the folder fails its item alone, like an unreadable image. A line that is not usable
becomes a Request with its `error` set: the item fails alone, recorded in the errors file, and
the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from deepvision.errors import DataError
from deepvision.llm.client import Request
from deepvision.llm.messages import FileImage, ImageSource, UriImage, problem_image_sources
from deepvision.records import iter_jsonl

__all__ = [
    "PROBLEM_FIELDS",
    "file_image_source",
    "is_inference_jsonl",
    "jsonl_requests",
    "problem_request",
    "uri_image_source",
]

# What an output line keeps of a Problem.
PROBLEM_FIELDS = ("question", "answer", "equivalent_answers", "options", "data_source", "topic")


def problem_request(
    problem: Any, messages: list[dict[str, Any]], fields: Sequence[str] = PROBLEM_FIELDS
) -> Request:
    """The request of a Problem, given its prompt messages (`<image>` placeholders and all)."""
    kept = {k: getattr(problem, k) for k in fields}
    return Request(problem.id, kept, messages, problem_image_sources(problem))


def file_image_source(
    ref: str, folder: Path, *, allow_absolute: bool = False, where: str | None = None
) -> ImageSource:
    """An ImageSource reading the file `ref` names inside `folder` when called (DataError
    naming `where` if it may not or cannot be read)."""
    return FileImage(ref, folder, allow_absolute=allow_absolute, where=where)


def uri_image_source(uri: str, *, where: str | None = None) -> ImageSource:
    """An ImageSource decoding a base64 data URI when called (DataError if it is not one)."""
    return UriImage(uri, where)


def is_inference_jsonl(path: Path, *, probe_lines: int = 1000) -> bool:
    """Whether `path` is an inference JSONL rather than a problems JSONL: the first line that
    is a JSON object with `messages` or `question` has `messages`. Bad lines (not JSON, or
    objects with neither) do not decide: a torn first line must not turn a whole inference
    file into rejected problems. Only the first `probe_lines` non-blank lines are looked at."""
    with path.open("rb") as fh:
        seen = 0
        for raw in fh:
            if not raw.strip():
                continue
            seen += 1
            if seen > probe_lines:
                break
            try:
                obj = json.loads(raw)
            except (UnicodeDecodeError, ValueError):
                continue
            if isinstance(obj, dict) and ("messages" in obj or "question" in obj):
                return "messages" in obj
    return False


def _line_request(
    obj: dict[str, Any],
    path: Path,
    line: int,
    system_prompt: str | None,
    allow_absolute: bool,
    folder: Path,
) -> Request:
    where = f"{path}:{line}"
    messages = obj.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise DataError("'messages' must be a list of objects", file=str(path), line=line)
    refs = obj.get("images") or []
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise DataError("'images' must be a list of paths or data URIs", file=str(path), line=line)
    sources: list[ImageSource] = []
    for ref in refs:
        if ref.startswith("data:"):
            sources.append(uri_image_source(ref, where=where))
        else:  # checked to stay inside `folder` when read, off the event loop
            sources.append(
                file_image_source(ref, folder, allow_absolute=allow_absolute, where=where)
            )
    msgs = list(messages)
    if system_prompt is not None and not any(m.get("role") == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    fields = {k: v for k, v in obj.items() if k not in ("messages", "images")}
    if not any(r.startswith("data:") for r in refs):
        fields["images"] = obj.get("images")
    return Request(str(obj["id"]), fields, msgs, sources)


def jsonl_requests(
    path: Path, system_prompt: str | None = None, *, allow_absolute: bool = False
) -> Iterator[Request]:
    """One Request per non-blank line of an inference JSONL. `system_prompt` is added to the
    lines without a system turn. A bad line (not JSON, no id or messages, `images` not a
    list of strings) yields a Request with `error` set, keyed by its id or `FILE:LINE`; an
    image path that leaves the folder fails when the image is read (`FileImage`)."""
    path = Path(path)
    folder = path.parent.resolve()
    bad: list[DataError] = []
    for no, obj in iter_jsonl(path, on_bad=bad.append, objects_only=False):
        while bad:  # lines that are not JSON come out just before the next good one
            err = bad.pop(0)
            yield Request(f"{path.name}:{err.line}", {}, [], error=str(err))
        if not isinstance(obj, dict) or obj.get("id") in (None, ""):
            err = DataError("line needs an 'id' and 'messages'", file=str(path), line=no)
            yield Request(f"{path.name}:{no}", {}, [], error=str(err))
            continue
        try:
            yield _line_request(obj, path, no, system_prompt, allow_absolute, folder)
        except DataError as exc:
            yield Request(str(obj["id"]), {}, [], error=str(exc))
    for err in bad:
        yield Request(f"{path.name}:{err.line}", {}, [], error=str(err))
