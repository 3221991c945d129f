"""Every curation worker loop catches everything: model stages against a server that answers
500s, cut JSON bodies, null messages or contents and `usage` of the wrong type finish in
bounded time with every problem kept or dropped with its reason (counts reconcile); a reply
that breaks the JSON parser is unparsed, not fatal; a stage that raises on one problem loses
that problem only."""

from __future__ import annotations

import time

import pytest
from helpers import problem, read_jsonl, write
from scripted import ScriptedServer

from deepvision.curate import ModelConfig, Outcome, Stage, ValidityStage, run_stage
from deepvision.curate.correctness import CorrectnessStage
from deepvision.curate.difficulty import DifficultyStage
from deepvision.curate.stage import ChunkResult
from deepvision.data.reader import iter_problems
from deepvision.llm.fake_server import FakeServer, Faults

VALID = '{"answers": 1, "image_required": true, "checkable": true, "reason": "ok"}'
LABEL = '{"label": "CONSISTENT", "reason": "ok"}'

FAULTS = {
    "http 500": Faults(fail_rate=0.5, seed=1),
    "cut JSON body": Faults(malformed_rate=0.5, seed=2),
    "null content": Faults(null_content_rate=0.5, seed=3),
    "null message": Faults(null_message_rate=0.5, seed=4),
    "usage a string": Faults(bad_usage_rate=0.5, seed=5),
    "usage a list": Faults(usage_list_rate=0.5, seed=6),
    "usage not numbers": Faults(usage_fields_rate=0.5, seed=7),
}


def reply(body: dict) -> str | list[str]:
    system = body["messages"][0]["content"]
    if "screen K12 math problems" in system:
        return VALID
    if "audit math problems" in system:
        return LABEL
    return ["\\boxed{12}", "\\boxed{0}"]  # difficulty: 1 of 2 rollouts right


def stages(url: str) -> list[Stage]:
    cfg = ModelConfig([url], "m", concurrency=4, timeout=5.0, attempts=2, backoff=0.01)
    return [
        ValidityStage(cfg, retries=1),
        CorrectnessStage(cfg, retries=1),
        DifficultyStage(cfg, n=2, band="0..1"),
    ]


def accounted(out, drops_path, expected: set[str]) -> tuple[set[str], dict[str, str]]:
    kept = [p.id for p in iter_problems([out])]
    drops = {d["id"]: d["reason"] for d in read_jsonl(drops_path)}
    assert len(kept) + len(drops) == len(expected)  # nothing twice
    assert set(kept) | set(drops) == expected  # nothing lost
    return set(kept), drops


@pytest.mark.parametrize("mode", list(FAULTS))
def test_model_stages_account_for_every_problem_whatever_the_server_sends(tmp_path, mode):
    problems = [problem(f"p{i}", f"[p{i}] In the figure, find x.", "12", seed=i) for i in range(12)]
    ids = {p.id for p in problems}
    inp = write(tmp_path / "in.parquet", problems)
    server = FakeServer(FAULTS[mode], responder=reply).start()
    try:
        for stage in stages(server.url):
            out = tmp_path / f"{stage.name}.parquet"
            t0 = time.monotonic()
            rep = run_stage(stage, [inp], out, chunk_size=5)
            assert time.monotonic() - t0 < 60, f"{stage.name} took too long"
            kept, drops = accounted(out, tmp_path / f"{stage.name}.drops.jsonl", ids)
            assert rep.rows_in == 12 and rep.balanced and rep.kept == len(kept)
            assert set(drops.values()) <= {"model_error"}, drops
            assert rep.notes.get("model_error", 0) == len(drops)
    finally:
        server.stop()


def test_a_reply_that_breaks_the_json_parser_is_unparsed_not_fatal(tmp_path):
    deep = '{"a": ' * 100_000  # raw_decode recurses past Python's limit
    script = {"deep": [deep], "good": [VALID]}
    inp = write(tmp_path / "in.parquet", [problem(t, f"[{t}] Find x.") for t in script])
    with ScriptedServer(script) as s:
        cfg = ModelConfig([s.url], "m", concurrency=2, timeout=5.0, attempts=1)
        rep = run_stage(ValidityStage(cfg, retries=1), [inp], tmp_path / "v.parquet")
    kept, drops = accounted(tmp_path / "v.parquet", tmp_path / "v.drops.jsonl", set(script))
    assert kept == {"good"} and drops == {"deep": "unparsed"}
    assert s.asked["deep"] == 2  # re-asked once, like any reply that cannot be used
    assert rep.notes == {"unparsed": 1}


class NumericAnswers(Stage):
    """A stage someone adds to the registry: keeps problems whose answer starts with a digit;
    its code has a bug for one input (an empty answer)."""

    name = "numeric_answers"

    def process(self, problems, work):
        return ChunkResult(
            [Outcome(p, None if p.answer[0].isdigit() else "not_numeric") for p in problems]
        )


def test_a_stage_that_raises_on_one_problem_loses_that_problem_only(tmp_path):
    problems = [problem(f"p{i}", f"Find x{i}.", answer="" if i == 3 else "5") for i in range(7)]
    inp = write(tmp_path / "in.parquet", problems)
    rep = run_stage(NumericAnswers(), [inp], tmp_path / "o.parquet", chunk_size=4)
    kept, drops = accounted(
        tmp_path / "o.parquet", tmp_path / "o.drops.jsonl", {p.id for p in problems}
    )
    assert drops == {"p3": "stage_error"} and len(kept) == 6
    (record,) = read_jsonl(tmp_path / "o.drops.jsonl")
    assert record["detail"] == "IndexError: string index out of range"
    assert rep.notes == {"stage_error": 1} and rep.balanced
