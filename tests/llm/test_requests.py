"""Inference JSONL -> Requests: image paths stay inside the JSONL's folder, data URIs are
decoded strictly, and a bad line becomes an item that fails alone."""

import base64
import json

import pytest

from deepvision.errors import DataError
from deepvision.llm.requests import is_inference_jsonl, jsonl_requests

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def _write(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _line(i, **kw):
    return {"id": i, "messages": [{"role": "user", "content": "<image>Find x."}], **kw}


def test_lines_become_requests_with_lazy_images_inside_the_folder(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PNG)
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    src = _write(
        tmp_path / "p.jsonl",
        [
            _line(1, images=["img/a.png"], answer="3"),
            _line("two", images=[uri]),
            _line(3, images=["img/missing.png"]),
        ],
    )
    assert is_inference_jsonl(src)
    reqs = list(jsonl_requests(src, system_prompt="Think."))
    assert [r.key for r in reqs] == ["1", "two", "3"] and all(r.error is None for r in reqs)
    first = reqs[0]
    assert first.fields == {"id": 1, "answer": "3", "images": ["img/a.png"]}
    assert first.messages[0] == {"role": "system", "content": "Think."}
    assert first.images[0]() == (PNG, "image/png")
    assert reqs[1].images[0]() == (PNG, "image/png") and "images" not in reqs[1].fields
    with pytest.raises(DataError, match=r"cannot read image .*missing\.png"):
        reqs[2].images[0]()


def test_bad_lines_and_paths_outside_the_folder_fail_alone(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    data = tmp_path / "data"
    data.mkdir()
    src = _write(
        data / "p.jsonl",
        [
            _line("ok"),
            "{not json",
            json.dumps({"messages": []}),
            _line("up", images=["../secret.png"]),
            _line("abs", images=[str(outside)]),
            _line("msgs", messages="hello"),
            _line("uri", images=["data:image/png;base64,@@@"]),
        ],
    )
    reqs = {r.key: r for r in jsonl_requests(src)}
    assert reqs["ok"].error is None
    assert "p.jsonl:2" in reqs["p.jsonl:2"].error and "not JSON" in reqs["p.jsonl:2"].error
    assert "needs an 'id'" in reqs["p.jsonl:3"].error
    # image paths are checked when read (off the event loop), before any byte is read
    with pytest.raises(DataError, match=r"p\.jsonl:4.*leaves the data folder"):
        reqs["up"].images[0]()
    with pytest.raises(DataError, match="is absolute"):
        reqs["abs"].images[0]()
    assert "'messages' must be a list" in reqs["msgs"].error
    assert reqs["uri"].error is None  # decoded when sent: then it fails alone
    with pytest.raises(DataError, match="bad base64"):
        reqs["uri"].images[0]()
    allowed = {r.key: r for r in jsonl_requests(src, allow_absolute=True)}
    assert allowed["abs"].error is None and allowed["abs"].images[0]() == (PNG, "image/png")
    with pytest.raises(DataError, match="leaves the data folder"):  # relative: still inside
        allowed["up"].images[0]()
