"""Image checks: is it an image we can use, what are its format and size.

Three depths, from thorough to cheap:

- `inspect_image(decode=True)` (`data validate`, `data export --full-images`): every pixel
  decodes. A PNG is checked without decoding its pixels: every chunk and its CRC, the header,
  the chunks Pillow parses, and the image data, inflated in full, its length and each
  scanline's filter type. That rejects what Pillow's decode rejects (bar its 64 MB cap on all
  text chunks together), and damage Pillow does not look at: checksums, image data longer or
  shorter than the header says, chunks cut short after the image data, a few PNG and APNG
  rules. Other formats are decoded with Pillow.
- `inspect_image(decode=False)` (`data validate --fast-images`): Pillow's structure check
  (for PNG, every chunk's CRC), no decode.
- `inspect_header` (`data export`): the header and the end of the file only, a few
  microseconds per image whatever its size. PNG: the signature, a valid IHDR (its CRC), the
  size within the pixel limit, an IEND chunk as the last bytes. JPEG: SOI, the segments up to
  the scan, with a frame header (SOFn) Pillow can read and a size within the limit, EOI as
  the last bytes. Other formats: Pillow's lazy open (header only) and its pixel limit. It
  rejects bytes that are no image, pixel bombs and truncated files; it cannot see damage
  inside the compressed data of a well-formed file (the full check does).

The pixel limit is Pillow's `Image.MAX_IMAGE_PIXELS` at every depth.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from deepvision.errors import ImageFormatError
from deepvision.records import IMAGES, PNG_SIGNATURE, RowIssue, sniff_mime

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
# The last 12 bytes of a PNG: the IEND chunk (empty body, so always the same CRC).
_IEND = b"\0\0\0\0IEND\xaeB`\x82"
# JPEG markers (the byte after 0xFF) as Pillow reads them: C0..FE are markers; of those, the
# frame headers (SOFn) are C0..CF but DHT (C4), JPG (C8) and DAC (CC), plus DHP (DE); C8 and
# D0..D9 (restart, SOI, EOI) have no length field.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xDE}
_JPEG_NO_LENGTH = frozenset({0xC8, *range(0xD0, 0xDA)})
_JPEG_SOS = 0xDA
_JPEG_DQT = 0xDB
_JPEG_EOI = b"\xff\xd9"


@dataclass(frozen=True)
class ImageInfo:
    ok: bool
    width: int = 0
    height: int = 0
    format: str = ""
    error: str = ""


_EMPTY = ImageInfo(False, error="image bytes are empty")


def inspect_image(data: ImageBytes | None, decode: bool = True) -> ImageInfo:
    """Open image bytes; with `decode`, check that every pixel decodes (PNG: see the module
    docstring), else check structure only (header, and chunk checksums for PNG)."""
    if not data:
        return _EMPTY
    view = memoryview(data).cast("B")
    if decode and view[:8] == PNG_SIGNATURE:
        return _sized(view, "PNG", _png_size)
    return _pillow(view, "load" if decode else "verify")


def inspect_header(data: ImageBytes | None) -> ImageInfo:
    """Check the header and the end of image bytes only (see the module docstring): a few
    microseconds per image, so `data export` checks every image inline. Damage inside the
    compressed data of a well-formed file passes; `inspect_image` finds it."""
    if not data:
        return _EMPTY
    view = memoryview(data).cast("B")
    mime = sniff_mime(view)
    if mime == "image/png":
        return _sized(view, "PNG", _png_header_size)
    if mime == "image/jpeg":
        return _sized(view, "JPEG", _jpeg_header_size)
    return _pillow(view, None)


def image_issues(images: Sequence[ImageBytes | None], decode: bool = True) -> list[RowIssue]:
    """What is wrong with the images of one row, as every command reports it (`data validate`
    and `data export --full-images` reject the row for it): one issue per image that does
    not decode."""
    return _issues(images, lambda data: inspect_image(data, decode))


def header_issues(images: Sequence[ImageBytes | None]) -> list[RowIssue]:
    """`image_issues` at the depth of `inspect_header` (`data export` rejects the row for
    them)."""
    return _issues(images, inspect_header)


def _issues(
    images: Sequence[ImageBytes | None], inspect: Callable[[ImageBytes | None], ImageInfo]
) -> list[RowIssue]:
    infos = (inspect(data) for data in images)
    return [
        RowIssue(IMAGES, f"image {i}: {info.error}") for i, info in enumerate(infos) if not info.ok
    ]


def _sized(data: memoryview, fmt: str, size: Callable[[memoryview], tuple[int, int]]) -> ImageInfo:
    """The ImageInfo of `size(data)`: its width and height, or why it has none."""
    try:
        width, height = size(data)
    except ImageFormatError as exc:
        return ImageInfo(False, error=f"image does not decode ({exc})")
    except Image.DecompressionBombError as exc:
        return ImageInfo(False, error=f"not a decodable image ({exc})")
    return ImageInfo(True, width, height, fmt)


def _pillow(data: memoryview, then: Literal["load", "verify"] | None) -> ImageInfo:
    """Open with Pillow (its header and pixel limit), then decode every pixel (`load`), check
    its structure (`verify`), or nothing more."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                info = ImageInfo(True, im.width, im.height, im.format or "")
                if then == "load":
                    im.load()
                elif then == "verify":
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


def _png_header_size(data: memoryview) -> tuple[int, int]:
    """Width and height of a PNG whose IHDR is valid (CRC included) and within the pixel
    limit, and whose last bytes are the IEND chunk; raises ImageFormatError otherwise."""
    width, height, *_ = _ihdr(_chunks(data))
    if data[-len(_IEND) :] != _IEND:
        raise ImageFormatError(
            "no IEND chunk at the end: the data is truncated, or has bytes after its end"
        )
    return width, height


def _jpeg_header_size(data: memoryview) -> tuple[int, int]:
    """Width and height of a JPEG whose segments, from SOI to the start of scan, are whole,
    one of them a frame header Pillow reads, and whose last bytes are EOI; raises
    ImageFormatError otherwise."""
    size = None
    pos, end = 2, len(data)  # after SOI
    while True:
        marker, pos = _jpeg_marker(data, pos)
        if marker in _JPEG_NO_LENGTH:
            continue
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > end:
            raise ImageFormatError(f"JPEG segment {marker:02X} at byte {pos - 2} is cut short")
        if marker in _JPEG_FRAMES:
            size = _jpeg_frame(data[pos + 2 : pos + length])
        elif marker == _JPEG_DQT:
            _check_jpeg_tables(data[pos + 2 : pos + length])
        pos += length
        if marker == _JPEG_SOS:
            break
    if size is None:
        raise ImageFormatError("no JPEG frame header (SOFn) before the scan")
    if data[-2:] != _JPEG_EOI:
        raise ImageFormatError(
            "no EOI marker at the end: the data is truncated, or has bytes after its end"
        )
    return size


def _jpeg_marker(data: memoryview, pos: int) -> tuple[int, int]:
    """The JPEG marker at `pos` (fill bytes 0xFF before it skipped) and the position after it."""
    end = len(data)
    if pos >= end - 1:
        raise ImageFormatError("JPEG data ends before the start of scan (truncated?)")
    if data[pos] != 0xFF:
        raise ImageFormatError(f"no JPEG marker at byte {pos}")
    while pos < end - 1 and data[pos + 1] == 0xFF:
        pos += 1
    marker = data[pos + 1]
    if marker < 0xC0:
        raise ImageFormatError(f"invalid JPEG marker {marker:02X} at byte {pos}")
    return marker, pos + 2


def _check_jpeg_tables(body: memoryview) -> None:
    """A DQT segment holds whole quantization tables (64 values of 1 or 2 bytes each), as
    Pillow requires when it opens the file."""
    pos = 0
    while pos < len(body):
        pos += 1 + 64 * (1 if body[pos] < 16 else 2)
    if pos != len(body):
        raise ImageFormatError("JPEG quantization table segment is not whole tables")


def _jpeg_frame(body: memoryview) -> tuple[int, int]:
    """Width and height in a JPEG frame header Pillow reads: 8-bit samples, 1, 3 or 4
    components, a length that fits them, a size that is not empty nor past the pixel limit."""
    if len(body) < 6:
        raise ImageFormatError(f"JPEG frame header of {len(body) + 2} bytes")
    bits, height, width, components = struct.unpack_from(">BHHB", body)
    if bits != 8 or components not in (1, 3, 4) or len(body) != 6 + 3 * components:
        raise ImageFormatError(
            f"JPEG frame of {bits}-bit samples and {components} components in {len(body) + 2} bytes"
        )
    if not (width and height):
        raise ImageFormatError(f"invalid image size {width}x{height}")
    _check_pixels(width, height)
    return width, height


def _png_size(data: memoryview) -> tuple[int, int]:
    """Width and height of a PNG whose pixels decode; raises ImageFormatError otherwise."""
    chunks = _chunks(data)
    width, height, color, bits, interlace = _ihdr(chunks)
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


def _ihdr(chunks: Iterator[tuple[bytes, memoryview]]) -> tuple[int, int, int, int, int]:
    """`_header` of the first of `chunks`, which must be a 13-byte IHDR."""
    ctype, ihdr = next(chunks, (b"", b""))
    if ctype != b"IHDR" or len(ihdr) != 13:
        raise ImageFormatError("the first chunk is not a 13-byte IHDR")
    return _header(ihdr)


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
    _check_pixels(width, height)
    return width, height, color, depth * _CHANNELS[color], interlace


def _check_pixels(width: int, height: int) -> None:
    """DecompressionBombError, worded as Pillow words it, past Pillow's pixel limit (Pillow
    only warns up to twice the limit; every check here refuses both)."""
    limit, pixels = Image.MAX_IMAGE_PIXELS, width * height
    if limit is not None and pixels > limit:
        limit *= 2 if pixels > 2 * limit else 1
        raise Image.DecompressionBombError(
            f"Image size ({pixels} pixels) exceeds limit of {limit} pixels, "
            "could be decompression bomb DOS attack."
        )


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
