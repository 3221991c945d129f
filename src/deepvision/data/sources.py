"""Streaming readers of Problem sources: DeepVision parquet, parquet shards, `save_to_disk`, JSONL.

Every source yields `RowBatch`es: up to `batch_size` rows as plain dicts, each with its file and
row number (1-based line number for JSONL, 0-based row index for tables) so that errors can
name the place. Tabular sources read one Arrow record batch at a time; nothing is loaded whole.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from deepvision.errors import DataError

DEFAULT_BATCH_SIZE = 256


@dataclass
class SourceRow:
    """One input row: where it is, its fields, or why it could not be read at all."""

    file: str
    row: int
    fields: dict[str, Any] | None
    error: str | None = None


@dataclass
class RowBatch:
    rows: list[SourceRow] = field(default_factory=list)


class Source(abc.ABC):
    """A readable input. `schema` is the Arrow schema for tabular sources, None for JSONL."""

    format: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema: pa.Schema | None = None
        self.num_rows: int | None = None

    @abc.abstractmethod
    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        """Yield the rows in order, `batch_size` at a time."""

    def parts(self) -> list[Part]:
        """Picklable pieces that other processes can read alone, in order (whole by default)."""
        return [WholeSource(self)]

    @property
    def size_bytes(self) -> int:
        files = [self.path] if self.path.is_file() else list(self.path.rglob("*"))
        return sum(f.stat().st_size for f in files if f.is_file())


def _arrow_batches(
    file: str, batches: Iterator[pa.RecordBatch], batch_size: int
) -> Iterator[RowBatch]:
    start = 0
    try:
        for rb in batches:
            # Record batches may be larger than asked (IPC files); slice them.
            for off in range(0, rb.num_rows, batch_size):
                part = rb.slice(off, batch_size)
                rows = part.to_pylist()
                yield RowBatch([SourceRow(file, start + i, fields=r) for i, r in enumerate(rows)])
                start += part.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"cannot read rows from {start} on (file truncated or corrupt?): {exc}", file=file
        ) from None


class Part(abc.ABC):
    """A piece of a source that a worker process can read on its own."""

    @abc.abstractmethod
    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]: ...


@dataclass
class WholeSource(Part):
    source: Source

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        return self.source.batches(batch_size)


PART_ROWS = 256  # rows per parquet Part: enough work to amortize a trip to a worker


@dataclass
class ParquetPart(Part):
    """Consecutive row groups of one parquet file; the file is opened where it is read."""

    path: Path
    row_groups: list[int]
    start: int  # row index of the first row

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        return ParquetSource(self.path).batches(batch_size, self.row_groups, self.start)


class ParquetSource(Source):
    """One parquet file (the DeepVision-103K layout, or any Problem parquet)."""

    format = "parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if path.stat().st_size == 0:
            raise DataError("file is empty (0 bytes)", file=str(path))
        try:
            self._pf = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            msg = f"not a readable parquet file (truncated?): {exc}"
            raise DataError(msg, file=str(path)) from None
        self.schema = self._pf.schema_arrow
        self.num_rows = self._pf.metadata.num_rows

    def parts(self) -> list[Part]:
        meta = self._pf.metadata
        parts: list[Part] = []
        groups: list[int] = []
        start = rows = 0
        for rg in range(meta.num_row_groups):
            groups.append(rg)
            rows += meta.row_group(rg).num_rows
            if rows - start >= PART_ROWS or rg == meta.num_row_groups - 1:
                parts.append(ParquetPart(self.path, groups, start))
                groups, start = [], rows
        return parts

    def batches(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        row_groups: list[int] | None = None,
        start: int = 0,
    ) -> Iterator[RowBatch]:
        # One row group at a time: memory is bounded by it, and a corrupt one is named.
        meta = self._pf.metadata
        for rg in range(meta.num_row_groups) if row_groups is None else row_groups:
            n = meta.row_group(rg).num_rows
            try:
                parts = list(self._pf.iter_batches(batch_size=batch_size, row_groups=[rg]))
            except (pa.ArrowException, OSError) as exc:
                raise DataError(
                    f"cannot read row group {rg} (rows {start}-{start + n - 1}); the file is "
                    f"truncated or corrupt: {exc}".strip(),
                    file=str(self.path),
                ) from None
            for rb in parts:
                rows = rb.to_pylist()
                yield RowBatch(
                    [SourceRow(str(self.path), start + i, fields=x) for i, x in enumerate(rows)]
                )
                start += rb.num_rows


class ParquetShardsSource(Source):
    """A folder of parquet shards, read in name order as one dataset."""

    format = "parquet-shards"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if not files:
            raise DataError("folder holds no *.parquet files", file=str(path))
        self.shards = [ParquetSource(f) for f in files]
        self.schema = self.shards[0].schema
        for shard in self.shards[1:]:
            if not shard.schema.equals(self.schema):
                raise DataError(
                    f"schema differs from the first shard {files[0].name}", file=str(shard.path)
                )
        self.num_rows = sum(s.num_rows or 0 for s in self.shards)

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        for shard in self.shards:
            yield from shard.batches(batch_size)

    def parts(self) -> list[Part]:
        return [part for shard in self.shards for part in shard.parts()]


class HFDiskSource(Source):
    """A directory written by `datasets.Dataset.save_to_disk` (Arrow IPC stream files)."""

    format = "hf-disk"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        state = path / "state.json"
        try:
            names = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"unreadable state.json of a save_to_disk folder: {exc}", file=str(path)
            ) from None
        self.files = [path / n for n in names]
        for f in self.files:
            with pa.OSFile(str(f)) as fh:
                try:
                    reader = pa.ipc.open_stream(fh)
                except (pa.ArrowException, OSError) as exc:
                    raise DataError(f"not an Arrow stream file: {exc}", file=str(f)) from None
                self.schema = self.schema or reader.schema

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        for f in self.files:
            # OSFile, not memory_map: mapped pages would count towards resident memory.
            with pa.OSFile(str(f)) as fh:
                yield from _arrow_batches(str(f), iter(pa.ipc.open_stream(fh)), batch_size)


class JsonlSource(Source):
    """JSON lines, one problem per line; images as paths relative to the file, or data URIs."""

    format = "jsonl"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if path.stat().st_size == 0:
            raise DataError("file is empty (0 bytes)", file=str(path))

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[RowBatch]:
        batch = RowBatch()
        with self.path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                batch.rows.append(self._parse_line(lineno, raw))
                if len(batch.rows) >= batch_size:
                    yield batch
                    batch = RowBatch()
        if batch.rows:
            yield batch

    def _parse_line(self, lineno: int, raw: bytes) -> SourceRow:
        file = str(self.path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return SourceRow(file, lineno, None, f"line is not UTF-8 (byte {exc.start})")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return SourceRow(file, lineno, None, f"line is not JSON ({exc.msg}, col {exc.colno})")
        if not isinstance(obj, dict):
            return SourceRow(file, lineno, None, "line is JSON but not an object")
        try:
            return SourceRow(file, lineno, jsonl_to_row(obj, self.path.parent))
        except ValueError as exc:
            return SourceRow(file, lineno, None, str(exc))


def load_image_ref(ref: str, base: Path) -> dict[str, Any]:
    """An image given in JSON: a data URI, or a path relative to `base` (the JSONL's folder)."""
    if ref.startswith("data:"):
        header, _, payload = ref.partition(",")
        if ";base64" not in header:
            raise ValueError("image data URI is not base64-encoded")
        try:
            return {"bytes": base64.b64decode(payload, validate=True), "path": None}
        except binascii.Error as exc:
            raise ValueError(f"image data URI has bad base64: {exc}") from None
    path = Path(ref)
    full = path if path.is_absolute() else base / path
    try:
        return {"bytes": full.read_bytes(), "path": ref}
    except OSError as exc:
        raise ValueError(f"image file {ref!r} cannot be read: {exc.strerror}") from None


def jsonl_to_row(obj: dict[str, Any], base: Path) -> dict[str, Any]:
    """Map our JSONL problem form onto DeepVision-layout columns."""
    from deepvision import records as r

    row: dict[str, Any] = {}
    rest = dict(obj)
    question = rest.pop("question", None)
    if question is None:
        question = rest.pop("problem", None)
    row[r.QUESTION] = question
    imgs = rest.pop("images", None)
    if imgs is None and "image" in rest:
        imgs = [rest.pop("image")]
    if isinstance(imgs, str):
        imgs = [imgs]
    if imgs is not None and not isinstance(imgs, list):
        raise ValueError("field 'images' must be a list of paths or data URIs")
    row[r.IMAGES] = [
        load_image_ref(i, base) if isinstance(i, str) else i for i in (imgs or []) if i is not None
    ]
    answer = next((rest.pop(k) for k in ("answer", "ground_truth", "gdt") if k in rest), None)
    if answer is not None and not isinstance(answer, str):
        answer = str(answer)
    equivalents = rest.pop("equivalent_answers", None) or []
    row[r.REWARD_MODEL] = (
        None
        if answer is None
        else {"ground_truth": answer, "equivalent_answers": equivalents, "style": "rule"}
    )
    if "pass_rate" in rest:
        row[r.PASS_RATE] = rest.pop("pass_rate")
    topic = rest.pop("topic", None)
    knowledge = rest.pop("knowledge_points", None)
    if isinstance(topic, str):
        topic = [t.strip() for t in topic.split("/") if t.strip()]
    if topic or knowledge:
        anno = {"Knowledge": knowledge or []}
        anno.update({f"Level_{i}": t for i, t in enumerate(topic or [], start=1)})
        row[r.DOMAIN_ANNO] = json.dumps(anno, ensure_ascii=False)
    if "visual_elements" in rest:
        row[r.VISION_ANNO] = json.dumps(
            {"visual_elements": rest.pop("visual_elements")}, ensure_ascii=False
        )
    if "image_necessity" in rest:
        row[r.NECESSITY_ANNO] = json.dumps(
            {"image_necessity": rest.pop("image_necessity")}, ensure_ascii=False
        )
    if "messages" in rest:
        row[r.PROMPT] = rest.pop("messages")
    for key in (r.ID, r.OPTIONS, r.DATA_SOURCE, r.ABILITY):
        if key in rest:
            row[key] = rest.pop(key)
    row.update(rest)
    return row


def open_source(path: str | Path) -> Source:
    """Open any supported input, detected from what is on disk."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", file=str(p))
    if p.is_dir():
        if (p / "state.json").exists():
            return HFDiskSource(p)
        return ParquetShardsSource(p)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return JsonlSource(p)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(p)
    with p.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return ParquetSource(p)
    if head[:1] in (b"{", b"\n", b" "):
        return JsonlSource(p)
    raise DataError(
        "unknown format: expected .parquet, .jsonl, a save_to_disk folder or a parquet folder",
        file=str(p),
    )
