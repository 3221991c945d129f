"""Read Problems from any source in batches; rows that fail become Rejects, never vanish."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from deepvision.data.schema import check_schema
from deepvision.data.sources import DEFAULT_BATCH_SIZE, Source, SourceRow, open_source
from deepvision.errors import DataError
from deepvision.records import Problem, RowIssue, problem_from_row

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
    source: Source
    problems: list[Problem] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    # The source row of each problem, aligned with `problems` (its place and raw fields).
    rows: list[SourceRow] = field(default_factory=list)


def open_sources(paths: Iterable[str | Path]) -> list[Source]:
    """Open every input and check its columns before any row is read."""
    sources = [open_source(p) for p in paths]
    for src in sources:
        if src.schema is None:
            continue
        bad = check_schema(src.schema)
        if bad:
            column, reason = bad[0]
            more = f" (and {len(bad) - 1} more column problem(s))" if len(bad) > 1 else ""
            raise DataError(reason + more, file=str(src.path), column=column)
    return sources


def parse_row(src_row: SourceRow) -> tuple[Problem | None, list[RowIssue]]:
    if src_row.fields is None:
        return None, [RowIssue(None, src_row.error or "unreadable row")]
    return problem_from_row(src_row.fields)


def iter_problem_batches(
    sources: Iterable[Source], batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[ProblemBatch]:
    """Yield Problems batch by batch; any row with an issue goes to the batch's rejects."""
    for src in sources:
        for rb in src.batches(batch_size):
            out = ProblemBatch(source=src)
            for sr in rb.rows:
                problem, issues = parse_row(sr)
                if issues or problem is None:
                    out.rejects.append(Reject(sr.file, sr.row, issues, sr.fields))
                else:
                    out.problems.append(problem)
                    out.rows.append(sr)
            yield out


def iter_problems(paths: Iterable[str | Path], batch_size: int = DEFAULT_BATCH_SIZE):
    """Every Problem of the inputs; raises DataError at the first bad row (for library users)."""
    for batch in iter_problem_batches(open_sources(paths), batch_size):
        if batch.rejects:
            rej = batch.rejects[0]
            raise DataError("; ".join(str(i) for i in rej.issues), file=rej.file, row=rej.row)
        yield from batch.problems


def common_schema(sources: list[Source]) -> pa.Schema | None:
    """The Arrow schema to write outputs in: the inputs' own when they all share one."""
    schemas = [s.schema for s in sources]
    if schemas and all(s is not None and s.equals(schemas[0]) for s in schemas):
        return schemas[0]
    return None
