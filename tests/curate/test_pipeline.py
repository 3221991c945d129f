"""`deepvision curate run`: every stage in order from one YAML, against a scripted server;
every problem accounted for; the funnel report; a finished pipeline is not redone."""

from __future__ import annotations

import json
import time

import pytest
from helpers import problem, read_jsonl, write
from scripted import ScriptedServer

from deepvision.curate.pipeline import PipelineConfig, StageSpec, run_pipeline
from deepvision.data.reader import iter_problems
from deepvision.errors import ConfigError
from deepvision.llm.fake_server import FakeServer

VALID = '{"answers": 1, "image_required": true, "checkable": true}'
ANNO = json.dumps(
    {
        "topic": ["Geometry", "Plane Geometry", "Basic Plane Figures", "Triangle"],
        "knowledge_points": ["Area of Triangle"],
        "visual_elements": {"planar_geometry": ["Triangle"]},
    }
)


def responder(tag, attempt, body):
    system = body["messages"][0]["content"]
    if "screen K12 math problems" in system:
        return "garbage" if tag == "junk" else VALID
    if "audit math problems" in system:
        return (
            '{"label": "ERR_MISMATCH", "reason": "x"}'
            if tag == "bad"
            else ('{"label": "CONSISTENT", "reason": "ok"}')
        )
    if "annotate K12 math problems" in system:
        return ANNO
    hard = tag == "hard"
    return ["\\boxed{12}" if (k < 3 and not hard) else "\\boxed{0}" for k in range(8)]


def test_pipeline_runs_every_stage_and_writes_the_funnel(tmp_path, cli):
    tags = ["a", "b", "c", "junk", "hard", "bad", "proof", "dup", "synthcopy"]
    problems = [
        problem(
            t, f"[{t}] In the figure, triangle {t} has sides 5 and 7. Find x.", answer="12", seed=i
        )
        for i, t in enumerate(tags)
    ]
    problems[6].question = "[proof] Prove that the triangle is right-angled."
    problems[7].question, problems[7].images = problems[0].question, problems[0].images
    from deepvision.eval import load_problems

    bench = next(iter(load_problems("synth", None)))
    problems[8].question = bench.question
    write(tmp_path / "raw.parquet", problems)
    with ScriptedServer(responder) as s:
        (tmp_path / "pipeline.yaml").write_text(f"""
input: raw.parquet
workdir: work
output: final.parquet
chunk_size: 4
models:
  m: {{endpoint: "{s.url}", model: scripted, concurrency: 4, backoff: 0.01}}
stages:
  - {{stage: validity, model: m, retries: 1}}
  - dedup
  - {{stage: decontam, benchmarks: [synth]}}
  - {{stage: difficulty, model: m, n: 8}}
  - {{stage: correctness, model: m}}
  - {{stage: annotate, model: m}}
""")
        res = cli("curate", "run", tmp_path / "pipeline.yaml")
        assert res.code == 1, res.text  # one unparsed reply: the job found problems
        asked = sum(s.asked.values())
        again = cli("curate", "run", tmp_path / "pipeline.yaml")
        assert sum(s.asked.values()) == asked  # finished stages are not redone
        assert again.code == 1
    final = {p.id: p for p in iter_problems([tmp_path / "final.parquet"])}
    assert set(final) == {"a", "b", "c"}
    assert all(str(p.pass_rate) == "3/8" and p.topic[0] == "Geometry" for p in final.values())
    funnel = json.loads((tmp_path / "work" / "funnel.json").read_text())
    stages = {s["stage"]: s for s in funnel["stages"]}
    assert stages["validity"]["dropped"] == {"keyword:proof": 1, "unparsed": 1}
    assert stages["dedup"]["dropped"] == {"duplicate": 1}
    assert stages["decontam"]["dropped"] == {"contaminated:synth": 1}
    assert stages["difficulty"]["dropped"] == {"too_hard": 1}
    assert stages["correctness"]["dropped"] == {"ERR_MISMATCH": 1}
    assert stages["annotate"]["dropped"] == {}
    # every problem accounted for: in = out + all drops, stage by stage and overall
    assert funnel["rows_in"] == 9 and funnel["rows_out"] == 3
    assert 3 + sum(sum(s["dropped"].values()) for s in funnel["stages"]) == 9
    for a, b in zip(funnel["stages"], funnel["stages"][1:], strict=False):
        assert a["kept"] == b["rows_in"]
    dropped_ids = {
        d["id"] for f in (tmp_path / "work").glob("*.drops.jsonl") for d in read_jsonl(f)
    }
    assert dropped_ids == {"junk", "hard", "bad", "proof", "dup", "synthcopy"}
    md = (tmp_path / "work" / "funnel.md").read_text()
    assert "| validity | 9 | 7 | 2 |" in md and "| 3/8 | 3 |" in md
    assert "prompt tokens" in md
    for png in funnel["pngs"].values():
        assert (tmp_path / "work" / png.split("/")[-1]).stat().st_size > 1000


def test_pipeline_reruns_a_finished_stage_whose_keyword_file_changed(tmp_path):
    write(
        tmp_path / "in.parquet",
        [problem("a", "Prove that x = 1."), problem("b", "Find x."), problem("c", "Find y.")],
    )
    (tmp_path / "p.yaml").write_text(
        "input: in.parquet\nworkdir: w\nstages:\n"
        "  - {stage: validity, rules_only: true, keywords: kw.yaml}\n  - dedup\n"
    )
    kw = tmp_path / "kw.yaml"
    kw.write_text("proof: [prove]\n")
    first = run_pipeline(PipelineConfig.load(tmp_path / "p.yaml"))
    assert first["stages"][0]["dropped"] == {"keyword:proof": 1}
    same = run_pipeline(PipelineConfig.load(tmp_path / "p.yaml"))
    assert [s["extra"].get("skipped") for s in same["stages"]] == ["done in an earlier run"] * 2
    kw.write_text("find: [find x]\n")
    second = run_pipeline(PipelineConfig.load(tmp_path / "p.yaml"))
    assert second["stages"][0]["dropped"] == {"keyword:find": 1}
    assert all("skipped" not in s["extra"] for s in second["stages"])
    out = {p.id for p in iter_problems([tmp_path / "w" / "02-dedup.parquet"])}
    assert out == {"a", "c"}


MODEL = '  m: {endpoint: "http://127.0.0.1:9/v1", model: scripted}\n'


@pytest.mark.parametrize(
    ("yaml_text", "key", "message"),
    [
        ("input: in.parquet\nchunk_sise: 4\nstages: [dedup]\n", "chunk_sise", "unknown key"),
        ("input: in.parquet\nchunk_size: 0\nstages: [dedup]\n", "chunk_size", "out of range"),
        ("input: in.parquet\nengine: spark\nstages: [dedup]\n", "engine", "'local' | 'ray'"),
        ("stages: [dedup]\n", "input", "required key is missing"),
        ("input: in.parquet\nstages: []\n", "stages", "at least one stage"),
        ("input: in.parquet\nstages: [dedup, validty]\n", "stages[1].stage", "one of validity"),
        (
            "input: in.parquet\nstages:\n  - {stage: dedup, text_threshold: high}\n",
            "stages[0].text_threshold",
            "expected float, got 'high'",
        ),
        (
            f"input: in.parquet\nmodels:\n{MODEL}stages:\n  - dedup\n"
            "  - {stage: difficulty, model: m, nn: 8}\n",
            "stages[1].nn",
            "unknown key (known here: band, ",
        ),
        (
            f"input: in.parquet\nmodels:\n{MODEL}stages:\n  - {{stage: correctness, model: x}}\n",
            "stages[0].model",
            "unknown model 'x'",
        ),
        ("input: in.parquet\nstages: [correctness]\n", "stages[0].model", "needs a model"),
        (
            "input: in.parquet\nmodels:\n  m: {endpoint: 'http://127.0.0.1:9/v1', model: s, "
            "concurrency: many}\nstages: [dedup]\n",
            "models.m.concurrency",
            "expected int",
        ),
    ],
)
def test_a_bad_pipeline_key_names_the_file_and_the_key_path(tmp_path, yaml_text, key, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        PipelineConfig.load(path)
    assert (info.value.file, info.value.key) == (str(path), key)
    assert str(info.value).startswith(f"{path}: {key}: ") and message in str(info.value)


def test_every_stage_is_checked_before_the_first_one_runs(tmp_path, cli):
    write(tmp_path / "in.parquet", [problem("a", "Find x.")])
    path = tmp_path / "p.yaml"
    path.write_text(
        f"input: in.parquet\nworkdir: w\nmodels:\n{MODEL}stages:\n  - dedup\n"
        "  - {stage: difficulty, model: m, n: 0}\n"
    )
    cfg = PipelineConfig.load(path)  # types and keys are right; the value is the stage's to check
    with pytest.raises(ConfigError, match=r"p\.yaml: stages\[1\]\.n: must be at least 1"):
        run_pipeline(cfg)
    assert not (tmp_path / "w").exists()  # dedup did not run
    res = cli("curate", "run", path)
    assert res.code == 2 and "stages[1].n: must be at least 1" in res.err
    path.write_text("input: in.parquet\nstages:\n  - {stage: dedup, text_treshold: 0.5}\n")
    res = cli("curate", "run", path)
    assert res.code == 2 and "stages[0].text_treshold: unknown key" in res.err
    assert "Traceback" not in res.err


def test_stage_paths_are_relative_to_the_yaml_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "p.yaml"
    path.write_text(
        "input: ../in.parquet\nstages:\n"
        "  - {stage: validity, rules_only: true, keywords: kw.yaml}\n"
        "  - {stage: decontam, benchmarks: [synth], data_dir: bench}\n"
    )
    cfg = PipelineConfig.load(path)
    assert cfg.input == [tmp_path / "cfg" / "../in.parquet"]
    assert cfg.workdir == tmp_path / "cfg" / "curate-out"
    assert cfg.stages[0] == StageSpec(
        "validity", None, {"rules_only": True, "keywords": tmp_path / "cfg" / "kw.yaml"}
    )
    assert cfg.stages[1].options == {
        "benchmarks": ("synth",),
        "data_dir": tmp_path / "cfg" / "bench",
    }


def _pipeline_with_judge(tmp_path, judge: str) -> None:
    """dedup, then a model stage: the judge's model entry is `judge` (YAML flow mapping)."""
    write(tmp_path / "in.parquet", [problem("a", "Find x."), problem("b", "Find y.")])
    (tmp_path / "p.yaml").write_text(
        f"input: in.parquet\nworkdir: w\nmodels:\n  judge: {judge}\n"
        "stages:\n  - dedup\n  - {stage: validity, rules_only: true}\n"
        "  - {stage: correctness, model: judge}\n"
    )


@pytest.mark.parametrize(
    ("key", "served", "up", "code", "says"),
    [
        (None, "judge-model", True, 2, "variable DV_TEST_JUDGE_KEY (the API key) is not set"),
        ("wrong", "judge-model", True, 2, "refused the API key (HTTP 401)"),
        ("right", "other-model", True, 2, "does not serve 'judge-model'"),
        ("right", "judge-model", False, 1, "is unreachable"),
    ],
    ids=["key not set", "key refused", "model not served", "unreachable"],
)
def test_run_checks_every_model_before_stage_1_and_names_the_stage(
    tmp_path, cli, monkeypatch, key, served, up, code, says
):
    monkeypatch.delenv("DV_TEST_JUDGE_KEY", raising=False)
    if key is not None:
        monkeypatch.setenv("DV_TEST_JUDGE_KEY", key)
    server = FakeServer(models=[served], api_key="right").start()
    if not up:
        server.stop()
    entry = f'{{endpoint: "{server.url}", model: judge-model, api_key_env: DV_TEST_JUDGE_KEY}}'
    _pipeline_with_judge(tmp_path, entry)
    t0 = time.monotonic()
    try:
        res = cli("curate", "run", tmp_path / "p.yaml")
    finally:
        server.stop()
    assert res.code == code, res.text
    assert "stage 3 (correctness) asks model judge" in res.err and says in res.err
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert not (tmp_path / "w" / "01-dedup.parquet").exists()  # stage 1 never started
    assert time.monotonic() - t0 < 60
