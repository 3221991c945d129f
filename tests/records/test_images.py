"""Image helpers of the on-disk contract: sniffing, data URIs, placeholders, paths."""

from __future__ import annotations

import pytest

from deepvision.errors import DataError
from deepvision.records import (
    IMAGE_MARKER,
    data_uri,
    decode_data_uri,
    place_images,
    resolve_inside,
    sniff_mime,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


def test_sniff_and_data_uri_round_trip():
    assert sniff_mime(PNG) == "image/png"
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"hello") == "application/octet-stream"
    uri = data_uri(PNG)
    assert uri.startswith("data:image/png;base64,")
    assert decode_data_uri(uri) == (PNG, "image/png")


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("data:image/png,abc", "not base64-encoded"),
        ("data:image/png;base64,@@@", "bad base64"),
        ("http://x/y.png", "not a data URI"),
    ],
)
def test_bad_data_uris_say_why(uri, why):
    with pytest.raises(DataError, match=why):
        decode_data_uri(uri)


def test_placeholders_go_first_when_the_text_has_none():
    assert place_images("What is x?", 2) == "<image><image>\nWhat is x?"
    assert place_images("See <image> then <image>.", 2) == "See <image> then <image>."
    assert place_images("no images", 0) == "no images"
    with pytest.raises(ValueError, match="1 <image> placeholder"):
        place_images("<image> only one", 2)


def test_numbered_markers():
    assert [m.group(1) for m in IMAGE_MARKER.finditer("<image 1> and <image2>")] == ["1", "2"]


def test_paths_stay_inside_the_data_folder(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG)
    assert resolve_inside("img/a.png", tmp_path) == (tmp_path / "img" / "a.png").resolve()
    with pytest.raises(DataError, match="leaves the data folder"):
        resolve_inside("../../etc/passwd", tmp_path)
    with pytest.raises(DataError, match="absolute"):
        resolve_inside("/etc/passwd", tmp_path)
    assert resolve_inside("/etc/passwd", tmp_path, allow_absolute=True).name == "passwd"
