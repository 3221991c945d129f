"""Image checks: does it decode, what are its format and size.

With `decode`, a PNG is checked without decoding its pixels: every chunk and its CRC, the
header, the chunks Pillow parses, and the image data, inflated in full, its length and each
scanline's filter type. That rejects what Pillow's decode rejects (bar its 64 MB cap on all
text chunks together), and damage Pillow does not look at: checksums, image data longer or
shorter than the header says, chunks cut short after the image data, a few PNG and APNG rules.
Other formats are decoded with Pillow.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from deepvision.errors import ImageFormatError
from deepvision.records import IMAGES, PNG_SIGNATURE, RowIssue

try:
    from isal import isal_zlib as _zlib
except ImportError:
    _zlib = zlib

ImageBytes = bytes | bytearray | memoryview

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
# The shortest body Pillow accepts for the chunks it parses (tRNS depends on the colour type).
_MIN_LENGTH = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"acTL": 8, b"fcTL": 26, b"fdAT": 4}
_TRNS_LENGTH = {0: 2, 2: 6}


@dataclass(frozen=True)
class ImageInfo:
    ok: bool
    width: int = 0
    height: int = 0
    format: str = ""
    error: str = ""


def inspect_image(data: ImageBytes | None, decode: bool = True) -> ImageInfo:
    """Open image bytes; with `decode`, check that every pixel decodes (PNG: see the module
    docstring), else check structure only (header, and chunk checksums for PNG)."""
    if not data:
        return ImageInfo(False, error="image bytes are empty")
    view = memoryview(data).cast("B")
    if decode and view[:8] == PNG_SIGNATURE:
        return _inspect_png(view)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(view)) as im:
                info = ImageInfo(True, im.width, im.height, im.format or "")
                if decode:
                    im.load()
                else:
                    im.verify()
        return info
    except (
        UnidentifiedImageError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        return ImageInfo(False, error=f"not a decodable image ({exc})")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return ImageInfo(False, error=f"image does not decode ({exc})")


def image_issues(images: list[ImageBytes | None], decode: bool = True) -> list[RowIssue]:
    """What is wrong with the images of one row, as every command reports it (`data validate`
    and `data export` reject the row for it): one issue per image that does not decode."""
    infos = (inspect_image(data, decode) for data in images)
    return [
        RowIssue(IMAGES, f"image {i}: {info.error}") for i, info in enumerate(infos) if not info.ok
    ]


def _inspect_png(data: memoryview) -> ImageInfo:
    try:
        width, height = _png_size(data)
    except ImageFormatError as exc:
        return ImageInfo(False, error=f"image does not decode ({exc})")
    except Image.DecompressionBombError as exc:
        return ImageInfo(False, error=f"not a decodable image ({exc})")
    return ImageInfo(True, width, height, "PNG")


def _png_size(data: memoryview) -> tuple[int, int]:
    """Width and height of a PNG whose pixels decode; raises ImageFormatError otherwise."""
    chunks = _chunks(data)
    ctype, ihdr = next(chunks, (b"", b""))
    if ctype != b"IHDR" or len(ihdr) != 13:
        raise ImageFormatError("the first chunk is not a 13-byte IHDR")
    width, height, color, bits, interlace = _header(ihdr)
    idat: list[memoryview] = []
    idat_ended = palette = framed = False
    sequence = 0
    for ctype, body in chunks:
        name = ctype.decode()
        if ctype == b"IDAT":
            if idat_ended:
                raise ImageFormatError("IDAT chunks are not consecutive")
            if color == 3 and not palette:
                raise ImageFormatError("no PLTE chunk before IDAT")
            idat.append(body)
            continue
        idat_ended = bool(idat)
        if ctype == b"IHDR":
            raise ImageFormatError("a second IHDR chunk")
        if ctype == b"PLTE" and color == 3 and not idat:
            if not 0 < len(body) <= 768 or len(body) % 3:
                raise ImageFormatError(f"PLTE chunk of {len(body)} bytes")
            palette = True
        minimum = _TRNS_LENGTH.get(color, 0) if ctype == b"tRNS" else _MIN_LENGTH.get(ctype, 0)
        if len(body) < minimum:
            raise ImageFormatError(f"{name} chunk is too short ({len(body)} bytes)")
        if ctype in (b"fcTL", b"fdAT"):
            if int.from_bytes(body[:4], "big") != sequence:
                raise ImageFormatError(f"APNG sequence number out of order in {name} chunk")
            if ctype == b"fdAT" and not framed:
                raise ImageFormatError("APNG fdAT chunk before any fcTL chunk")
            sequence += 1
        if ctype == b"fcTL":
            framed = True
            fw, fh, fx, fy = struct.unpack_from(">4I", body, 4)
            if fx + fw > width or fy + fh > height:
                raise ImageFormatError("APNG frame lies outside the image")
            # Pillow decodes IDAT at the size of an fcTL before it; the APNG rules say that
            # frame is the whole image.
            if not idat and (fw, fh, fx, fy) != (width, height, 0, 0):
                raise ImageFormatError("APNG frame of the default image is not the whole image")
        elif ctype in (b"iCCP", b"zTXt", b"iTXt"):
            _check_compressed_text(ctype, bytes(body))
    if not idat:
        raise ImageFormatError("no IDAT chunk")
    _check_image_data(idat, _scanlines(width, height, bits, interlace))
    return width, height


def _chunks(data: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """Type and body of each chunk before IEND (or the end of data), length and CRC checked."""
    pos, end = 8, len(data)
    while pos < end:
        if pos + 8 > end:
            raise ImageFormatError(f"data is truncated in a chunk header at byte {pos}")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if not ctype.isalpha():
            raise ImageFormatError(f"invalid chunk type {ctype!r} at byte {pos}")
        stop = pos + 8 + length
        if stop + 4 > end:
            raise ImageFormatError(f"data is truncated in the {ctype.decode()} chunk at byte {pos}")
        body = data[pos + 8 : stop]
        if _zlib.crc32(body, _zlib.crc32(ctype)) != int.from_bytes(data[stop : stop + 4], "big"):
            raise ImageFormatError(f"CRC mismatch in {ctype.decode()} chunk")
        if ctype == b"IEND":
            return
        yield ctype, body
        pos = stop + 4


def _header(ihdr: memoryview) -> tuple[int, int, int, int, int]:
    """Width, height, colour type, bits per pixel and interlace method of a valid IHDR."""
    width, height, depth, color, compression, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise ImageFormatError(f"invalid image size {width}x{height}")
    if depth not in _BIT_DEPTHS.get(color, ()):
        raise ImageFormatError(f"invalid bit depth {depth} for colour type {color}")
    if compression or filtering or interlace > 1:
        raise ImageFormatError(
            f"unknown method (compression {compression}, filter {filtering}, interlace {interlace})"
        )
    limit, pixels = Image.MAX_IMAGE_PIXELS, width * height
    if limit is not None and pixels > limit:
        limit *= 2 if pixels > 2 * limit else 1
        raise Image.DecompressionBombError(
            f"Image size ({pixels} pixels) exceeds limit of {limit} pixels, "
            "could be decompression bomb DOS attack."
        )
    return width, height, color, depth * _CHANNELS[color], interlace


def _check_compressed_text(ctype: bytes, body: bytes) -> None:
    """What Pillow rejects in iCCP, zTXt and iTXt: an unknown compression method, or text
    that inflates past PngImagePlugin.MAX_TEXT_CHUNK."""
    _, nul, rest = body.partition(b"\0")
    if ctype == b"iTXt":
        fields = rest[2:].split(b"\0", 2)
        if not nul or len(rest) < 2 or rest[0] == 0 or rest[1] != 0 or len(fields) < 3:
            return
        stream = fields[2]
    elif ctype == b"zTXt" and not rest:
        return
    elif rest[:1] != b"\0":
        raise ImageFormatError(f"unknown compression method in {ctype.decode()} chunk")
    else:
        stream = rest[1:]
    inflater = zlib.decompressobj()
    try:
        inflater.decompress(stream, PngImagePlugin.MAX_TEXT_CHUNK)
    except zlib.error:
        return
    if inflater.unconsumed_tail:
        raise ImageFormatError(f"{ctype.decode()} chunk inflates past MAX_TEXT_CHUNK")


def _scanlines(width: int, height: int, bits: int, interlace: int) -> list[tuple[int, int, int]]:
    """(Adam7 pass number or 0, rows, bytes per row with its filter byte) of each non-empty
    pass."""
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    layout = []
    for number, (x0, y0, dx, dy) in enumerate(passes, 1 if interlace else 0):
        cols, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if cols and rows:
            layout.append((number, rows, 1 + (cols * bits + 7) // 8))
    return layout


def _check_zlib_header(idat: list[memoryview]) -> None:
    """The zlib header zlib itself (so Pillow) accepts: deflate with a window of at most 32 KB,
    a valid check value, no preset dictionary. ISA-L's inflate is laxer about the window."""
    head = b"".join(bytes(part[:2]) for part in idat)[:2]
    if len(head) < 2:
        raise ImageFormatError("image data is truncated (no zlib header)")
    cmf, flg = head
    if cmf & 0x0F != 8 or cmf >> 4 > 7 or (cmf << 8 | flg) % 31 or flg & 0x20:
        raise ImageFormatError(f"invalid zlib header {head.hex()} in IDAT data")


def _check_image_data(idat: list[memoryview], layout: list[tuple[int, int, int]]) -> None:
    """Inflate the IDAT stream: it must end, hold exactly the scanlines of `layout`, and each
    scanline must start with a known filter type."""
    expected = sum(rows * size for _, rows, size in layout)
    _check_zlib_header(idat)
    inflater = _zlib.decompressobj()
    try:
        raw = inflater.decompress(idat[0] if len(idat) == 1 else b"".join(idat), expected + 1)
    except _zlib.error as exc:
        text = str(exc)
        if "data check" in text or "checksum" in text:
            raise ImageFormatError("zlib checksum mismatch in IDAT data") from None
        raise ImageFormatError(f"corrupt zlib stream in IDAT data ({text})") from None
    if len(raw) > expected:
        raise ImageFormatError(f"inflated data is longer than the expected {expected} bytes")
    if len(raw) < expected:
        if inflater.eof:
            raise ImageFormatError(f"inflated data is {len(raw)} bytes, expected {expected}")
        raise ImageFormatError(f"image data is truncated ({len(raw)} of {expected} bytes inflated)")
    if not inflater.eof:
        raise ImageFormatError("zlib stream in IDAT data does not end")
    buf = np.frombuffer(raw, np.uint8)
    start = 0
    for number, rows, size in layout:
        filters = buf[start : start + rows * size : size]
        bad = np.flatnonzero(filters > 4)
        if bad.size:
            where = f"row {bad[0]}" + (f" of pass {number}" if number else "")
            raise ImageFormatError(f"invalid filter type {filters[bad[0]]} on {where}")
        start += rows * size
