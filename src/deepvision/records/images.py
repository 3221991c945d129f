"""Image helpers of the on-disk contract, each decided once: the format a byte string holds,
data URIs both ways, where images go when a text has no placeholders, `<image k>` markers,
and which paths a record may name.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from deepvision.errors import DataError

__all__ = [
    "IMAGE_MARKER",
    "IMAGE_PLACEHOLDER",
    "PNG_SIGNATURE",
    "count_placeholders",
    "data_uri",
    "decode_data_uri",
    "place_images",
    "resolve_inside",
    "sniff_mime",
]

IMAGE_PLACEHOLDER = "<image>"
# MMMU-style numbered markers, `<image 1>` .. `<image 7>`; group 1 is the number.
IMAGE_MARKER = re.compile(r"<image\s*(\d+)>")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def sniff_mime(data: bytes | memoryview) -> str:
    """The MIME type the leading bytes announce (`application/octet-stream` when unknown)."""
    head = bytes(data[:12])
    if head.startswith(PNG_SIGNATURE):
        return "image/png"
    if head.startswith(JPEG_SIGNATURE):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


def data_uri(data: bytes | memoryview, mime: str | None = None) -> str:
    """`data:<mime>;base64,...` (the MIME type sniffed from the bytes when not given)."""
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode()}"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """(bytes, mime) of a base64 data URI; anything else is a DataError saying why."""
    header, sep, payload = uri.partition(",")
    if not header.startswith("data:") or not sep:
        raise DataError("image reference is not a data URI")
    if ";base64" not in header:
        raise DataError("image data URI is not base64-encoded")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DataError(f"image data URI has bad base64: {exc}") from None
    mime = header[5:].split(";")[0] or sniff_mime(data)
    return data, mime


def count_placeholders(text: str) -> int:
    return text.count(IMAGE_PLACEHOLDER)


def place_images(text: str, images: int) -> str:
    """`text` with exactly one `<image>` per image: a text without placeholders gets them in
    front (images first, the DeepVision-103K convention); a text with placeholders keeps their
    positions. A count that disagrees with the images raises ValueError."""
    n = count_placeholders(text)
    if n == 0 and images:
        return IMAGE_PLACEHOLDER * images + "\n" + text
    if n != images:
        raise ValueError(
            f"{n} {IMAGE_PLACEHOLDER} placeholder(s) in the text but {images} image(s)"
        )
    return text


def resolve_inside(ref: str, base: Path, *, allow_absolute: bool = False) -> Path:
    """The file a record's image path names: relative paths resolve inside `base` (the data
    folder) and may not leave it; absolute paths only when `allow_absolute`. Anything else is a
    DataError naming the path (nothing outside the data folder is read by accident)."""
    path = Path(ref)
    if path.is_absolute():
        if not allow_absolute:
            raise DataError(f"image path {ref!r} is absolute (outside the data folder)")
        return path
    root = base.resolve()
    full = (root / path).resolve()
    if full != root and root not in full.parents:
        raise DataError(f"image path {ref!r} leaves the data folder {base}")
    return full
