"""Read Problems from any source in batches; rows that fail become Rejects, never vanish."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepvision.data.schema import check_schema
from deepvision.data.sources import (
    DEFAULT_BATCH_SIZE,
    Part,
    RowBatch,
    Source,
    SourceRow,
    is_image_list,
    open_source,
    owned_fields,
)
from deepvision.errors import DataError
from deepvision.records import IMAGE_TYPE, IMAGES, Problem, RowIssue, problem_from_row
from deepvision.workers import process_pool

log = logging.getLogger(__name__)


@dataclass
class Reject:
    """A row that was not used, with where it is, every reason, and its raw fields."""

    file: str
    row: int
    issues: list[RowIssue]
    fields: dict[str, Any] | None = None

    def describe(self) -> str:
        reasons = "; ".join(str(i) for i in self.issues)
        return f"{self.file}, row {self.row}: {reasons}"


@dataclass
class ProblemBatch:
    source: Source | Part | None
    problems: list[Problem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    # The source row of each problem, aligned with `problems` (its place and raw fields).
    rows: list[SourceRow] = field(default_factory=list)
    # Tabular sources: the Arrow rows read, and each problem's position in them.
    arrow: pa.RecordBatch | None = None
    positions: list[int] = field(default_factory=list)


def open_sources(paths: Iterable[str | Path], *, allow_absolute: bool = False) -> list[Source]:
    """Open every input and check its columns before any row is read. `allow_absolute`: JSONL
    image paths may be absolute (see `open_source`)."""
    sources = [open_source(p, allow_absolute=allow_absolute) for p in paths]
    for src in sources:
        if src.schema is None:
            continue
        bad = check_schema(src.schema)
        if bad:
            column, reason = bad[0]
            more = f" (and {len(bad) - 1} more column problem(s))" if len(bad) > 1 else ""
            raise DataError(reason + more, file=str(src.path), column=column)
    return sources


def parse_row(src_row: SourceRow, with_id: bool = True) -> tuple[Problem | None, list[RowIssue]]:
    if src_row.error is not None or src_row.fields is None:
        return None, [RowIssue(src_row.column, src_row.error or "unreadable row")]
    return problem_from_row(src_row.fields, with_id=with_id)


def reject(sr: SourceRow, issues: list[RowIssue]) -> Reject:
    """The Reject of a source row, holding its own copy of the raw fields."""
    return Reject(sr.file, sr.row, issues, owned_fields(sr.fields))


def parse_batch(
    rb: RowBatch, with_id: bool = True, src: Source | Part | None = None
) -> ProblemBatch:
    """The Problems of a RowBatch; rows with any issue become Rejects."""
    out = ProblemBatch(source=src, arrow=rb.arrow)
    for i, sr in enumerate(rb.rows):
        problem, issues = parse_row(sr, with_id)
        if issues or problem is None:
            out.rejects.append(reject(sr, issues))
        else:
            out.problems.append(problem)
            out.rows.append(sr)
            out.positions.append(i)
    return out


def iter_problem_batches(
    sources: Iterable[Source],
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_id: bool = True,
    columns: list[str] | None = None,
    image_views: bool = False,
) -> Iterator[ProblemBatch]:
    """Yield Problems batch by batch; any row with an issue goes to the batch's rejects.

    `with_id=False` skips hashing the content of rows that have no id (their id is "").
    `columns`: read only these columns of tabular inputs (the others stay unparsed).
    `image_views`: image bytes are zero-copy views, valid while their batch is in use."""
    read = _Read(batch_size, with_id, columns, image_views)
    for src in sources:
        yield from read.batches(src)


@dataclass(frozen=True)
class _Read:
    batch_size: int
    with_id: bool
    columns: list[str] | None
    image_views: bool
    parse: bool = True  # False: hand over the RowBatch itself

    def batches(self, part: Part | Source) -> Iterator[ProblemBatch | RowBatch]:
        for rb in part.batches(self.batch_size, columns=self.columns, image_views=self.image_views):
            yield parse_batch(rb, self.with_id, part) if self.parse else rb


def _map_part(part: Part, fn: Callable, read: _Read) -> list:
    return [fn(batch) for batch in read.batches(part)]


def map_batches(
    sources: list[Source],
    fn: Callable[[ProblemBatch], Any],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    with_id: bool = True,
    columns: list[str] | None = None,
    parse: bool = True,
) -> Iterator[Any]:
    """`fn(batch)` for every ProblemBatch of the inputs, in input order (with `parse=False`,
    for every RowBatch: `fn` parses what it needs, e.g. column-wise from `batch.arrow`).

    Sources that split into parts (parquet row groups) are read and mapped in `workers`
    processes (default: all cores), a few parts in flight at a time so memory stays bounded;
    `fn` must be picklable (a module-level function or a partial of one). Other sources, and
    `workers=1`, run in this process. Image bytes reach `fn` as zero-copy views of the Arrow
    batch (`memoryview`): `fn` uses them, its result must not hold them (rejects hold copies).
    `columns`: read only these columns of tabular inputs."""
    workers = workers or os.cpu_count() or 1
    read = _Read(batch_size, with_id, columns, image_views=True, parse=parse)
    parts = [part for src in sources for part in src.parts()]
    if workers <= 1 or len(parts) <= 1:
        for part in parts:
            yield from map(fn, read.batches(part))
        return
    with process_pool(min(workers, len(parts))) as pool:
        pending: deque = deque()
        todo = iter(parts)
        for part in todo:
            pending.append(pool.submit(_map_part, part, fn, read))
            if len(pending) >= workers + 1:
                break
        while pending:
            results = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_map_part, nxt, fn, read))
            yield from results


def iter_problems(paths: Iterable[str | Path], batch_size: int = DEFAULT_BATCH_SIZE):
    """Every Problem of the inputs; raises DataError at the first bad row (for library users)."""
    for batch in iter_problem_batches(open_sources(paths), batch_size):
        if batch.rejects:
            rej = batch.rejects[0]
            raise DataError("; ".join(str(i) for i in rej.issues), file=rej.file, row=rej.row)
        yield from batch.problems


def common_schema(sources: list[Source]) -> pa.Schema | None:
    """The Arrow schema to write outputs in: the inputs' own when they all share one. Images
    are always written as {bytes, path} structs (an input may list them as plain paths or
    bytes; a Problem's images are the structs)."""
    schemas = [s.schema for s in sources]
    if not schemas or not all(s is not None and s.equals(schemas[0]) for s in schemas):
        return None
    schema = schemas[0]
    if IMAGES in schema.names and not is_image_list(schema.field(IMAGES).type):
        schema = schema.set(schema.get_field_index(IMAGES), pa.field(IMAGES, IMAGE_TYPE))
    return schema
