"""A full disk in any data command: a one-line error (exit 1), no traceback, and no output
left behind, not even part of one (no `<stem>_images/` folder of a JSONL export)."""

from __future__ import annotations

import errno
import io
import json
import pkgutil
import uuid
from pathlib import Path

import pytest
from PIL import Image

from conftest import deepvision_row, write_rows
from deepvision import records as r


def _noise_png(seed: int) -> bytes:
    """A PNG that does not compress (about 43 KB)."""
    buf = io.BytesIO()
    Image.effect_noise((120, 120), 40 + seed).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def heavy(tmp_path_factory) -> Path:
    """7 rows with incompressible images (about 260 KB); rows 4 and 5 have an empty answer
    (so `validate --rejects` writes them, images and all); row 6 repeats row 3 (a dedup
    group)."""
    rows = [deepvision_row(question=f"Q{i}", answer=str(i)) for i in range(6)]
    for i, row in enumerate(rows):
        row[r.IMAGES] = [{"bytes": _noise_png(i), "path": f"{i}.png"}]
        if i >= 4:
            row[r.REWARD_MODEL]["ground_truth"] = ""
    rows.append(rows[3])
    return write_rows(tmp_path_factory.mktemp("heavy") / "heavy.parquet", rows)


# Each data command, writing its outputs into a folder given as {o}.
COMMANDS = {
    "validate": ["validate", "{in}", "--rejects", "{o}/rejects.jsonl"],
    "stats": ["stats", "{in}", "--out", "{o}/stats"],
    "filter": ["filter", "{in}", "--out", "{o}/f.parquet", "--rejects", "{o}/rej.jsonl"],
    "sample": ["sample", "{in}", "--n", "5", "--out", "{o}/s.parquet"],
    "split": ["split", "{in}", "--train", "{o}/tr.parquet", "--test", "{o}/te.parquet"],
    "dedup": ["dedup", "{in}", "--out", "{o}/d.parquet"],
    "export-verl": ["export", "{in}", "--to", "verl", "--out", "{o}/v.parquet"],
    "export-jsonl": ["export", "{in}", "--to", "jsonl", "--out", "{o}/j.jsonl"],
    "synth": ["synth", "--n", "40", "--out", "{o}/synth.parquet"],
}


def _assert_one_line_error(res) -> None:
    assert res.code == 1, res.text
    assert "Traceback" not in res.text
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left on the disk" in errors[0], res.err


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    ("command", "target"),
    [
        ("export-jsonl", "pathlib.Path.write_bytes"),  # the second image file
        ("export-jsonl", "deepvision.data.writer.JsonlOutput.write_line"),  # images written
        ("export-verl", "deepvision.data.writer.TableWriter.write_batch"),
        ("filter", "deepvision.data.writer.TableWriter.write_batch"),
        ("validate", "deepvision.data.writer.RejectWriter.write"),
        ("dedup", "deepvision.data.writer.JsonlOutput.write_line"),  # parquet written
        ("stats", "pathlib.Path.write_text"),
        ("synth", "deepvision.data.writer.TableWriter.write_batch"),
    ],
)
def test_an_injected_full_disk_is_one_line_and_leaves_nothing(
    cli, tmp_path, monkeypatch, heavy, command, target
):
    out = tmp_path / "out"
    out.mkdir()
    owner, name = target.rsplit(".", 1)
    real = getattr(pkgutil.resolve_name(owner), name)
    calls = []

    def fill_up(self, *args, **kwargs):  # the first write goes through, then the disk is full
        calls.append(1)
        if len(calls) > 1 or name != "write_bytes":
            _disk_full()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(target, fill_up)
    args = [a.format(**{"in": heavy, "o": out}) for a in COMMANDS[command]]
    res = cli("data", *args)
    assert calls, "the injected write was never reached"
    _assert_one_line_error(res)
    assert [p.name for p in out.rglob("*") if not p.is_dir()] == []
    assert [p.name for p in out.iterdir()] in ([], ["stats"])  # stats makes its folder first


def test_a_full_disk_leaves_the_stats_of_an_earlier_run_as_they_were(
    cli, tmp_path, monkeypatch, heavy
):
    out = tmp_path / "stats"
    assert cli("data", "stats", heavy, "--out", out).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = Path.write_text
    monkeypatch.setattr(
        Path,
        "write_text",
        lambda self, *a, **k: (
            _disk_full() if self.name == "summary.md.tmp" else real(self, *a, **k)
        ),
    )
    _assert_one_line_error(cli("data", "stats", heavy, "--out", out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.fixture
def small_disk(tmpfs):
    """A 2 MB tmpfs with about 40 KB left free (mounting needs root)."""
    mount = tmpfs("disk", "size=2m")
    filler = mount / f"filler-{uuid.uuid4().hex}"
    with filler.open("wb") as fh:
        fh.write(b"\0" * (2 * 1024 * 1024 - 40 * 1024))
    return mount, filler


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_real_full_disk_is_one_line_and_leaves_nothing(cli, heavy, small_disk, command):
    mount, filler = small_disk
    args = [a.format(**{"in": heavy, "o": mount}) for a in COMMANDS[command]]
    res = cli("data", *args)
    _assert_one_line_error(res)
    left = sorted(p.name for p in mount.rglob("*") if p != filler)
    assert left in ([], ["stats"]), left  # stats makes its (empty) folder first


def test_jsonl_export_writes_its_images_folder_with_the_file_or_not_at_all(cli, tmp_path, heavy):
    """A failed export (the input breaks after rows were written) leaves no images folder;
    a successful one has both, and `--overwrite` replaces an earlier folder whole."""
    out = tmp_path / "j.jsonl"
    # exit 1: rows 4-5 (empty answers) and 6 (row 3 again) are rejected; rows 0-3 are written
    assert cli("data", "export", heavy, "--to", "jsonl", "--out", out).code == 1
    assert len(list((tmp_path / "j_images").iterdir())) == 4
    (tmp_path / "j_images" / "stale.png").write_bytes(b"old")
    assert cli("data", "export", heavy, "--to", "jsonl", "--out", out, "--overwrite").code == 1
    assert len(list((tmp_path / "j_images").iterdir())) == 4
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert all((tmp_path / line["images"][0]).exists() for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl", "j_images"]
