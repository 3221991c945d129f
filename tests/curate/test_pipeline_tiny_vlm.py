"""End to end on CPU: the whole pipeline on synthetic problems against `transformers serve`
with a tiny offline VLM. Its replies are nonsense: the pipeline must finish, retry and record
every unparsable reply, and account for every problem."""

from __future__ import annotations

import json

import pytest
from helpers import read_jsonl

from conftest import free_ports
from deepvision.data.synth import generate
from deepvision.data.writer import ProblemWriter
from deepvision.llm.serve import ServeConfig, ServerGroup
from deepvision.train.tiny import build_tiny_vlm


@pytest.mark.slow
def test_pipeline_against_transformers_serve_with_a_tiny_vlm(tmp_path, cli):
    model = build_tiny_vlm(tmp_path / "tiny-vlm")
    with ProblemWriter(tmp_path / "raw.parquet") as w:
        w.write(list(generate(4, seed=5)))
    cfg = ServeConfig(
        str(model), backend="transformers", port=free_ports(), log_dir=tmp_path / "logs"
    )
    with ServerGroup(cfg, health_timeout=180) as group:
        (tmp_path / "pipeline.yaml").write_text(f"""
input: raw.parquet
workdir: work
chunk_size: 2
models:
  tiny: {{endpoint: "{group.urls[0]}", model: "{model}", max_tokens: 8, concurrency: 2,
          timeout: 120}}
stages:
  - {{stage: validity, model: tiny, retries: 1, on_unparsed: keep}}
  - dedup
  - {{stage: difficulty, model: tiny, n: 2, band: "0..1"}}
  - {{stage: correctness, model: tiny, retries: 1, on_unparsed: keep}}
  - {{stage: annotate, model: tiny, retries: 1}}
""")
        res = cli("curate", "run", tmp_path / "pipeline.yaml")
        assert res.code in (0, 1), res.text + group.instances[0].log_tail()
    funnel = json.loads((tmp_path / "work" / "funnel.json").read_text())
    assert funnel["rows_in"] == 4
    for stage in funnel["stages"]:
        assert stage["rows_in"] == stage["kept"] + sum(stage["dropped"].values())
    assert funnel["rows_out"] + sum(sum(s["dropped"].values()) for s in funnel["stages"]) == 4
    by = {s["stage"]: s for s in funnel["stages"]}
    # nonsense never parses as a verdict: recorded as unparsed (kept by policy), not guessed
    v = by["validity"]
    keyword = sum(n for r, n in v["dropped"].items() if r.startswith("keyword:"))
    assert v["notes"].get("unparsed", 0) + v["notes"].get("model_error", 0) + keyword == 4
    assert by["difficulty"]["usage"]["completion_tokens"] > 0
    unparsed = read_jsonl(tmp_path / "work" / "01-validity.unparsed.jsonl")
    assert all(isinstance(r["raw"], str) for r in unparsed if r["note"] == "unparsed")
    assert (tmp_path / "work" / "funnel.md").exists()
