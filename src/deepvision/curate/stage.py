"""The curation stage contract and the local streaming engine that runs one stage, resumably.

A stage maps a chunk of Problems to Outcomes (kept, or dropped with a reason), may add
columns, and may make one global selection over compact per-row summaries afterwards
(dedup groups, knowledge-guided selection). The engine:

- reads the inputs in chunks of `chunk_size` problems (unreadable rows become drops);
- runs `stage.process` on each chunk and writes the chunk's kept rows, drops and summaries
  into `<out>.work/`, then a `chunk-N.done.json` marker: a killed run resumes at the first
  chunk without a marker (model stages also resume inside a chunk: their responses are
  exactly-once JSONL files in the same folder);
- never loses a problem to a bug or a strange input: a chunk whose processing raises is
  processed again one problem at a time, and a problem that still raises is dropped as
  `stage_error` with the exception named (see `process_chunk`);
- applies the stage's selection, then writes `<out>` (parquet), `<stem>.drops.jsonl` and
  `<stem>.report.json` atomically. Rows in = kept + dropped, always.
"""

from __future__ import annotations

import json
import logging
import shutil
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deepvision.configs import options_of
from deepvision.curate.modelcall import ModelConfig
from deepvision.data.reader import Reject, common_schema, iter_problem_batches, open_sources
from deepvision.data.writer import ROW_GROUP_ROWS, ProblemWriter, TableWriter
from deepvision.errors import EndpointError, UsageError
from deepvision.progress import progress_bar
from deepvision.records import ID, PROBLEM_SCHEMA, Problem, problems_to_batch

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1024
UNREADABLE = "unreadable_row"
STAGE_ERROR = "stage_error"


@dataclass
class Outcome:
    """What a stage decided for one problem: kept (`drop` is None) or dropped with a reason
    code and a detail; `note` flags kept-or-dropped problems the report should count
    (`unparsed`, `model_error`), `raw` keeps the model text behind an unparsed note."""

    problem: Problem
    drop: str | None = None
    detail: str = ""
    note: str | None = None
    raw: str | None = None


@dataclass
class ChunkResult:
    outcomes: list[Outcome]
    usage: dict[str, int] = field(default_factory=dict)


# Benchmark references for `decontam`: (names, data folder) -> (benchmark, Problem) pairs.
References = Callable[[list[str], Path | None], Iterable[tuple[str, Problem]]]


class Stage(ABC):
    """Base of the curation stages. Subclasses set `name`, `columns` and implement `process`;
    `curate.registry` lists them once, by name.

    A stage object is plain configuration (picklable): the Ray engine ships it to workers."""

    name: ClassVar[str] = "stage"
    # Columns this stage writes (from Problem.extra or typed fields), added to the output schema.
    columns: tuple[pa.Field, ...] = ()
    # Whether `summary` / `select` make a global selection after all chunks are processed.
    selects = False
    # The model a pipeline config gives it (`model:`): "required", "optional" or None (none).
    uses_model: ClassVar[str | None] = None

    @classmethod
    def options(cls) -> type:
        """The settings a pipeline config may give this stage, as a config dataclass: the
        keyword parameters of `__init__` and `from_pipeline`, with their types and defaults."""
        return options_of(
            f"{cls.__name__}Options",
            cls.__init__,
            cls.from_pipeline,
            skip=("model", "references"),
        )

    @classmethod
    def from_pipeline(
        cls, model: ModelConfig | None, references: References | None, **options: Any
    ) -> Stage:
        """The stage a pipeline config describes: its model (if it asks one) and settings."""
        if cls.uses_model is None:
            return cls(**options)
        return cls(model, **options)

    def config(self) -> dict[str, Any]:
        """The settings that change results; a resumed run must use the same."""
        return {}

    @abstractmethod
    def process(self, problems: list[Problem], work: Path) -> ChunkResult:
        """Decide for one chunk. `work` is a file prefix private to this chunk."""

    def summary(self, problem: Problem) -> Any:
        """A small JSON-able record of a kept problem for `select`."""
        return None

    def select(self, summaries: Iterator[tuple[str, Any]]) -> dict[int, tuple[str, str]]:
        """Given (id, summary) of every kept problem in input order: position in that order
        -> (reason, detail) of the problems to drop (positions, since ids may repeat)."""
        return {}

    def finish(self, out: Path) -> dict[str, Any]:
        """Side files written after the selection; returns entries for the report."""
        return {}


@dataclass
class StageReport:
    stage: str
    rows_in: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    usage: Counter = field(default_factory=Counter)
    resumed_chunks: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # what was run on what (see stage_meta)

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.kept + sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("dropped", "notes", "usage"):
            d[k] = dict(getattr(self, k))
        d["dropped_total"] = sum(self.dropped.values())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageReport:
        return cls(
            stage=d["stage"],
            rows_in=d["rows_in"],
            kept=d["kept"],
            dropped=Counter(d.get("dropped") or {}),
            notes=Counter(d.get("notes") or {}),
            usage=Counter(d.get("usage") or {}),
            resumed_chunks=d.get("resumed_chunks", 0),
            extra=d.get("extra") or {},
            outputs=d.get("outputs") or {},
            meta=d.get("meta") or {},
        )


def side_paths(out: Path) -> dict[str, Path]:
    """Where a stage writing `out` puts its drops, report and work folder."""
    stem = out.with_suffix("") if out.suffix else out
    return {
        "drops": stem.with_name(stem.name + ".drops.jsonl"),
        "report": stem.with_name(stem.name + ".report.json"),
        "work": out.with_name(out.name + ".work"),
    }


def output_schema(input_schema: pa.Schema | None, columns: Iterable[pa.Field]) -> pa.Schema:
    """The inputs' schema (or ours) with `id`, the stage's columns and any missing DeepVision
    columns the stage fills, appended at the end."""
    schema = input_schema if input_schema is not None else PROBLEM_SCHEMA
    if ID not in schema.names:
        schema = schema.insert(0, pa.field(ID, pa.string()))
    for f in columns:
        if f.name not in schema.names:
            schema = schema.append(f)
    return schema


def drop_record(stage: str, p: Problem, reason: str, detail: str, raw: str | None = None) -> dict:
    rec = {
        "id": p.id,
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "question": p.question,
        "answer": p.answer,
    }
    if raw is not None:
        rec["raw"] = raw
    return rec


def reject_record(stage: str, rej: Reject) -> dict:
    return {
        "id": None,
        "stage": stage,
        "reason": UNREADABLE,
        "detail": rej.describe(),
        "file": rej.file,
        "row": rej.row,
    }


class _Work:
    """The work folder of one stage run: per-chunk files and the resume check."""

    def __init__(self, path: Path, meta: dict[str, Any], fresh: bool) -> None:
        self.path = path
        if fresh and path.exists():
            shutil.rmtree(path)
        meta_path = path / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old != meta:
                raise UsageError(
                    f"{path} holds a run of another configuration ({old.get('stage')}, "
                    f"settings {old.get('config')}) (set to start over)",
                    param="overwrite",
                )
        else:
            path.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True))

    def chunk(self, i: int) -> Path:
        return self.path / f"chunk-{i:06d}"

    def chunks_done(self) -> list[Path]:
        return sorted(self.path.glob("chunk-*.done.json"))


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1))
    tmp.replace(path)


def save_chunk(
    stage: Stage,
    prefix: Path,
    schema: pa.Schema,
    result: ChunkResult,
    rejects: list[Reject],
) -> dict[str, Any]:
    """Write one chunk's kept rows, drops and summaries, then its done marker (last)."""
    kept = [o.problem for o in result.outcomes if o.drop is None]
    with ProblemWriter(prefix.with_suffix(".parquet"), schema) as w:
        w.write(kept)
    drops = [
        drop_record(stage.name, o.problem, o.drop, o.detail, o.raw)
        for o in result.outcomes
        if o.drop is not None
    ] + [reject_record(stage.name, r) for r in rejects]
    notes = Counter(o.note for o in result.outcomes if o.note)
    unparsed = [
        {
            "id": o.problem.id,
            "note": o.note,
            "detail": o.detail,
            "raw": o.raw,
            "dropped": o.drop is not None,
        }
        for o in result.outcomes
        if o.note
    ]
    with prefix.with_suffix(".drops.jsonl").open("w", encoding="utf-8") as fh:
        for rec in drops:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with prefix.with_suffix(".notes.jsonl").open("w", encoding="utf-8") as fh:
        for rec in unparsed:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    if stage.selects:
        with prefix.with_suffix(".summary.jsonl").open("w", encoding="utf-8") as fh:
            for p in kept:
                fh.write(json.dumps([p.id, stage.summary(p)], ensure_ascii=False) + "\n")
    done = {
        "rows_in": len(result.outcomes) + len(rejects),
        "kept": len(kept),
        "dropped": dict(Counter(d["reason"] for d in drops)),
        "notes": dict(notes),
        "usage": dict(result.usage),
    }
    _write_json_atomic(prefix.with_suffix(".done.json"), done)
    return done


def stops_the_run(exc: BaseException) -> bool:
    """Whether a fault ends the whole run rather than one problem: the caller's settings, an
    endpoint gone for good, a failed system call (a full disk); processing the problems one at
    a time could not help. The work done so far stays, and a rerun resumes it."""
    if isinstance(exc, OSError):
        return exc.errno is not None  # a system call failed; PIL's image errors have none
    return isinstance(exc, UsageError | EndpointError) or not isinstance(exc, Exception)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    text = text if len(text) <= 300 else text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def process_chunk(stage: Stage, problems: list[Problem], prefix: Path) -> ChunkResult:
    """`stage.process` on one chunk, with every problem accounted for: when the chunk raises
    (other than a fault that `stops_the_run`), each problem is processed alone (files under
    `<prefix>-itemK`), and one that still raises is dropped as `stage_error`, noted with the
    exception's type and message (the command then exits 1)."""
    try:
        return stage.process(problems, prefix)
    except BaseException as exc:
        if stops_the_run(exc):
            raise
        log.warning(
            "%s: a chunk failed (%s); processing its problems one by one",
            stage.name,
            _describe(exc),
        )
    outcomes: list[Outcome] = []
    usage: Counter = Counter()
    for k, p in enumerate(problems):
        try:
            alone = stage.process([p], prefix.with_name(f"{prefix.name}-item{k:05d}"))
        except BaseException as exc:
            if stops_the_run(exc):
                raise
            outcomes.append(Outcome(p, STAGE_ERROR, _describe(exc), note=STAGE_ERROR))
            continue
        outcomes += alone.outcomes
        usage.update(alone.usage)
    return ChunkResult(outcomes, dict(usage))


def _add(report: StageReport, done: dict[str, Any]) -> None:
    report.rows_in += done["rows_in"]
    report.kept += done["kept"]
    report.dropped.update(done["dropped"])
    report.notes.update(done["notes"])
    report.usage.update(done["usage"])


def _stamp(path: Path) -> list:
    """Size and modification time of an input (of every file under it, for a folder)."""
    if path.is_dir():
        return [[str(f.relative_to(path)), *_stamp(f)] for f in sorted(path.rglob("*"))]
    if not path.exists():
        return []
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def stage_meta(stage: Stage, inputs: list[Path]) -> dict[str, Any]:
    """What decides a stage's result: its settings and its inputs (paths, sizes, times).
    Kept in the work folder (resume check) and in the report (`curate run` skips a finished
    stage only while this is unchanged)."""
    return {
        "stage": stage.name,
        "config": json.loads(json.dumps(stage.config(), default=str)),
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "input_stamps": [_stamp(Path(p)) for p in inputs],
    }


def prepare(
    stage: Stage,
    inputs: list[Path],
    out: Path,
    overwrite: bool,
    chunk_size: int,
    engine: str = "local",
) -> tuple[_Work, list, pa.Schema]:
    """Check the output rule, open the inputs and the work folder (resume or fresh)."""
    paths = side_paths(out)
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists (set to replace it)", param="overwrite")
    if chunk_size < 1:
        raise UsageError(f"must be >= 1, got {chunk_size}", param="chunk_size")
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = open_sources(inputs)
    schema = output_schema(common_schema(sources), stage.columns)
    meta = {**stage_meta(stage, inputs), "chunk_size": chunk_size, "engine": engine}
    work = _Work(paths["work"], meta, fresh=overwrite)
    return work, sources, schema


def run_stage(
    stage: Stage,
    inputs: Iterable[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    keep_work: bool = False,
    engine: str = "local",
) -> StageReport:
    """Run one stage over the inputs; write `out`, its drops and its report (see module doc)."""
    if engine not in ("local", "ray"):
        raise UsageError(f"expected local or ray, got {engine!r}", param="engine")
    inputs = [Path(p) for p in inputs]
    out = Path(out)
    work, sources, schema = prepare(stage, inputs, out, overwrite, chunk_size, engine)
    report = StageReport(stage.name, meta=stage_meta(stage, inputs))
    if engine == "ray":
        from deepvision.curate.ray_engine import process_with_ray

        for done in process_with_ray(stage, inputs, sources, schema, work, chunk_size):
            report.resumed_chunks += int(done.pop("resumed", False))
            _add(report, done)
    else:
        total = sum(s.num_rows or 0 for s in sources) or None
        with progress_bar(f"curate {stage.name}", total) as bar:
            for i, batch in enumerate(iter_problem_batches(sources, chunk_size)):
                prefix = work.chunk(i)
                marker = prefix.with_suffix(".done.json")
                if marker.exists():
                    done = json.loads(marker.read_text())
                    report.resumed_chunks += 1
                else:
                    result = process_chunk(stage, batch.problems, prefix)
                    done = save_chunk(stage, prefix, schema, result, batch.rejects)
                _add(report, done)
                bar.advance(done["rows_in"])
    finalize(stage, work, schema, out, report)
    if not keep_work:
        shutil.rmtree(work.path, ignore_errors=True)
    return report


def _iter_summaries(files: list[Path]) -> Iterator[tuple[str, Any]]:
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for line in fh:
                pid, summary = json.loads(line)
                yield pid, summary


def finalize(stage: Stage, work: _Work, schema: pa.Schema, out: Path, report: StageReport):
    """Selection, then the final parquet, drops and report, each written atomically. `out`
    comes into place last: an `out` on disk means its drops and report are there too."""
    part = out.with_name(out.name + ".part")
    try:
        _finalize(stage, work, schema, out, part, report)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(out)


def _finalize(
    stage: Stage, work: _Work, schema: pa.Schema, out: Path, part: Path, report: StageReport
) -> None:
    paths = side_paths(out)
    chunks = [Path(str(m).removesuffix(".done.json")) for m in work.chunks_done()]
    selected_out: dict[int, tuple[str, str]] = {}
    if stage.selects:
        selected_out = stage.select(
            _iter_summaries([c.with_suffix(".summary.jsonl") for c in chunks])
        )
    position = 0
    drops_tmp = paths["drops"].with_name(paths["drops"].name + ".tmp")
    notes_path = paths["drops"].with_name(paths["drops"].name.replace(".drops.", ".unparsed."))
    kept = 0
    with TableWriter(part, schema) as writer, drops_tmp.open("w", encoding="utf-8") as dfh:
        for c in chunks:
            with c.with_suffix(".drops.jsonl").open(encoding="utf-8") as fh:
                shutil.copyfileobj(fh, dfh)
            pf = pq.ParquetFile(c.with_suffix(".parquet"))
            for rb in pf.iter_batches(batch_size=ROW_GROUP_ROWS):
                rb = rb.select(schema.names)
                start, position = position, position + rb.num_rows
                gone_at = [k for k in range(start, position) if k in selected_out]
                if gone_at:
                    mask = np.zeros(rb.num_rows, dtype=bool)
                    mask[np.array(gone_at) - start] = True
                    gone = pa.array(mask)
                    for k, row in zip(gone_at, rb.filter(gone).to_pylist(), strict=True):
                        reason, detail = selected_out[k]
                        rec = {
                            "id": row[ID],
                            "stage": stage.name,
                            "reason": reason,
                            "detail": detail,
                            "question": row.get("question"),
                            "answer": (row.get("reward_model") or {}).get("ground_truth"),
                        }
                        dfh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    rb = rb.filter(pc.invert(gone))
                writer.write_batch(pa.RecordBatch.from_arrays(rb.columns, schema=schema))
                kept += rb.num_rows
    drops_tmp.replace(paths["drops"])
    moved = Counter(r for r, _ in selected_out.values())
    report.dropped.update(moved)
    report.kept -= sum(moved.values())
    if report.kept != kept:  # a bug, not a data problem: counts must reconcile
        raise RuntimeError(f"{stage.name}: wrote {kept} rows but counted {report.kept}")
    if report.notes:
        with notes_path.open("w", encoding="utf-8") as nfh:
            for c in chunks:
                with c.with_suffix(".notes.jsonl").open(encoding="utf-8") as fh:
                    shutil.copyfileobj(fh, nfh)
        report.outputs["unparsed"] = str(notes_path)
    report.extra.update(stage.finish(out))
    report.outputs.update(out=str(out), drops=str(paths["drops"]), report=str(paths["report"]))
    _write_json_atomic(paths["report"], report.to_dict())


def problems_table(problems: list[Problem], schema: pa.Schema) -> pa.RecordBatch:
    return problems_to_batch(problems, schema)
