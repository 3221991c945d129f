"""Streaming readers of Problem sources: DeepVision parquet, parquet shards, `save_to_disk`, JSONL.

Every source yields `RowBatch`es: up to `batch_size` rows as plain dicts, each with its file and
row number (1-based line number for JSONL, 0-based row index for tables) so that errors can
name the place. Tabular sources read one Arrow record batch at a time; nothing is loaded whole.
A row that cannot be used as read (text that is not UTF-8, an image path that leaves the data
folder) carries the reason, and its fields as far as they could be read, for the rejects file.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from deepvision.errors import DataError
from deepvision.records import IMAGES, decode_data_uri, resolve_inside

DEFAULT_BATCH_SIZE = 256
# JSON lines inputs; `.json` files are read as JSON lines when named as an input.
JSONL_SUFFIXES = (".jsonl", ".ndjson")

log = logging.getLogger(__name__)


@dataclass
class SourceRow:
    """One input row: where it is, its fields, and why it cannot be used (`error`, about
    `column` when one column is at fault). A row with an error keeps the fields that could be
    read (None when nothing could), so that the rejects file shows the row as it was."""

    file: str
    row: int
    fields: dict[str, Any] | None
    error: str | None = None
    column: str | None = None


def bytes_type(t: pa.DataType) -> pa.DataType:
    """`t` with every text type replaced by its binary twin. The two have the same memory
    layout, so an array can be viewed as the other without a copy."""
    if pa.types.is_string(t):
        return pa.binary()
    if pa.types.is_large_string(t):
        return pa.large_binary()
    if pa.types.is_string_view(t):
        return pa.binary_view()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        value = t.value_field.with_type(bytes_type(t.value_type))
        if pa.types.is_fixed_size_list(t):
            return pa.list_(value, t.list_size)
        return pa.large_list(value) if pa.types.is_large_list(t) else pa.list_(value)
    if pa.types.is_map(t):
        key = t.key_field.with_type(bytes_type(t.key_type))
        return pa.map_(key, t.item_field.with_type(bytes_type(t.item_type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(bytes_type(f.type)) for f in t])
    return t


def text_faults(rb: pa.RecordBatch) -> dict[int, dict[str, str]]:
    """The rows of `rb` holding text that is not UTF-8: row -> {column: reason}.

    Parquet and Arrow files store text as bytes that nothing checks on the way in; Python
    cannot hold such a value as `str`. Each text column is validated whole (fast, in Arrow);
    only a column that fails is looked at row by row."""
    faults: dict[int, dict[str, str]] = {}
    for name, col in zip(rb.schema.names, rb.columns, strict=True):
        if bytes_type(col.type).equals(col.type):
            continue
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i in range(len(col)):
            try:
                col.slice(i, 1).to_pylist()
            except UnicodeDecodeError as exc:
                faults.setdefault(i, {})[name] = f"text is not valid UTF-8 (byte {exc.start})"
    return faults


def _text_fault_row(one: pa.RecordBatch, faults: dict[str, str], views: bool) -> dict[str, Any]:
    """The fields of a one-row batch whose `faults` columns hold bad text: those columns as
    bytes (kept exactly as stored), the others as usual."""
    arrays = [
        col.view(bytes_type(col.type)) if name in faults else col
        for name, col in zip(one.schema.names, one.columns, strict=True)
    ]
    return arrow_rows(pa.RecordBatch.from_arrays(arrays, names=one.schema.names), views)[0]


class RowBatch:
    """Consecutive rows of one input. Tabular sources keep their Arrow rows (`arrow`) and
    turn them into Python dicts only when `rows` is first used (column-wise work skips it)."""

    def __init__(
        self,
        rows: list[SourceRow] | None = None,
        *,
        arrow: pa.RecordBatch | None = None,
        file: str = "",
        start: int = 0,
        image_views: bool = False,
    ) -> None:
        self._rows = rows if rows is not None or arrow is not None else []
        self.arrow, self.file, self.start, self._views = arrow, file, start, image_views
        self._faults: dict[int, dict[str, str]] | None = None

    @property
    def text_faults(self) -> dict[int, dict[str, str]]:
        """Rows of the Arrow batch holding text that is not UTF-8 (see `text_faults`)."""
        if self._faults is None:
            self._faults = {} if self.arrow is None else text_faults(self.arrow)
        return self._faults

    @property
    def rows(self) -> list[SourceRow]:
        if self._rows is None:
            if self.text_faults:
                self._rows = [self.row(i) for i in range(len(self))]
            else:
                dicts = arrow_rows(self.arrow, self._views)
                self._rows = [SourceRow(self.file, self.start + i, d) for i, d in enumerate(dicts)]
        return self._rows

    def __len__(self) -> int:
        return self.arrow.num_rows if self._rows is None else len(self._rows)

    def row(self, i: int) -> SourceRow:
        """Row `i` alone (without converting the others)."""
        if self._rows is not None:
            return self._rows[i]
        one = self.arrow.slice(i, 1)
        faults = self.text_faults.get(i)
        if not faults:
            return SourceRow(self.file, self.start + i, arrow_rows(one, self._views)[0])
        column, *others = faults
        also = f" (so is text in column(s) {', '.join(others)})" if others else ""
        fields = _text_fault_row(one, faults, self._views)
        return SourceRow(self.file, self.start + i, fields, faults[column] + also, column)


def owned_fields(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row's fields with image views copied into bytes (to keep them past their batch or
    send them to another process)."""
    if fields is None or not isinstance(fields.get(IMAGES), list):
        return fields
    images = [
        {**im, "bytes": bytes(im["bytes"])}
        if isinstance(im, dict) and isinstance(im.get("bytes"), memoryview)
        else im
        for im in fields[IMAGES]
    ]
    return {**fields, IMAGES: images}


def is_image_list(t: pa.DataType) -> bool:
    """Whether an Arrow type is the images column's list<struct<bytes: binary, ...>>."""
    if not (pa.types.is_list(t) and pa.types.is_struct(t.value_type)):
        return False
    names = [f.name for f in t.value_type]
    return "bytes" in names and pa.types.is_binary(t.value_type.field("bytes").type)


def _offsets(arr: pa.Array) -> np.ndarray:
    """The int32 offsets of a list/binary array (read from its buffer: numpy's own conversion
    of Arrow arrays goes through pandas, a 0.3 s import)."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]


def compact_lists(lists: pa.Array) -> pa.Array:
    """`lists` with no items hidden under null entries. Arrow lets a null list still span
    items: `flatten()` drops them while the offsets count them, so positions computed from
    one would not match the other (parquet never writes such arrays; other Arrow data can)."""
    if not lists.null_count:
        return lists
    spans = np.diff(_offsets(lists))
    if not (spans[np.array(lists.is_null().to_pylist(), dtype=bool)] > 0).any():
        return lists
    return lists.take(pa.array(np.arange(len(lists), dtype=np.int32)))  # rebuilt offsets


def _nulls(arr: pa.Array) -> list[bool]:
    return arr.is_null().to_pylist() if arr.null_count else [False] * len(arr)


def binary_views(data: pa.Array) -> list[memoryview | None]:
    """The values of a binary array as zero-copy views of its buffer (None for nulls)."""
    offsets = _offsets(data).tolist()
    whole = memoryview(data.buffers()[2] or b"")
    missing = _nulls(data)
    return [None if missing[i] else whole[offsets[i] : offsets[i + 1]] for i in range(len(data))]


def _image_views(col: pa.ListArray) -> list[list[dict[str, Any] | None] | None]:
    """The images column as Python lists of {bytes, path} whose bytes are zero-copy views of
    the Arrow buffer (no copy of the image data)."""
    col = compact_lists(col)
    items = col.flatten()
    fields = dict(zip([f.name for f in items.type], items.flatten(), strict=True))
    views = binary_views(fields.pop("bytes"))
    item_null = _nulls(items)
    others = {k: v.to_pylist() for k, v in fields.items()}
    flat: list[dict[str, Any] | None] = []
    for i, view in enumerate(views):
        if item_null[i]:
            flat.append(None)
            continue
        im: dict[str, Any] = {"bytes": view}
        for k, v in others.items():
            im[k] = v[i]
        flat.append(im)
    starts = _offsets(col)
    starts = starts - starts[0]
    row_null = _nulls(col)
    return [None if row_null[r] else flat[starts[r] : starts[r + 1]] for r in range(len(col))]


def arrow_rows(rb: pa.RecordBatch, image_views: bool = False) -> list[dict[str, Any]]:
    """A record batch as row dicts; with `image_views`, image bytes are views, not copies."""
    names = rb.schema.names
    if not image_views or IMAGES not in names or not is_image_list(rb.schema.field(IMAGES).type):
        return rb.to_pylist()
    i = names.index(IMAGES)
    rows = rb.remove_column(i).to_pylist()
    for row, images in zip(rows, _image_views(rb.column(i)), strict=True):
        row[IMAGES] = images
    return rows


class Source(abc.ABC):
    """A readable input. `schema` is the Arrow schema for tabular sources, None for JSONL."""

    format: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema: pa.Schema | None = None
        self.num_rows: int | None = None

    @abc.abstractmethod
    def batches(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        columns: list[str] | None = None,
        image_views: bool = False,
    ) -> Iterator[RowBatch]:
        """Yield the rows in order, `batch_size` at a time.

        `columns`: read only these (tabular sources; names the input lacks are ignored).
        `image_views`: image bytes as zero-copy views of the batch (tabular sources); use
        them within the batch, and `owned_fields()` to keep a row beyond it."""

    def parts(self) -> list[Part]:
        """Picklable pieces that other processes can read alone, in order (whole by default)."""
        return [WholeSource(self)]

    @property
    def size_bytes(self) -> int:
        files = [self.path] if self.path.is_file() else list(self.path.rglob("*"))
        return sum(f.stat().st_size for f in files if f.is_file())


def _select(rb: pa.RecordBatch, columns: list[str] | None) -> pa.RecordBatch:
    if columns is None:
        return rb
    return rb.select([c for c in rb.schema.names if c in columns])


def _row_batch(file: str, start: int, rb: pa.RecordBatch, image_views: bool) -> RowBatch:
    return RowBatch(arrow=rb, file=file, start=start, image_views=image_views)


def _arrow_batches(
    file: str,
    batches: Iterator[pa.RecordBatch],
    batch_size: int,
    columns: list[str] | None = None,
    image_views: bool = False,
) -> Iterator[RowBatch]:
    start = 0
    try:
        for rb in batches:
            # Record batches may be larger than asked (IPC files); slice them.
            for off in range(0, rb.num_rows, batch_size):
                part = _select(rb.slice(off, batch_size), columns)
                yield _row_batch(file, start, part, image_views)
                start += part.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"cannot read rows from {start} on (file truncated or corrupt?): {exc}", file=file
        ) from None


class Part(abc.ABC):
    """A piece of a source that a worker process can read on its own."""

    @abc.abstractmethod
    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, **read: Any) -> Iterator[RowBatch]:
        """As `Source.batches` (same `columns` and `image_views` options)."""


@dataclass
class WholeSource(Part):
    source: Source

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, **read: Any) -> Iterator[RowBatch]:
        return self.source.batches(batch_size, **read)


PART_ROWS = 1024  # rows per parquet Part: work for a trip to a worker, row groups read ahead


@dataclass
class ParquetPart(Part):
    """Consecutive row groups of one parquet file; the file is opened where it is read."""

    path: Path
    row_groups: list[int]
    start: int  # row index of the first row

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, **read: Any) -> Iterator[RowBatch]:
        return ParquetSource(self.path).batches(
            batch_size, row_groups=self.row_groups, start=self.start, **read
        )


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
        *,
        columns: list[str] | None = None,
        image_views: bool = False,
        row_groups: list[int] | None = None,
        start: int = 0,
    ) -> Iterator[RowBatch]:
        # One row group at a time (memory is bounded by it, and a corrupt one is named); the
        # next one is read in a thread (Arrow releases the GIL) while this one is used.
        meta = self._pf.metadata
        names = None if columns is None else [c for c in self.schema.names if c in columns]
        groups = list(range(meta.num_row_groups)) if row_groups is None else row_groups

        def read(rg: int) -> pa.Table:
            return self._pf.read_row_group(rg, columns=names, use_threads=False)

        with ThreadPoolExecutor(1) as ahead:
            nxt = ahead.submit(read, groups[0]) if groups else None
            for k, rg in enumerate(groups):
                n = meta.row_group(rg).num_rows
                try:
                    table = nxt.result()
                except (pa.ArrowException, OSError) as exc:
                    raise DataError(
                        f"cannot read row group {rg} (rows {start}-{start + n - 1}); the file "
                        f"is truncated or corrupt: {exc}".strip(),
                        file=str(self.path),
                    ) from None
                nxt = ahead.submit(read, groups[k + 1]) if k + 1 < len(groups) else None
                for rb in table.to_batches(max_chunksize=batch_size):
                    yield _row_batch(str(self.path), start, rb, image_views)
                    start += rb.num_rows


def _names(paths: list[Path], folder: Path, most: int = 5) -> str:
    names = [str(p.relative_to(folder)) for p in paths[:most]]
    return ", ".join(names) + (f" and {len(paths) - most} more" if len(paths) > most else "")


class ParquetShardsSource(Source):
    """A folder of parquet shards (`*.parquet`, in subfolders too), read in name order as one
    dataset. JSONL files beside them would not be read, so such a folder is refused; other
    files (README.md, .gitattributes) are passed over and named in a warning."""

    format = "parquet-shards"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        found = sorted(p for p in path.rglob("*") if p.is_file())
        files = [p for p in found if p.suffix == ".parquet"]
        jsonl = [p for p in found if p.suffix.lower() in JSONL_SUFFIXES]
        if jsonl:
            raise DataError(
                f"folder holds JSONL files ({_names(jsonl, path)}); a folder is read as parquet "
                "shards only: pass JSONL files as inputs of their own",
                file=str(path),
            )
        if not files:
            raise DataError("folder holds no *.parquet files", file=str(path))
        ignored = [p for p in found if p.suffix != ".parquet"]
        if ignored:
            log.warning(
                "%s: ignored %d file(s) that are not parquet shards: %s",
                path,
                len(ignored),
                _names(ignored, path),
            )
        self.shards = [ParquetSource(f) for f in files]
        self.schema = self.shards[0].schema
        for shard in self.shards[1:]:
            if not shard.schema.equals(self.schema):
                raise DataError(
                    f"schema differs from the first shard {files[0].name}", file=str(shard.path)
                )
        self.num_rows = sum(s.num_rows or 0 for s in self.shards)

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, **read: Any) -> Iterator[RowBatch]:
        for shard in self.shards:
            yield from shard.batches(batch_size, **read)

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
            try:
                with pa.OSFile(str(f)) as fh:
                    self.schema = self.schema or pa.ipc.open_stream(fh).schema
            except (pa.ArrowException, OSError) as exc:
                msg = f"not a readable Arrow stream file: {exc}"
                raise DataError(msg, file=str(f)) from None

    def batches(
        self,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        columns: list[str] | None = None,
        image_views: bool = False,
    ) -> Iterator[RowBatch]:
        for f in self.files:
            # OSFile, not memory_map: mapped pages would count towards resident memory.
            with pa.OSFile(str(f)) as fh:
                stream = iter(pa.ipc.open_stream(fh))
                yield from _arrow_batches(str(f), stream, batch_size, columns, image_views)


class JsonlSource(Source):
    """JSON lines, one problem per line; images as paths inside the file's folder (absolute
    ones too with `allow_absolute`), or data URIs."""

    format = "jsonl"

    def __init__(self, path: Path, *, allow_absolute: bool = False) -> None:
        super().__init__(path)
        self.allow_absolute = allow_absolute
        if path.stat().st_size == 0:
            raise DataError("file is empty (0 bytes)", file=str(path))

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE, **read: Any) -> Iterator[RowBatch]:
        # Every field of a line is parsed anyway; `columns` and `image_views` change nothing.
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
        if "\\u" in text and not _is_unicode(obj):
            return SourceRow(file, lineno, None, "line holds a lone surrogate (\\ud800-\\udfff)")
        base = self.path.parent
        try:
            return SourceRow(
                file, lineno, jsonl_to_row(obj, base, allow_absolute=self.allow_absolute)
            )
        except DataError as exc:  # an image that cannot be used (nothing outside was read)
            return SourceRow(file, lineno, obj, exc.reason, IMAGES)
        except ValueError as exc:
            return SourceRow(file, lineno, obj, str(exc))


def _is_unicode(obj: Any) -> bool:
    """Whether every string of a parsed JSON value is Unicode text (JSON escapes can spell
    lone UTF-16 surrogates, which no UTF-8 output can hold)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_image_ref(ref: str, base: Path, *, allow_absolute: bool = False) -> dict[str, Any]:
    """An image given in JSON: a data URI, or a path inside `base` (the JSONL's folder; an
    absolute path only with `allow_absolute`). DataError says why one cannot be used; a path
    that leaves `base` is never read."""
    if not isinstance(ref, str):
        raise DataError(f"an image must be a path or a data URI, not a {type(ref).__name__}")
    if ref.startswith("data:"):
        data, _ = decode_data_uri(ref)
        return {"bytes": data, "path": None}
    full = resolve_inside(ref, base, allow_absolute=allow_absolute)
    try:
        return {"bytes": full.read_bytes(), "path": ref}
    except OSError as exc:
        raise DataError(f"image file {ref!r} cannot be read: {exc.strerror}") from None


def jsonl_to_row(
    obj: dict[str, Any], base: Path, *, allow_absolute: bool = False
) -> dict[str, Any]:
    """Map our JSONL problem form onto DeepVision-layout columns; image paths resolve inside
    `base` (see `load_image_ref`). ValueError or DataError: the object cannot be a row."""
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
        load_image_ref(i, base, allow_absolute=allow_absolute) for i in imgs or [] if i is not None
    ]
    answer = next((rest.pop(k) for k in ("answer", "ground_truth", "gdt") if k in rest), None)
    if isinstance(answer, dict | list):
        raise ValueError(
            f"field 'answer' must be a string or a number, not a {type(answer).__name__}"
        )
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
    if topic is not None and not isinstance(topic, list):
        raise ValueError("field 'topic' must be a list of names or a path 'A/B/C'")
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


def open_source(path: str | Path, *, allow_absolute: bool = False) -> Source:
    """Open any supported input, detected from what is on disk. `allow_absolute`: JSONL image
    paths may be absolute (relative ones stay inside the file's folder either way)."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", file=str(p))
    if p.is_dir():
        if (p / "state.json").exists():
            return HFDiskSource(p)
        return ParquetShardsSource(p)
    suffix = p.suffix.lower()
    if suffix in (*JSONL_SUFFIXES, ".json"):
        return JsonlSource(p, allow_absolute=allow_absolute)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(p)
    with p.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return ParquetSource(p)
    if head[:1] in (b"{", b"\n", b" "):
        return JsonlSource(p, allow_absolute=allow_absolute)
    raise DataError(
        "unknown format: expected .parquet, .jsonl, a save_to_disk folder or a parquet folder",
        file=str(p),
    )
