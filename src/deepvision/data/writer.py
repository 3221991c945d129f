"""Atomic, streaming writers: Problem parquet, generic Arrow tables, JSONL, files and folders
written by others, and rejects JSONL.

Outputs are written to `<name>.tmp` and renamed into place on success, so a crash never leaves
a half-written file (or folder) that looks complete; re-running the same command redoes the job.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import io
import json
import mmap
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

from deepvision.data.reader import Reject
from deepvision.errors import DeepVisionError, UsageError
from deepvision.records import PROBLEM_SCHEMA, Problem, data_uri, problems_to_batch

# Row groups small enough that a reader holding one in memory stays well under 1 GB.
ROW_GROUP_ROWS = 256


def prepare_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless asked; create the parent folder."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise UsageError(f"{p} exists (set to replace it)", param="overwrite")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def refuse_inputs_as_outputs(
    inputs: Iterable[str | Path], outputs: dict[str, str | Path | None], *, whole: bool = True
) -> None:
    """UsageError naming the parameter (of `outputs`: name -> path) whose path is one of the
    `inputs`, lies inside an input folder, or (`whole`: outputs replaced whole, a file or
    the images folder of a JSONL export) holds an input: writing it would replace, or add
    to, the data being read (`--overwrite` does not change that)."""
    sources = [Path(p).resolve() for p in inputs]
    for param, out in outputs.items():
        if out is None:
            continue
        target = Path(out).resolve()
        for src in sources:
            if target == src:
                raise UsageError(f"{out} is an input of this command", param=param)
            if src in target.parents:
                raise UsageError(f"{out} lies inside the input folder {src}", param=param)
            if whole and target in src.parents:
                raise UsageError(f"{out} holds the input {src}", param=param)


_FULL_DISK = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def full_disk_is_an_error() -> Iterator[None]:
    """A full disk (or quota) met while a job writes is a one-line error, not a traceback:
    the job cannot go on, and `finish` has removed its outputs by the time this sees it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _FULL_DISK:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        raise DeepVisionError(
            f"no space left on the disk{where}: no output was written; free some space (or "
            "choose another output folder) and run the command again"
        ) from None


class _AtomicFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")

    def commit(self) -> None:
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class _AtomicFolder(_AtomicFile):
    """A folder built under `<name>.tmp` (emptied first: a killed run may have left one) and
    moved into place whole; a folder already there (`--overwrite`) is replaced."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.discard()
        self.tmp.mkdir(parents=True)

    def commit(self) -> None:
        old = self.path.with_name(self.path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        self.tmp.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Output(abc.ABC):
    """An output file written under `<name>.tmp` and moved into place only when complete.

    `finalize` writes out what is pending (the file is complete under its temporary name),
    `commit` moves it into place, `abort` removes it and never raises. `close` is the three
    for one output; `finish` does them for all the outputs of a job together."""

    _file: _AtomicFile

    @abc.abstractmethod
    def _closing_steps(self) -> list[Callable[[], object]]:
        """What writes out the pending data and lets go of files and threads, in order."""

    def finalize(self) -> None:
        for step in self._closing_steps():
            step()

    def commit(self) -> None:
        """Move the file into place; when that fails (its name taken by a folder, a
        permission), the temporary file is removed and the error raised."""
        try:
            self._file.commit()
        except BaseException:
            self._file.discard()
            raise

    def close(self) -> None:
        try:
            self.finalize()
        except BaseException:
            self.abort()
            raise
        self.commit()

    def abort(self) -> None:
        for step in self._closing_steps():  # each tried: the file is discarded anyway
            with contextlib.suppress(Exception):
                step()
        self._file.discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class TextOutput(Output):
    """A text file written line by line (JSONL)."""

    def __init__(self, path: Path) -> None:
        self._file = _AtomicFile(path)
        self._fh = self._file.tmp.open("w", encoding="utf-8")

    def _closing_steps(self) -> list[Callable[[], object]]:
        return [self._fh.close]


class JsonlOutput(TextOutput):
    """A JSON lines file, one object a line."""

    def write_line(self, rec: dict[str, Any]) -> None:
        self._fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


class PathOutput(Output):
    """A file (or, with `folder`, a folder) that other code writes at `tmp` (a plot that
    matplotlib saves, images a format writes one by one), moved into place with the job's
    other outputs."""

    def __init__(self, path: Path, *, folder: bool = False) -> None:
        self._file = _AtomicFolder(path) if folder else _AtomicFile(path)

    @property
    def tmp(self) -> Path:
        return self._file.tmp

    def _closing_steps(self) -> list[Callable[[], object]]:
        return []


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


class _DirectFile(io.RawIOBase):
    """A write-only file that bypasses the page cache (O_DIRECT). Data goes through two
    reused, page-aligned buffers: one fills while a thread writes the other to the disk.
    Writing gigabytes through the page cache makes the kernel find fresh pages for all of it,
    which on virtual machines costs more CPU than encoding the data (measured: 2.5 s of
    kernel time per GB there, 0.15 s this way)."""

    BLOCK = 4096  # O_DIRECT wants aligned offsets, lengths and memory

    def __init__(self, path: Path, buffer_bytes: int = 8 << 20) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0)
        self._fd = os.open(path, flags, 0o644)
        try:
            self._bufs = [mmap.mmap(-1, buffer_bytes) for _ in range(2)]
        except BaseException:
            os.close(self._fd)
            raise
        self._views = [memoryview(b) for b in self._bufs]
        self._view = self._views[0]
        self._fill = self._size = 0
        self._disk = ThreadPoolExecutor(1)
        self._pending: Future | None = None

    @classmethod
    def open(cls, path: Path, buffer_bytes: int = 8 << 20) -> _DirectFile | None:
        """The file, or None where direct I/O is not available (tmpfs, macOS, Windows)."""
        if not hasattr(os, "O_DIRECT"):
            return None
        try:
            f = cls(path, buffer_bytes)
        except OSError:
            return None
        try:  # one block written and taken back: fails now if the filesystem refuses
            os.write(f._fd, f._view[: cls.BLOCK])
            os.lseek(f._fd, 0, os.SEEK_SET)
            os.ftruncate(f._fd, 0)
        except OSError:
            f.close()
            return None
        return f

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size

    def write(self, data) -> int:
        src = memoryview(data).cast("B")
        done = 0
        while done < len(src):
            k = min(len(src) - done, len(self._view) - self._fill)
            self._view[self._fill : self._fill + k] = src[done : done + k]
            self._fill += k
            done += k
            if self._fill == len(self._view):
                self._flush()
        self._size += done
        return done

    def _write_all(self, which: int, n: int) -> None:
        # Every slice is released before an error leaves: a traceback holding one would keep
        # the buffer exported, and the buffer could then not be closed.
        pos = 0
        while pos < n:
            with self._views[which][pos:n] as part:
                done = os.write(self._fd, part)
            # A write that made no progress, or one that leaves the next one unaligned.
            if done < n - pos and (done == 0 or done % self.BLOCK):
                raise OSError(errno.ENOSPC, f"short write ({pos + done} of {n} bytes)")
            pos += done

    def _flush(self, final: bool = False) -> None:
        """Hand the filled buffer to the disk thread and go on with the other one; the last
        block is padded to the block size (`close` cuts the file back)."""
        n = self._fill
        if final:
            pad = -n % self.BLOCK
            self._view[n : n + pad] = bytes(pad)
            n += pad
        if self._pending is not None:
            self._pending.result()
        which = 0 if self._view is self._views[0] else 1
        self._pending = self._disk.submit(self._write_all, which, n)
        self._view = self._views[1 - which]
        self._fill = 0

    def close(self) -> None:
        """Write what is buffered and cut the file to its size; the descriptor and buffers
        are let go whatever happens, and a write error is raised after that."""
        if self.closed:
            return
        try:
            self._flush(final=True)
            self._pending.result()
            os.ftruncate(self._fd, self._size)
        finally:
            super().close()  # closed from here on, so a second close (or __del__) does nothing
            self._pending = None
            self._disk.shutdown()
            os.close(self._fd)
            for view in self._views:
                view.release()
            for buf in self._bufs:
                buf.close()


class TableWriter(Output):
    """Append Arrow record batches to a parquet file in bounded row groups.

    Each batch is written in a background thread (Arrow releases the GIL) while the caller
    prepares the next; one write is in flight at most, and its error surfaces at the next call.
    """

    def __init__(self, path: str | Path, schema: pa.Schema, direct: bool = False) -> None:
        self._file = _AtomicFile(Path(path))
        self.schema = schema
        self._direct = _DirectFile.open(self._file.tmp) if direct else None
        where = self._direct if self._direct is not None else str(self._file.tmp)
        try:
            self._writer = pq.ParquetWriter(where, schema, **_encoding_options(schema))
        except BaseException:
            if self._direct is not None:
                self._direct.close()
            self._file.discard()
            raise
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

    def _closing_steps(self) -> list[Callable[[], object]]:
        steps = [self._wait, self._thread.shutdown, self._writer.close]
        return steps if self._direct is None else [*steps, self._direct.close]


class ProblemWriter(TableWriter):
    """Write Problems as DeepVision-layout parquet, in the inputs' own schema when given."""

    def __init__(self, path: str | Path, schema: pa.Schema | None = None) -> None:
        super().__init__(path, schema if schema is not None else PROBLEM_SCHEMA)

    def write(self, problems: list[Problem]) -> None:
        if problems:
            self.write_batch(problems_to_batch(problems, self.schema))


def finish(outputs: list[Output | None], ok: bool) -> None:
    """End a job's outputs together. When the job succeeded, every output is finalized first
    and only then are all moved into place, so a failure in one leaves none of them (a re-run
    of the same command is not refused for an output that already exists); that failure is
    raised. When the job failed, all are removed. None entries (outputs not asked for) are
    passed over."""
    present = [o for o in outputs if o is not None]
    failure: BaseException | None = None
    if ok:
        try:
            for o in present:
                o.finalize()
        except BaseException as exc:
            failure = exc
    if not ok or failure is not None:
        for o in present:
            o.abort()
        if failure is not None:
            raise failure
        return
    for i, o in enumerate(present):
        try:
            o.commit()
        except BaseException:
            for rest in present[i + 1 :]:  # nothing of the job is left under a .tmp name
                rest.abort()
            raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return data_uri(value, "application/octet-stream")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class RejectWriter(JsonlOutput):
    """Rejected rows, one JSON object per line: place, reasons and the raw row (bytes base64).
    A job that fails leaves no rejects file (`abort`), so the same command can be re-run."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path))
        self.count = 0

    def write(self, rejects: list[Reject]) -> None:
        for rej in rejects:
            rec = {
                "file": rej.file,
                "row": rej.row,
                "reasons": [{"column": i.column, "reason": i.reason} for i in rej.issues],
                "data": _jsonable(rej.fields),
            }
            self.write_line(rec)
            self.count += 1
