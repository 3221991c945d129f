"""Atomic, streaming writers: Problem parquet, generic Arrow tables, and rejects JSONL.

Outputs are written to `<name>.tmp` and renamed into place on success, so a crash never leaves
a half-written file that looks complete; re-running the same command redoes the job.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepvision.data.reader import Reject
from deepvision.errors import UsageError
from deepvision.records import PROBLEM_SCHEMA, Problem, problems_to_batch

# Row groups small enough that a reader holding one in memory stays well under 1 GB.
ROW_GROUP_ROWS = 256


def prepare_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless asked; create the parent folder."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise UsageError(f"{p} exists; pass --overwrite to replace it")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


class _AtomicFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _leaves(t: pa.DataType, path: str) -> list[tuple[str, pa.DataType]]:
    """Parquet leaf column paths of an Arrow field (how per-column options name them)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _leaves(t.value_type, f"{path}.list.element")
    if pa.types.is_struct(t):
        return [leaf for f in t for leaf in _leaves(f.type, f"{path}.{f.name}")]
    if pa.types.is_map(t):
        return []  # not named here: written uncompressed (no map columns in our layouts)
    return [(path, t)]


def _encoding_options(schema: pa.Schema) -> dict[str, Any]:
    """zstd, dictionary encoding and min/max statistics for every column but binary ones:
    image bytes are compressed already and never repeat or get filtered on, so each of these
    would only spend time on them (together about half of the write time)."""
    codecs, plain = {}, []
    for f in schema:
        for path, t in _leaves(f.type, f.name):
            binary = pa.types.is_binary(t) or pa.types.is_large_binary(t)
            codecs[path] = "none" if binary else "zstd"
            if not binary:
                plain.append(path)
    return {"compression": codecs, "use_dictionary": plain, "write_statistics": plain}


class TableWriter:
    """Append Arrow record batches to a parquet file in bounded row groups.

    Each batch is written in a background thread (Arrow releases the GIL) while the caller
    prepares the next; one write is in flight at most, and its error surfaces at the next call.
    """

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self._file = _AtomicFile(Path(path))
        self.schema = schema
        self._writer = pq.ParquetWriter(str(self._file.tmp), schema, **_encoding_options(schema))
        self._thread = ThreadPoolExecutor(1)
        self._pending: Future | None = None
        self.rows = 0

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._wait()
            table = pa.Table.from_batches([batch])
            self._pending = self._thread.submit(
                self._writer.write_table, table, row_group_size=ROW_GROUP_ROWS
            )
            self.rows += batch.num_rows

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self.write_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        try:
            self._wait()
        except BaseException:
            self.abort()
            raise
        self._thread.shutdown()
        self._writer.close()
        self._file.commit()

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the file is discarded anyway
            self._wait()
        self._thread.shutdown()
        self._writer.close()
        self._file.discard()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ProblemWriter(TableWriter):
    """Write Problems as DeepVision-layout parquet, in the inputs' own schema when given."""

    def __init__(self, path: str | Path, schema: pa.Schema | None = None) -> None:
        super().__init__(path, schema if schema is not None else PROBLEM_SCHEMA)

    def write(self, problems: list[Problem]) -> None:
        if problems:
            self.write_batch(problems_to_batch(problems, self.schema))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "data:application/octet-stream;base64," + base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class RejectWriter:
    """Rejected rows, one JSON object per line: place, reasons and the raw row (bytes base64)."""

    def __init__(self, path: str | Path) -> None:
        self._file = _AtomicFile(Path(path))
        self._fh = self._file.tmp.open("w", encoding="utf-8")
        self.count = 0

    def write(self, rejects: list[Reject]) -> None:
        for rej in rejects:
            rec = {
                "file": rej.file,
                "row": rej.row,
                "reasons": [{"column": i.column, "reason": i.reason} for i in rej.issues],
                "data": _jsonable(rej.fields),
            }
            self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.count += 1

    def close(self) -> None:
        self._fh.close()
        self._file.commit()
