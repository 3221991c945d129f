"""Turn chat messages with `<image>` placeholders into OpenAI content parts, images as
base64 data URIs, built only when the request is about to be sent."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

PLACEHOLDER = "<image>"
ImageSource = Callable[[], tuple[bytes, str]]  # -> (bytes, mime type)


def sniff_mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "application/octet-stream"


def bytes_source(data: bytes) -> ImageSource:
    """An ImageSource for bytes already in memory (the MIME type is read from them)."""
    return lambda: (data, sniff_mime(data))


def problem_image_sources(problem: Any) -> list[ImageSource]:
    """The image sources of a Problem, in order (empty bytes for an image without them)."""
    return [bytes_source(im.bytes or b"") for im in problem.images]


def data_uri(data: bytes, mime: str | None = None) -> str:
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode()}"


def openai_messages(
    messages: Sequence[dict[str, str]], images: Sequence[ImageSource]
) -> list[dict[str, Any]]:
    """Messages for /v1/chat/completions: each `<image>` in a user turn becomes an image part
    (in order); images without placeholders go first in the last user turn."""
    count = sum(
        m.get("content", "").count(PLACEHOLDER) for m in messages if m.get("role") == "user"
    )
    if count not in (0, len(images)):
        raise ValueError(f"{count} <image> placeholder(s) but {len(images)} image(s)")
    pending = list(images)
    out: list[dict[str, Any]] = []
    last_user = max((k for k, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    for k, m in enumerate(messages):
        text = m.get("content", "") or ""
        if m.get("role") != "user" or (not pending):
            out.append({"role": m.get("role", "user"), "content": text})
            continue
        parts: list[dict[str, Any]] = []
        if count == 0 and k == last_user:
            for src in pending:
                parts.append(_image_part(src))
            pending = []
            parts.append({"type": "text", "text": text})
        else:
            pieces = text.split(PLACEHOLDER)
            for i, piece in enumerate(pieces):
                if piece:
                    parts.append({"type": "text", "text": piece})
                if i < len(pieces) - 1:
                    parts.append(_image_part(pending.pop(0)))
        out.append({"role": "user", "content": parts})
    return out


def _image_part(src: ImageSource) -> dict[str, Any]:
    data, mime = src()
    return {"type": "image_url", "image_url": {"url": data_uri(data, mime)}}
