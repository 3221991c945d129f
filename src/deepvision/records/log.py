"""JSONL on disk, decided once: reading lines (every bad line named by file:line), and the
exactly-once `AppendLog` every resumable command writes through.

An `AppendLog` is keyed: opening it cuts a torn last line left by a killed run (read backwards
block by block, never the whole file), then reads the keys already written; `append` adds one
record per key. Writes are buffered and flushed in batches (every `flush_lines` lines or
`flush_seconds` seconds, whichever comes first) and fsynced on close. A kill loses at most the
unflushed lines, whose keys are then simply missing and redone on the next run: no record is
ever written twice, none is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

from deepvision.errors import DataError

__all__ = ["AppendLog", "iter_jsonl", "repair_tail"]

Key = Callable[[dict[str, Any]], Hashable]


def repair_tail(path: Path) -> int:
    """Cut a torn last line (no final newline) left by a killed run; returns bytes removed."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos, block = size, 1 << 16
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            nl = fh.read(pos - start).rfind(b"\n")
            if nl >= 0:
                fh.truncate(start + nl + 1)
                return size - (start + nl + 1)
            pos = start
        fh.truncate(0)
        return size


def iter_jsonl(
    path: str | Path,
    *,
    on_bad: Callable[[DataError], None] | None = None,
    objects_only: bool = True,
) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line. A line that is not JSON (or, with
    `objects_only`, not an object) raises DataError naming file:line, or goes to `on_bad`
    when given (the caller counts it and moves on). A missing file yields nothing."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as fh:
        for no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                err = DataError(f"not JSON ({str(exc)[:80]})", file=str(path), line=no)
            else:
                if not objects_only or isinstance(obj, dict):
                    yield no, obj
                    continue
                err = DataError("not a JSON object", file=str(path), line=no)
            if on_bad is None:
                raise err
            on_bad(err)


def _key_of(key: str | Key) -> Key:
    if callable(key):
        return key
    return lambda rec: rec[key]


class AppendLog:
    """An append-only, keyed JSONL file (see the module docstring).

    `key` is a field name or a function of the record; `keys` holds those already on disk.
    Use as a context manager, or call `close()`."""

    def __init__(
        self,
        path: str | Path,
        key: str | Key = "id",
        *,
        flush_lines: int = 64,
        flush_seconds: float = 1.0,
        read_keys: bool = True,
    ) -> None:
        self.path = Path(path)
        self._key = _key_of(key)
        self.flush_lines = max(1, flush_lines)
        self.flush_seconds = flush_seconds
        self.repaired = repair_tail(self.path)
        self.keys: set[Hashable] = set()
        if read_keys:
            for no, rec in iter_jsonl(self.path):
                try:
                    self.keys.add(self._key(rec))
                except (KeyError, TypeError):
                    raise DataError(
                        "record has no key field", file=str(self.path), line=no
                    ) from None
        self._buf: list[tuple[Hashable, str]] = []
        self._last_flush = time.monotonic()
        self._fd: int | None = None
        self._broken: OSError | None = None  # a failed write: nothing more is written
        self.written = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self.keys

    def read(self) -> Iterator[dict[str, Any]]:
        """The records on disk (flushed ones), in order."""
        for _, rec in iter_jsonl(self.path):
            yield rec

    def append(self, record: dict[str, Any]) -> None:
        """Add one record; a key already present is a bug of the caller (ValueError)."""
        key = self._key(record)
        if key in self.keys:
            raise ValueError(f"{self.path}: key {key!r} written twice")
        self.keys.add(key)
        self._buf.append((key, json.dumps(record, ensure_ascii=False) + "\n"))
        self.written += 1
        if (
            len(self._buf) >= self.flush_lines
            or time.monotonic() - self._last_flush >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines in one call (a kill leaves at most one torn line).

        A write that fails (a full disk) is undone: the file is cut back to where the batch
        began, the batch's keys are forgotten (`in` says what is on disk), and the OSError is
        raised; the log then writes nothing more, so a later flush or `close` can never add a
        line twice or after a torn one."""
        if self._broken is not None:
            raise self._broken
        if self._buf:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            batch, self._buf = self._buf, []
            data = memoryview("".join(line for _, line in batch).encode("utf-8"))
            start = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as exc:
                self._broken = exc
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start)
                self.keys.difference_update(key for key, _ in batch)
                self.written -= len(batch)
                raise
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush, fsync and close (safe to call twice; after a failed write, only closes)."""
        try:
            if self._broken is None:
                self.flush()
        finally:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    if self._broken is None:
                        os.fsync(fd)
                finally:
                    os.close(fd)

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
