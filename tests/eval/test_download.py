"""`deepvision eval download` and `eval run --download / --skip-missing` against a local
stand-in of the Hugging Face Hub (tests/eval/hub_stand_in.py; HF_ENDPOINT points at it, the
real huggingface_hub client talks to it): only the files the loaders read arrive, in their
layout, with the commit recorded; a re-run fetches nothing again; a cut download leaves no
folder a run would take for the benchmark; an unreachable Hub is one line naming where to get
the data; missing benchmarks are named before any request is sent."""

from __future__ import annotations

import io
import json
import re
import socket

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_stand_in import HubStandIn

from conftest import png_bytes
from deepvision.cli.main import main
from deepvision.eval import download, get_benchmark, load_problems
from deepvision.eval.download import MANIFEST, STAGING
from deepvision.eval.registry import missing_data
from deepvision.llm.fake_server import FakeServer

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def parquet(rows: list[dict], image_columns: tuple[str, ...]) -> bytes:
    """A parquet file as the Hub's datasets write it: strings, images as {bytes, path}."""
    cols = {
        k: pa.array([r.get(k) for r in rows], IMAGE if k in image_columns else pa.string())
        for k in rows[0]
    }
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


def image(k: int) -> dict:
    return {"bytes": png_bytes((20 * k % 256, 60, 120)), "path": None}


def mathvision_rows(split: str, n: int) -> list[dict]:
    return [
        {
            "id": f"{split}-{i}",
            "question": "How many triangles are there?\n<image1>",
            "options": "[]",
            "image": f"images/{i}.jpg",
            "decoded_image": image(i),
            "answer": str(i + 2),
            "solution": "",
            "level": "2",
            "subject": "counting",
        }
        for i in range(n)
    ]


def m3cot_rows(split: str, n: int) -> list[dict]:
    return [
        {
            "id": f"{split}-physical-{i}",
            "category": "physical-commonsense",
            "question": "Which object is the heaviest?",
            "choices": "['a feather', 'a brick']",
            "context": "",
            "answer": "B",
            "split": split,
            "domain": "commonsense",
            "topic": "physical-commonsense",
            "image": image(i),
        }
        for i in range(n)
    ]


def mmmu_rows(split: str, subject: str, n: int) -> list[dict]:
    return [
        {
            "id": f"{split}_{subject}_{i + 1}",
            "question": "What is shown in <image 1>?",
            "options": "['a circle', 'a square']",
            "answer": "A",
            "question_type": "multiple-choice",
            "image_1": image(i),
        }
        for i in range(n)
    ]


# Each repository as on the Hub: the split the loader reads beside others it must not fetch.
MATHVISION = {
    "README.md": b"# MathVision\n",
    "data/test-00000-of-00001-3532b8d3.parquet": parquet(
        mathvision_rows("test", 3), ("decoded_image",)
    ),
    "data/testmini-00000-of-00001-f8ff70fc.parquet": parquet(
        mathvision_rows("testmini", 1), ("decoded_image",)
    ),
    "images.zip": b"PK not fetched",
}
M3COT = {
    f"data/{split}-00000-of-00001.parquet": parquet(m3cot_rows(split, n), ("image",))
    for split, n in (("train", 4), ("validation", 2), ("test", 2))
}
MMMU = {
    f"{subject}/{split}-00000-of-00001.parquet": parquet(mmmu_rows(split, subject, n), ("image_1",))
    for subject in ("Math", "Physics")
    for split, n in (("dev", 1), ("validation", 2), ("test", 3))
}
STANDARD_10 = [
    {
        "id": "validation_Accounting_29",
        "question": "Which call option? <image 1>",
        "options": "['A', 'B', 'Not enough information']",
        "answer": "B",
        "subject": "Accounting",
        "image_1": image(7),
    }
]
VISION = [{"id": "test_History_1", "image": image(8), "options": "['a', 'b']", "answer": "B"}]
MMMU_PRO = {
    "standard (10 options)/test-00000-of-00001.parquet": parquet(STANDARD_10, ("image_1",)),
    "standard (4 options)/test-00000-of-00001.parquet": parquet(STANDARD_10, ("image_1",)),
    "vision/test-00000-of-00001.parquet": parquet(VISION, ("image",)),
}
REPOS = {
    "MathLLMs/MathVision": MATHVISION,
    "LightChen2333/M3CoT": M3COT,
    "MMMU/MMMU": MMMU,
    "MMMU/MMMU_Pro": MMMU_PRO,
}
LOADED = {"mathvision": 3, "m3cot": 2, "mmmu": 4}  # items of the split each loader reads


@pytest.fixture()
def hub(monkeypatch, tmp_path):
    """The stand-in Hub, with HF_ENDPOINT pointing at it and a Hugging Face home of its own."""
    server = HubStandIn({repo: dict(files) for repo, files in REPOS.items()}).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.stop()


@pytest.fixture()
def model():
    server = FakeServer().start()
    yield server
    server.stop()


def run_cli(*args: str) -> int:
    return run_cli_loud("--quiet", *args)


def run_cli_loud(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_brings_only_what_the_loaders_read_with_the_commit(hub, tmp_path):
    bench = tmp_path / "bench"
    assert run_cli("eval", "download", "mathvision", "m3cot,mmmu", "--to", str(bench)) == 0
    files = sorted(p.relative_to(bench).as_posix() for p in bench.rglob("*") if p.is_file())
    assert files == [
        MANIFEST,
        "m3cot/data/test-00000-of-00001.parquet",
        "mathvision/data/test-00000-of-00001-3532b8d3.parquet",
        "mmmu/Math/validation-00000-of-00001.parquet",
        "mmmu/Physics/validation-00000-of-00001.parquet",
    ]
    for name, count in LOADED.items():
        assert len(list(load_problems(name, bench))) == count
    manifest = json.loads((bench / MANIFEST).read_text())
    for name, repo in (("mathvision", "MathLLMs/MathVision"), ("mmmu", "MMMU/MMMU")):
        entry = manifest[name]
        assert entry["repo"] == repo and entry["revision"] == "main"
        assert entry["commit"] == hub.sha(repo) and entry["endpoint"] == hub.url
    fetched = hub.downloads
    assert fetched == 4
    # A re-run finds everything there: nothing is fetched again.
    assert run_cli("eval", "download", "mathvision", "m3cot", "mmmu", "--to", str(bench)) == 0
    assert hub.downloads == fetched


def test_eval_run_downloads_by_name_then_evaluates(hub, model, tmp_path):
    bench, out = tmp_path / "bench", tmp_path / "run"
    options = f"--benchmarks mathvision,m3cot --download --endpoint {model.url} --model m"
    rc = run_cli("eval", "run", *options.split(), "--data-dir", str(bench), "--out", str(out))
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    for name in ("mathvision", "m3cot"):
        b = results["benchmarks"][name]
        assert b["items"] == b["expected"] == LOADED[name] and b["missing"] == 0
    assert model.stats.requests == LOADED["mathvision"] + LOADED["m3cot"]
    assert results["sources"]["mathvision"]["commit"] == hub.sha("MathLLMs/MathVision")
    assert results["skipped"] == {}
    assert not (bench / "mmmu").exists()  # only the benchmarks asked for


def test_a_pinned_revision_is_read_and_an_unknown_one_is_named(hub, tmp_path):
    bench, sha = tmp_path / "bench", hub.sha("LightChen2333/M3CoT")
    assert (
        run_cli("eval", "download", "m3cot", "--to", str(bench), "--revision", f"m3cot={sha}") == 0
    )
    assert json.loads((bench / MANIFEST).read_text())["m3cot"]["revision"] == sha
    bad = "0" * 40
    assert run_cli("eval", "download", "mmmu", "--to", str(bench), "--revision", f"mmmu={bad}") == 2
    assert not (bench / "mmmu").exists()


def test_unreachable_hub_is_one_line_naming_where_to_get_the_data(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    bench = tmp_path / "bench"
    assert run_cli("eval", "download", "mathvision", "--to", str(bench)) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    for text in (
        "cannot download mathvision",
        "https://huggingface.co/datasets/MathLLMs/MathVision",
        "https://github.com/mathllm/MATH-V",
        "data/test-*.parquet",
        str(bench / "mathvision"),
    ):
        assert text in err
    assert not (bench / "mathvision").exists() and not (bench / MANIFEST).exists()


def test_a_cut_download_leaves_no_benchmark_folder_and_resumes(hub, tmp_path):
    bench = tmp_path / "bench"
    hub.fail_after = 1  # the first of MMMU's two files arrives, the second is cut
    assert run_cli("eval", "download", "mmmu", "--to", str(bench)) == 1
    assert not (bench / "mmmu").exists() and not (bench / MANIFEST).exists()
    assert missing_data([get_benchmark("mmmu")], bench) != {}  # a run sees no data yet
    hub.fail_after = None
    assert run_cli("eval", "download", "mmmu", "--to", str(bench)) == 0
    assert hub.downloads == 2  # the second file only: the first was kept
    assert len(list(load_problems("mmmu", bench))) == LOADED["mmmu"]
    assert not (bench / STAGING).exists()


def test_missing_benchmarks_are_all_named_before_any_request(model, tmp_path, capsys):
    bench = tmp_path / "bench"
    (bench / "m3cot" / "data").mkdir(parents=True)
    (bench / "m3cot" / "data" / "test-00000-of-00001.parquet").write_bytes(
        M3COT["data/test-00000-of-00001.parquet"]
    )
    out = tmp_path / "run"
    options = f"--benchmarks all --endpoint {model.url} --model m"
    args = ("eval", "run", *options.split(), "--data-dir", str(bench), "--out", str(out))
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    assert (
        f"no data in {bench} for wemath, mathvision, mathverse_vision, logic_vista, mmmu, "
        "mmmu_pro;" in err
    )
    hub_ones = "wemath,mathvision,mathverse_vision,mmmu,mmmu_pro"
    assert f"deepvision eval download {hub_ones} --to {bench}" in err
    assert "github.com/Yijia-Xiao/LogicVista" in err and "--skip-missing" in err
    assert model.stats.requests == 0 and not out.exists()
    # --skip-missing runs what is there and records what it skipped, and why.
    assert run_cli(*args, "--skip-missing") == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["benchmarks"]) == ["m3cot"]
    assert results["benchmarks"]["m3cot"]["items"] == LOADED["m3cot"]
    assert sorted(results["skipped"]) == sorted(
        ["wemath", "mathvision", "mathverse_vision", "logic_vista", "mmmu", "mmmu_pro"]
    )
    assert results["skipped"]["mmmu"].startswith(f"not in {bench}")
    assert "skipped" in capsys.readouterr().err


def test_a_download_in_a_log_reports_progress_lines(hub, tmp_path, monkeypatch, capsys):
    """Piped (stderr not a terminal), a long download writes a plain progress line per
    interval (a minute; shortened here) between its start and end lines."""
    monkeypatch.setattr(download, "PIPED_EVERY_S", 0.05)
    hub.delay_s = 0.5
    assert run_cli_loud("eval", "download", "m3cot", "--to", str(tmp_path / "bench")) == 0
    lines = [x.partition(": ")[2] for x in capsys.readouterr().err.splitlines() if "INFO" in x]
    assert lines[0].startswith("m3cot: 1 file, 0.0 MB from LightChen2333/M3CoT@")
    assert any(re.fullmatch(r"m3cot: [\d.]+ of 0\.0 MB, [\d.]+ MB/s", x) for x in lines[1:-1])
    assert lines[-1].startswith("m3cot: 1 file, 0.0 MB in ")


def test_what_cannot_be_fetched_is_refused_with_where_to_get_it(hub, tmp_path, capsys):
    bench = tmp_path / "bench"
    # LogicVista is not on the Hub: the others are fetched, it is named with its repository.
    assert run_cli("eval", "download", "m3cot,logic_vista", "--to", str(bench)) == 1
    err = capsys.readouterr().err
    assert "logic_vista: get logic_vista from https://github.com/Yijia-Xiao/LogicVista" in err
    assert (bench / "m3cot").is_dir() and not (bench / "logic_vista").exists()
    (bench / "logic_vista").mkdir()  # placed by hand: nothing left to ask for
    assert run_cli("eval", "download", "m3cot,logic_vista", "--to", str(bench)) == 0
    # A Hub layout the loader does not read (no file matches) is named before any fetch.
    del hub.repos["MathLLMs/MathVision"]["data/test-00000-of-00001-3532b8d3.parquet"]
    assert run_cli("eval", "download", "mathvision", "--to", str(bench)) == 1
    assert "has no file matching data/test-*.parquet" in capsys.readouterr().err
    assert hub.downloads == 1 and not (bench / "mathvision").exists()
    # A folder the user put there is never overwritten.
    (bench / "mmmu").mkdir()
    (bench / "mmmu" / "mine.json").write_text("[]")
    assert run_cli("eval", "download", "mmmu", "--to", str(bench)) == 2
    assert "was not written by `eval download`" in capsys.readouterr().err
    assert [p.name for p in (bench / "mmmu").iterdir()] == ["mine.json"]


def test_skip_missing_with_download_records_a_failed_download(model, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    bench, out = tmp_path / "bench", tmp_path / "run"
    options = f"--benchmarks synth,mmmu --download --skip-missing --limit 3 --endpoint {model.url}"
    rc = run_cli(
        "eval", "run", *options.split(), "--model", "m", "--data-dir", str(bench), "--out", str(out)
    )
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["benchmarks"]) == ["synth"]
    assert results["skipped"]["mmmu"].startswith("download failed: cannot download mmmu")


def test_mmmu_pro_and_its_vision_config_arrive_apart(hub, tmp_path):
    """Both read MMMU/MMMU_Pro, each its own config into its own folder; the standard one
    alone does not pass for the vision benchmark (it is missing, to fetch or skip)."""
    bench = tmp_path / "bench"
    assert run_cli("eval", "download", "mmmu_pro", "--to", str(bench)) == 0
    assert [p.name for p in (bench / "mmmu_pro").iterdir()] == ["standard (10 options)"]
    assert len(list(load_problems("mmmu_pro", bench))) == 1
    assert "mmmu_pro_vision" in missing_data([get_benchmark("mmmu_pro_vision")], bench)
    assert run_cli("eval", "download", "mmmu_pro_vision", "--to", str(bench)) == 0
    (page,) = load_problems("mmmu_pro_vision", bench)
    assert page.options == ["a", "b"] and page.images[0].bytes == VISION[0]["image"]["bytes"]
