"""Image checks: does it decode, what are its format and size."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class ImageInfo:
    ok: bool
    width: int = 0
    height: int = 0
    format: str = ""
    error: str = ""


def inspect_image(data: bytes | None, decode: bool = True) -> ImageInfo:
    """Open image bytes; with `decode`, decode every pixel, else check structure only
    (header, and chunk checksums for PNG)."""
    if not data:
        return ImageInfo(False, error="image bytes are empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                info = ImageInfo(True, im.width, im.height, im.format or "")
                if decode:
                    im.load()
                else:
                    im.verify()
        return info
    except (UnidentifiedImageError, Image.DecompressionBombWarning) as exc:
        return ImageInfo(False, error=f"not a decodable image ({exc})")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return ImageInfo(False, error=f"image does not decode ({exc})")


def inspect_many(items: list[list[bytes | None]], decode: bool = True) -> list[list[ImageInfo]]:
    """inspect_image over the images of many rows (a unit of work for a process pool)."""
    return [[inspect_image(b, decode) for b in row] for row in items]
