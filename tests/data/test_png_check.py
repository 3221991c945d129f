"""The PNG structural check of inspect_image(decode=True) against Pillow's full decode, and
the header check of `data export` (inspect_header) against Pillow's open: PNG, JPEG, others."""

from __future__ import annotations

import io
import random
import re
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pyarrow as pa
import pytest
from isal import isal_zlib
from PIL import Image, PngImagePlugin

from deepvision.data import images
from deepvision.data.images import inspect_header, inspect_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a well-formed PNG."""
    out, pos = [], 8
    while pos < len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        out.append((ctype, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def assemble(parts: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(chunk(t, b) for t, b in parts)


def save(im: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **params)
    return buf.getvalue()


def interlaced(pixels: np.ndarray, color_type: int, depth: int = 8) -> bytes:
    """An Adam7 PNG of `pixels` (rows x cols, or rows x cols x channels), filter type 0."""
    height, width = pixels.shape[:2]
    raw = bytearray()
    for x0, y0, dx, dy in ADAM7:
        sub = pixels[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            for row in sub:
                raw += b"\0" + (np.packbits(row).tobytes() if depth == 1 else row.tobytes())
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1)
    return assemble([(b"IHDR", ihdr), (b"IDAT", zlib.compress(bytes(raw))), (b"IEND", b"")])


def pil_decodes(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except Exception:
        return False
    return True


def _valid_pngs() -> dict[str, tuple[bytes, tuple[int, int]]]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (150, 200, 4), dtype=np.uint8)
    gradient = np.add.outer(np.arange(60), np.arange(90)).astype(np.uint8)
    rgba = Image.fromarray(noise, "RGBA")
    found: dict[str, bytes] = {
        "1": save(Image.fromarray(gradient[:37, :13] % 2 == 0)),
        "L": save(Image.fromarray(gradient)),
        "LA": save(Image.fromarray(noise[:40, :50, :2], "LA")),
        "P": save(rgba.convert("RGB").quantize(16), transparency=3),
        "RGB": save(rgba.convert("RGB")),
        "RGBA": save(rgba),
        "I;16": save(Image.fromarray(gradient.astype(np.uint16) * 700)),
        "RGB text and ICC": save(
            Image.fromarray(noise[:30, :30, :3], "RGB"),
            pnginfo=_text_info(),
            icc_profile=b"\0" * 200,
        ),
        "APNG": save(
            Image.fromarray(gradient), save_all=True, append_images=[Image.fromarray(~gradient)]
        ),
    }
    for h, w in ((1, 1), (2, 3), (7, 9), (31, 17)):
        found[f"interlaced RGB {w}x{h}"] = interlaced(noise[:h, :w, :3], 2)
    found["interlaced 1-bit 13x11"] = interlaced(gradient[:11, :13] % 3 == 0, 0, 1)
    sizes = {}
    for name, data in found.items():
        with Image.open(io.BytesIO(data)) as im:
            sizes[name] = (data, im.size)
    return sizes


def _text_info() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "triangle")
    info.add_text("Comment", "compressed " * 20, zip=True)
    info.add_itxt("Author", "Ünïcode", zip=True)
    return info


VALID = _valid_pngs()


@pytest.mark.parametrize("name", list(VALID))
def test_valid_png_is_accepted(name):
    data, (width, height) = VALID[name]
    info = inspect_image(data)
    assert info == images.ImageInfo(True, width, height, "PNG")
    assert pil_decodes(data)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == name.split()[0] or name.startswith(("RGB ", "APNG", "interlaced"))
        assert im.info.get("interlace", 0) == name.startswith("interlaced")


def test_valid_pngs_cover_several_idat_chunks():
    assert max(len(_idat_indexes(data)) for data, _ in VALID.values()) > 1


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 3), (7, 9), (31, 17)])
def test_interlaced_writer_round_trips_pixels(height, width):
    pixels = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(interlaced(pixels, 2))) as im:
        assert np.array_equal(np.asarray(im), pixels)
    bits = np.random.default_rng(2).integers(0, 2, (height + 10, width + 5)).astype(bool)
    with Image.open(io.BytesIO(interlaced(bits, 0, 1))) as im:
        assert np.array_equal(np.asarray(im), bits)


def test_memoryview_and_arrow_buffer_input():
    data, size = VALID["RGB"]
    for view in (memoryview(data), memoryview(pa.py_buffer(data)), bytearray(data)):
        assert inspect_image(view) == images.ImageInfo(True, *size, "PNG")
    jpeg = _jpeg()
    assert inspect_image(memoryview(pa.py_buffer(jpeg))).format == "JPEG"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.add.outer(np.arange(48), np.arange(64)).astype(np.uint8)).save(
        buf, format="JPEG"
    )
    return buf.getvalue()


def _replace(data: bytes, index: int, body: bytes) -> bytes:
    parts = chunks(data)
    parts[index] = (parts[index][0], body)
    return assemble(parts)


def _idat_indexes(data: bytes) -> list[int]:
    return [i for i, (t, _) in enumerate(chunks(data)) if t == b"IDAT"]


def corruptions(seed: int = 0) -> list[tuple[str, bytes, bytes]]:
    """(kind of damage, damaged bytes, the PNG they came from) for a few hundred cases."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes, bytes]] = [("empty", b"", b"")]
    for _ in range(10):
        out.append(("random bytes", rng.randbytes(rng.randrange(1, 400)), b""))
        out.append(("random after signature", PNG_SIGNATURE + rng.randbytes(400), b""))
    for data, _ in VALID.values():
        parts = chunks(data)
        idats = _idat_indexes(data)
        ends = {len(data) - k for k in (1, 3, 4, 5, 8, 11, 12, 13, 16, 20)}
        for cut in sorted(ends | {rng.randrange(1, len(data)) for _ in range(8)}):
            out.append(("truncated", data[:cut], data))
        for _ in range(6):
            i = rng.choice(idats)
            body = bytearray(parts[i][1])
            body[rng.randrange(len(body))] ^= rng.randrange(1, 256)
            out.append(("IDAT flip, CRC fixed", _replace(data, i, bytes(body)), data))
        for _ in range(6):
            damaged = bytearray(data)
            damaged[rng.randrange(8, len(data))] ^= rng.randrange(1, 256)
            out.append(("flip, CRC not fixed", bytes(damaged), data))
        for _ in range(12):
            i = rng.randrange(len(parts) - 1)
            body = bytearray(parts[i][1])
            body[rng.randrange(len(body))] ^= rng.randrange(1, 256)
            out.append(("chunk flip, CRC fixed", _replace(data, i, bytes(body)), data))
        removed = assemble([p for j, p in enumerate(parts) if j != idats[-1]])
        out.append(("IDAT removed", removed, data))
        width, height = struct.unpack_from(">II", parts[0][1])
        for dw, dh in ((0, 1), (0, -1), (1, 0), (-1, 0), (3, -2)):
            ihdr = struct.pack(">II", max(width + dw, 1), max(height + dh, 1)) + parts[0][1][8:]
            out.append(("IHDR size changed, CRC fixed", _replace(data, 0, ihdr), data))
        if len(idats) == 1 and parts[0][1][12] == 0:
            out.append(("bad filter byte", _bad_filter(data, rng), data))
    return out


def _bad_filter(data: bytes, rng: random.Random) -> bytes:
    parts = chunks(data)
    (i,) = _idat_indexes(data)
    raw = bytearray(zlib.decompress(parts[i][1]))
    height = struct.unpack_from(">I", parts[0][1], 4)[0]
    stride = len(raw) // height
    row = rng.randrange(height)
    raw[row * stride] = rng.randrange(5, 256)
    return _replace(data, i, zlib.compress(bytes(raw)))


def pil_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


# Damage Pillow's decode does not look at, so it decodes what we reject:
LENIENT = {
    # the CRC of IDAT and of every later chunk
    "checksum": re.compile(r"CRC mismatch in \w{4} chunk|zlib checksum mismatch"),
    # the zlib stream once every scanline is out, rows missing after the stream ends early
    "image data length": re.compile(
        r"inflated data is (\d+ bytes, expected \d+|longer than the expected \d+ bytes)"
        r"|zlib stream in IDAT data does not end|corrupt zlib stream"
    ),
    # chunks after the image data, when the pixels are intact
    "after the image data": re.compile(r"data is truncated in|invalid chunk type"),
    # rules of the PNG and APNG specifications: header methods, every frame's sequence number
    # and place (Pillow's load() reads frame 0), IDAT present (Pillow shows an fdAT frame)
    "specification": re.compile(r"unknown method|APNG |no IDAT chunk"),
}


@pytest.fixture(scope="module")
def verdicts() -> list[tuple[str, bytes, bytes, images.ImageInfo, bool]]:
    return [(k, d, o, inspect_image(d), pil_decodes(d)) for k, d, o in corruptions()]


def test_corruptions_never_pass_where_pillow_fails(verdicts):
    assert len(verdicts) > 400
    kinds = {k for k, *_ in verdicts}
    assert kinds >= {"truncated", "IDAT flip, CRC fixed", "flip, CRC not fixed", "bad filter byte"}
    false_accepts = [(k, info) for k, _, _, info, pil_ok in verdicts if info.ok and not pil_ok]
    assert not false_accepts
    pil_rejected = [info for *_, info, pil_ok in verdicts if not pil_ok]
    assert len(pil_rejected) > 250
    assert all(not info.ok for info in pil_rejected)
    for kind, _, _, info, _ in verdicts:
        if kind == "bad filter byte":
            assert re.search(r"invalid filter type \d+ on row \d+\)$", info.error)


def test_rejections_pillow_decodes_are_damage_it_does_not_read(verdicts):
    seen = set()
    for kind, data, original, info, pil_ok in verdicts:
        if info.ok or not pil_ok:
            continue
        reason = info.error.removeprefix("image does not decode (")
        (category,) = [c for c, pattern in LENIENT.items() if pattern.match(reason)] or [None]
        assert category, (kind, info.error)
        if category == "after the image data":
            assert np.array_equal(pil_pixels(data), pil_pixels(original)), (kind, info.error)
        if reason.startswith(("APNG", "no IDAT")):
            assert b"acTL" in data
        seen.add(category)
    assert seen == set(LENIENT)


def test_both_inflate_back_ends_agree(verdicts, monkeypatch):
    assert images._zlib is isal_zlib
    monkeypatch.setattr(images, "_zlib", zlib)
    for kind, data, _, info, _ in verdicts:
        other = inspect_image(data)
        assert (other.ok, other.width, other.height) == (info.ok, info.width, info.height), kind
    assert all(inspect_image(data).ok for data, _ in VALID.values())


def _error(data: bytes) -> str:
    info = inspect_image(data)
    assert not info.ok
    return info.error.removeprefix("image does not decode (").removesuffix(")")


def _gray() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    data = save(Image.fromarray(np.add.outer(np.arange(30), np.arange(40)).astype(np.uint8)))
    return data, chunks(data)


def test_reasons_name_what_is_wrong():
    data, parts = _gray()
    (i,) = _idat_indexes(data)
    raw = bytearray(zlib.decompress(parts[i][1]))
    raw[12 * 41] = 7
    assert _error(_replace(data, i, zlib.compress(bytes(raw)))) == "invalid filter type 7 on row 12"
    assert _error(_replace(data, i, zlib.compress(bytes(raw[:-41])))) == (
        "inflated data is 1189 bytes, expected 1230"
    )
    assert _error(_replace(data, i, zlib.compress(bytes(raw)) + b"xx")) == (
        "invalid filter type 7 on row 12"
    )
    assert _error(_replace(data, i, parts[i][1][:-4])) == "zlib stream in IDAT data does not end"
    assert _error(_replace(data, i, parts[i][1][:-8])).startswith("image data is truncated (")
    adler = bytearray(parts[i][1])
    adler[-1] ^= 1
    assert _error(_replace(data, i, bytes(adler))) == "zlib checksum mismatch in IDAT data"
    flipped = bytearray(data)
    flipped[-20] ^= 1
    assert _error(bytes(flipped)) == "CRC mismatch in IDAT chunk"
    assert _error(data[:-30]).startswith("data is truncated in the IDAT chunk at byte ")
    assert _error(assemble(parts[1:])) == "the first chunk is not a 13-byte IHDR"
    assert _error(assemble([p for p in parts if p[0] != b"IDAT"])) == "no IDAT chunk"
    split = [parts[0], (b"IDAT", parts[i][1][:9]), (b"tEXt", b"a\0b"), (b"IDAT", parts[i][1][9:])]
    assert _error(assemble(split)) == "IDAT chunks are not consecutive"
    assert inspect_image(assemble(split[:2] + split[3:])).ok
    assert inspect_image(data[:-12]).ok  # no IEND


def test_bad_filter_byte_in_an_interlaced_pass():
    pixels = np.zeros((9, 9), np.uint8)
    data = interlaced(pixels, 0)
    parts = chunks(data)
    raw = bytearray(zlib.decompress(parts[1][1]))
    # passes 1..3 of a 9x9 image: 2 rows of 3 bytes, 2 rows of 2, 1 row of 4
    raw[6 + 4 + 4] = 9
    assert _error(_replace(data, 1, zlib.compress(bytes(raw)))) == (
        "invalid filter type 9 on row 0 of pass 4"
    )


def _with_chunk(ctype: bytes, body: bytes) -> bytes:
    """The grey test PNG with one more chunk after IHDR."""
    parts = _gray()[1]
    return assemble([parts[0], (ctype, body), *parts[1:]])


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (b"gAMA", b"\0\0\1"),
        (b"cHRM", bytes(31)),
        (b"sRGB", b""),
        (b"pHYs", bytes(8)),
        (b"tRNS", b"\0"),
        (b"zTXt", b"key\0\1" + zlib.compress(b"text")),
        (b"iCCP", b"icc\0\2" + zlib.compress(bytes(100))),
        (b"iCCP", b"no separator"),
        (b"acTL", bytes(7)),
        (b"fcTL", bytes(25)),
        (b"fcTL", struct.pack(">IIIII", 1, 40, 30, 0, 0) + bytes(6)),
        (b"fcTL", struct.pack(">IIIII", 0, 40, 30, 1, 0) + bytes(6)),
    ],
)
def test_chunks_pillow_parses_are_checked_like_pillow(ctype, body):
    data = _with_chunk(ctype, body)
    assert not pil_decodes(data)
    assert not inspect_image(data).ok


@pytest.mark.parametrize("window", [8, 9, 15])
def test_zlib_window_pillow_refuses_is_refused(window):
    """ISA-L inflates a stream whose header claims a window over 32 KB; zlib does not."""
    data, parts = _gray()
    (i,) = _idat_indexes(data)
    cmf = window << 4 | 8
    flg = parts[i][1][1] & 0xE0
    flg |= 31 - (cmf << 8 | flg) % 31
    damaged = _replace(data, i, bytes([cmf, flg]) + parts[i][1][2:])
    assert not pil_decodes(damaged)
    assert _error(damaged) == f"invalid zlib header {bytes([cmf, flg]).hex()} in IDAT data"


def _apng_chunks(*extra: tuple[bytes, bytes], before_idat: bool = False) -> bytes:
    data, parts = _gray()
    (i,) = _idat_indexes(data)
    actl = (b"acTL", struct.pack(">II", 1, 0))
    if before_idat:
        return assemble([*parts[:i], actl, *extra, *parts[i:]])
    return assemble([*parts[:i], actl, parts[i], *extra, *parts[i + 1 :]])


def fctl(seq: int, width: int, height: int, x: int = 0, y: int = 0) -> tuple[bytes, bytes]:
    return b"fcTL", struct.pack(">5I", seq, width, height, x, y) + struct.pack(">HHBB", 1, 10, 0, 0)


def test_apng_frame_data_needs_a_frame_control_chunk_first():
    frame = zlib.compress(bytes(41 * 30))
    orphan = _apng_chunks((b"fdAT", struct.pack(">I", 0) + b"junk"))
    assert not pil_decodes(orphan)
    assert _error(orphan) == "APNG fdAT chunk before any fcTL chunk"
    framed = _apng_chunks(fctl(0, 40, 30), (b"fdAT", struct.pack(">I", 1) + frame))
    assert pil_decodes(framed) and inspect_image(framed).ok


def test_apng_default_frame_must_be_the_whole_image():
    whole = _apng_chunks(fctl(0, 40, 30), before_idat=True)
    assert pil_decodes(whole) and inspect_image(whole).ok
    noise = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    data = save(Image.fromarray(noise, "RGB"))
    parts = chunks(data)
    (i,) = _idat_indexes(data)
    actl = (b"acTL", struct.pack(">II", 1, 0))
    smaller = assemble([*parts[:i], actl, fctl(0, 20, 15), *parts[i:]])
    assert not pil_decodes(smaller)  # Pillow reads the whole image's data at the frame's size
    assert _error(smaller) == "APNG frame of the default image is not the whole image"


def test_compressed_text_past_pillow_limit(monkeypatch):
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 1000)
    for ctype, head in ((b"zTXt", b"k\0\0"), (b"iCCP", b"k\0\0"), (b"iTXt", b"k\0\1\0en\0\0")):
        small, big = (_with_chunk(ctype, head + zlib.compress(bytes(n))) for n in (1000, 1001))
        assert pil_decodes(small) and inspect_image(small).ok
        assert not pil_decodes(big)
        assert _error(big) == f"{ctype.decode()} chunk inflates past MAX_TEXT_CHUNK"


def test_palette_rules():
    gray = Image.fromarray(np.add.outer(np.arange(8), np.arange(8)).astype(np.uint8))
    data = save(gray.quantize(4))
    parts = chunks(data)
    no_plte = assemble([p for p in parts if p[0] != b"PLTE"])
    assert _error(no_plte) == "no PLTE chunk before IDAT"  # Pillow shows it in grey
    assert pil_decodes(no_plte)
    too_long = assemble([(t, bytes(771) if t == b"PLTE" else b) for t, b in parts])
    assert not pil_decodes(too_long)
    assert _error(too_long) == "PLTE chunk of 771 bytes"


def test_decompression_bomb_is_rejected_before_inflating(monkeypatch):
    class NoInflate:
        crc32 = staticmethod(zlib.crc32)

        @staticmethod
        def decompressobj():
            raise AssertionError("inflated a decompression bomb")

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 6, 0, 0, 0)
    bomb = assemble([(b"IHDR", ihdr), (b"IDAT", zlib.compress(bytes(1000))), (b"IEND", b"")])
    monkeypatch.setattr(images, "_zlib", NoInflate)
    info = inspect_image(bomb)
    assert not info.ok
    assert "could be decompression bomb" in info.error
    assert not pil_decodes(bomb)


@pytest.mark.parametrize("pixels", [1200, 2500])
def test_decompression_bomb_error_matches_pillow_path(monkeypatch, pixels):
    """Past the limit (Pillow warns) and past twice the limit (Pillow refuses): every depth
    refuses, in Pillow's words."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = save(Image.new("L", (pixels // 50, 50)))
    ours, pillow = inspect_image(data), inspect_image(data, decode=False)
    header = inspect_header(data)
    assert not ours.ok
    assert ours == pillow == header


def test_zlib_bomb_under_a_small_header_stays_small():
    ihdr = struct.pack(">IIBBBBB", 10, 10, 8, 0, 0, 0, 0)
    stream = zlib.compress(bytes(50_000_000), 9)
    bomb = assemble([(b"IHDR", ihdr), (b"IDAT", stream), (b"IEND", b"")])
    tracemalloc.start()
    try:
        error = _error(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error == "inflated data is longer than the expected 110 bytes"
    assert peak < 2_000_000


def test_decode_false_keeps_the_pillow_structure_check():
    data, parts = _gray()
    (i,) = _idat_indexes(data)
    raw = bytearray(zlib.decompress(parts[i][1]))
    raw[0] = 5
    bad_filter = _replace(data, i, zlib.compress(bytes(raw)))
    assert inspect_image(bad_filter, decode=False).ok
    assert not inspect_image(bad_filter).ok


def test_jpeg_goes_through_pillow():
    jpeg = _jpeg()
    assert inspect_image(jpeg) == images.ImageInfo(True, 64, 48, "JPEG")
    info = inspect_image(jpeg[: len(jpeg) // 2])
    assert not info.ok
    assert info.error.startswith("image does not decode (")
    assert not inspect_image(b"\xff\xd8\xff" + bytes(100)).ok


# ------------------------------------------------------------------ the header check (export)


def _header_error(data: bytes) -> str:
    info = inspect_header(data)
    assert not info.ok
    return info.error


@pytest.mark.parametrize("name", list(VALID))
def test_header_check_accepts_every_valid_png_with_its_size(name):
    data, (width, height) = VALID[name]
    assert inspect_header(data) == images.ImageInfo(True, width, height, "PNG")
    assert inspect_header(memoryview(pa.py_buffer(data))).ok


def test_header_check_rejects_every_truncated_png_and_bytes_that_are_no_png(verdicts):
    """What the header shows: every cut (a missing IEND included, which the full check lets
    through), garbage after the signature, no IHDR first, a damaged IHDR; otherwise it accepts
    what the full check accepts (damage inside the file is the full check's to find)."""
    seen = set()
    for kind, data, _, full, _ in verdicts:
        header = inspect_header(data)
        if kind in ("truncated", "empty", "random bytes", "random after signature"):
            assert not header.ok, (kind, len(data))
            seen.add(kind)
        elif full.ok:
            assert header.ok, (kind, header.error)
    assert seen == {"truncated", "empty", "random bytes", "random after signature"}
    data, parts = _gray()
    assert "no IEND chunk at the end" in _header_error(data[:-12])
    assert "no IEND chunk at the end" in _header_error(data + b"more")
    assert "invalid chunk type" in _header_error(PNG_SIGNATURE + bytes(100))
    assert _header_error(assemble(parts[1:])).endswith("the first chunk is not a 13-byte IHDR)")
    assert "CRC mismatch in IHDR chunk" in _header_error(data[:20] + b"\xff" + data[21:])
    bad_depth = _replace(data, 0, parts[0][1][:8] + b"\x03" + parts[0][1][9:])
    assert "invalid bit depth 3" in _header_error(bad_depth)


def test_header_check_refuses_a_tiny_png_claiming_a_huge_size_without_reading_on(monkeypatch):
    class NoInflate:
        crc32 = staticmethod(zlib.crc32)

        @staticmethod
        def decompressobj():
            raise AssertionError("inflated a decompression bomb")

    ihdr = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0)
    bomb = assemble([(b"IHDR", ihdr), (b"IDAT", zlib.compress(bytes(64))), (b"IEND", b"")])
    monkeypatch.setattr(images, "_zlib", NoInflate)
    assert "exceeds limit of" in _header_error(bomb)
    assert not pil_decodes(bomb)


def _jpegs() -> dict[str, bytes]:
    noise = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    rgb = Image.fromarray(noise, "RGB")
    exif = Image.Exif()
    exif[0x010F] = "camera"

    def jpeg(im: Image.Image, **params) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", **params)
        return buf.getvalue()

    return {
        "RGB": jpeg(rgb),
        "L": jpeg(rgb.convert("L")),
        "CMYK": jpeg(rgb.convert("CMYK")),
        "progressive": jpeg(rgb, progressive=True),
        "EXIF, ICC and comment": jpeg(
            rgb, exif=exif.tobytes(), icc_profile=bytes(300), comment=b"c"
        ),
        "restart markers": jpeg(rgb, restart_marker_blocks=1),
        "4:4:4, optimized": jpeg(rgb, subsampling=0, optimize=True, quality=100),
    }


JPEGS = _jpegs()


def pil_opens(data: bytes) -> tuple[int, int] | None:
    """The size Pillow reads when it opens the bytes (header only) within its pixel limit;
    None when it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:
        return None


@pytest.mark.parametrize("name", list(JPEGS))
def test_header_check_accepts_valid_jpegs_and_refuses_every_cut(name):
    data = JPEGS[name]
    assert inspect_header(data) == images.ImageInfo(True, 80, 60, "JPEG")
    for cut in range(len(data)):
        assert not inspect_header(data[:cut]).ok, cut
    assert "no EOI marker at the end" in _header_error(data + bytes(3))


def test_jpeg_header_check_never_accepts_what_pillow_cannot_open():
    """Random damage before the scan data: whatever the header check accepts, Pillow opens,
    at the same size (damage inside the scan data is the full check's to find)."""
    rng = random.Random(5)
    accepted = 0
    for data in JPEGS.values():
        for _ in range(400):
            damaged = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 3))):
                damaged[rng.randrange(min(len(data), 800))] ^= rng.randrange(1, 256)
            info = inspect_header(bytes(damaged))
            if info.ok:
                accepted += 1
                assert pil_opens(bytes(damaged)) == (info.width, info.height)
    assert 0 < accepted < 7 * 400


def _frame(data: bytes, *, bits: int = 8, size: tuple[int, int] = (80, 60), components=None):
    """`data` with its frame header (SOF0) rewritten."""
    at = data.index(b"\xff\xc0") + 4
    body = bytearray(data[at : at + 15])
    body[0] = bits
    body[1:5] = struct.pack(">HH", size[1], size[0])
    if components is not None:
        body[5] = components
    return data[:at] + bytes(body) + data[at + 15 :]


def test_jpeg_reasons_name_what_is_wrong():
    data = JPEGS["RGB"]
    assert "invalid JPEG marker 00" in _header_error(b"\xff\xd8\xff" + bytes(100))
    assert "exceeds limit of" in _header_error(_frame(data, size=(20_000, 20_000)))
    assert "invalid image size 80x0" in _header_error(_frame(data, size=(80, 0)))
    assert "12-bit samples" in _header_error(_frame(data, bits=12))
    assert "2 components" in _header_error(_frame(data, components=2))
    no_frame = data.replace(data[data.index(b"\xff\xc0") :][:19], b"")
    assert "no JPEG frame header (SOFn) before the scan" in _header_error(no_frame)
    tables = data.index(b"\xff\xdb")
    assert "not whole tables" in _header_error(
        data[: tables + 4] + b"\x10" + data[tables + 5 :]  # 16-bit table in an 8-bit segment
    )


def _other(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's words on the cut TIFF
def test_header_check_opens_other_formats_with_pillow(fmt, monkeypatch):
    data = _other(fmt)
    assert inspect_header(data) == images.ImageInfo(True, 40, 30, fmt)
    assert _header_error(data[:8]).startswith("not a decodable image (")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert "exceeds limit of" in _header_error(data)
