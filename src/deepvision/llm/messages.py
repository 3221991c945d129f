"""Turn chat messages with `<image>` placeholders into OpenAI content parts, images as base64
data URIs, built only when the request is about to be sent.

Where images go is decided by `records.place_images`: each placeholder in a user turn takes the
next image; a conversation without placeholders gets its images first in its last user turn.
`chat_body` writes the JSON body of a request with the images' base64 spliced in as bytes: the
JSON encoder never walks the (long, escape-free) base64 text, which costs more than the rest
of a request (0.4 ms for a 60 KB image).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from deepvision.records import (
    IMAGE_PLACEHOLDER,
    count_placeholders,
    data_uri,
    place_images,
    sniff_mime,
)

__all__ = [
    "ImageSource",
    "bytes_source",
    "chat_body",
    "openai_messages",
    "problem_image_sources",
]

ImageSource = Callable[[], tuple[bytes, str]]  # -> (bytes, mime type)


def bytes_source(data: bytes) -> ImageSource:
    """An ImageSource for bytes already in memory (the MIME type is read from them)."""
    return lambda: (data, sniff_mime(data))


def problem_image_sources(problem: Any) -> list[ImageSource]:
    """The image sources of a Problem, in order (empty bytes for an image without them)."""
    return [bytes_source(im.bytes or b"") for im in problem.images]


def _placed(messages: Sequence[dict[str, Any]], images: int) -> list[tuple[str, Any]]:
    """(role, content) of each message, user texts holding exactly one placeholder per image."""
    out = [(str(m.get("role") or "user"), m.get("content")) for m in messages]
    users = [k for k, (role, c) in enumerate(out) if role == "user" and isinstance(c, str)]
    found = sum(count_placeholders(out[k][1]) for k in users)
    if found == 0 and images and users:
        k = users[-1]
        out[k] = ("user", place_images(out[k][1], images))
    elif found != images:
        raise ValueError(
            f"{found} {IMAGE_PLACEHOLDER} placeholder(s) in the text but {images} image(s)"
        )
    return out


def _content(role: str, content: Any, image_part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if role != "user" or not isinstance(content, str) or IMAGE_PLACEHOLDER not in content:
        return {"role": role, "content": "" if content is None else content}
    parts: list[dict[str, Any]] = []
    pieces = content.split(IMAGE_PLACEHOLDER)
    for i, piece in enumerate(pieces):
        if piece:
            parts.append({"type": "text", "text": piece})
        if i < len(pieces) - 1:
            parts.append(image_part())
    return {"role": role, "content": parts}


def _build(
    messages: Sequence[dict[str, Any]], n_images: int, image_part: Callable[[], dict[str, Any]]
) -> list[dict[str, Any]]:
    return [_content(role, c, image_part) for role, c in _placed(messages, n_images)]


def openai_messages(
    messages: Sequence[dict[str, Any]], images: Sequence[ImageSource]
) -> list[dict[str, Any]]:
    """Messages for /v1/chat/completions: each `<image>` in a user turn becomes an image part
    (in order); images without placeholders go first in the last user turn."""
    pending = iter(images)

    def image_part() -> dict[str, Any]:
        data, mime = next(pending)()
        return {"type": "image_url", "image_url": {"url": data_uri(data, mime)}}

    return _build(messages, len(images), image_part)


# A stand-in for each image while the body is JSON-encoded, replaced by the data URI after.
_MARK = "dv-image-" + secrets.token_hex(8) + "-"


def chat_body(
    messages: Sequence[dict[str, Any]], images: Sequence[ImageSource], **params: Any
) -> bytes:
    """The JSON body of a chat completion request (`params`: model, n, sampling, ...), images
    read now and written as data URIs. Same JSON as `json.dumps({**params, "messages":
    openai_messages(messages, images)})`, built about 20 times faster."""
    count = iter(range(len(images)))

    def image_part() -> dict[str, Any]:
        return {"type": "image_url", "image_url": {"url": f"{_MARK}{next(count)}"}}

    skeleton = {**params, "messages": _build(messages, len(images), image_part)}
    encoded = json.dumps(skeleton, ensure_ascii=False).encode()
    if not images:
        return encoded
    out: list[bytes] = []
    rest = encoded
    for k, src in enumerate(images):
        head, sep, rest = rest.partition(f'"{_MARK}{k}"'.encode())
        if not sep:  # cannot happen: each image has its part
            raise AssertionError("image marker lost while encoding the request")
        data, mime = src()
        prefix = json.dumps(data_uri(b"", mime)).encode()[:-1]  # '"data:<mime>;base64,'
        out += (head, prefix, base64.b64encode(data), b'"')
    out.append(rest)
    return b"".join(out)
