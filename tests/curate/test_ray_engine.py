"""`--engine ray` on a local Ray instance with 2 CPUs: the same stage functions through Ray
Data map_batches give the same kept rows, drops and report as the local engine."""

from __future__ import annotations

import copy
import json

import pytest
import ray
from helpers import problem, read_jsonl
from scripted import ScriptedServer

from deepvision.curate import DedupStage, ModelConfig, ValidityStage, run_stage
from deepvision.data.reader import iter_problems
from deepvision.data.writer import ProblemWriter


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _ids(path):
    return [p.id for p in iter_problems([path])]


@pytest.mark.slow
def test_ray_engine_matches_local_engine(tmp_path, local_ray):
    base = [
        problem(f"q{i}", f"[q{i}] Triangle {i} has sides {i} and {i + 3}. Find x.", seed=i)
        for i in range(600)
    ]
    dupes = []
    for i in range(0, 600, 50):
        d = copy.deepcopy(base[i])
        d.id = f"dup-of-q{i}"
        dupes.append(d)
    rows = base[:300] + dupes + base[300:]
    rows[7].question = "[q7] Prove that the triangle is isosceles."
    inp = tmp_path / "in.parquet"
    with ProblemWriter(inp) as w:  # 256-row groups: 3 parts for Ray
        w.write(rows)
    valid = '{"answers": 1, "image_required": true, "checkable": true}'
    two = '{"answers": 2, "image_required": true, "checkable": true}'
    with ScriptedServer(lambda tag, a, body: two if tag.endswith("3") else valid) as s:
        cfg = ModelConfig([s.url], "m", concurrency=8, backoff=0.01)
        reports = {}
        for engine in ("local", "ray"):
            v = tmp_path / f"{engine}-valid.parquet"
            d = tmp_path / f"{engine}-dedup.parquet"
            reports[engine, "v"] = run_stage(
                ValidityStage(cfg), [inp], v, chunk_size=100, engine=engine
            )
            reports[engine, "d"] = run_stage(DedupStage(workers=1), [v], d, engine=engine)
    assert _ids(tmp_path / "ray-dedup.parquet") == _ids(tmp_path / "local-dedup.parquet")
    for key in ("v", "d"):
        assert reports["ray", key].dropped == reports["local", key].dropped
        assert reports["ray", key].kept == reports["local", key].kept
    assert reports["ray", "v"].dropped == {"keyword:proof": 1, "multiple_answers": 60}
    assert reports["ray", "d"].dropped == {"duplicate": 12}
    local = sorted(
        json.dumps(r, sort_keys=True) for r in read_jsonl(tmp_path / "local-dedup.drops.jsonl")
    )
    remote = sorted(
        json.dumps(r, sort_keys=True) for r in read_jsonl(tmp_path / "ray-dedup.drops.jsonl")
    )
    assert local == remote
