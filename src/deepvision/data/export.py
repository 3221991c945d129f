"""`data export`: Problems to the trainers' formats (verl, TRL, EasyR1) and inference JSONL.

Each format is an `ExportFormat` (its name, file suffix, the input columns it reads, how it
writes a batch), listed once in `FORMATS`; `export` and the CLI take them from there. Every
image is checked before its row reaches a format, whatever the format: by default its header
and end (`images.inspect_header`, inline), with `full_images` as `data validate` checks it (in
worker processes ahead of the export). A row with an image that fails is rejected.

Each row is trained with its stored prompt (the DeepVision `prompt` column, as the release
trains on it); our system prompt is for rows without one, or for every row when the user
chose one. A row that can never be rewarded or loaded is rejected too, in every format: an
empty ground truth, an id already exported (the second and later of a duplicate)."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from deepvision.data import columns
from deepvision.data.images import ImageBytes, header_issues, image_issues
from deepvision.data.prompts import (
    DEFAULT_SYSTEM_PROMPT,
    build_messages,
    compose_user_text,
    training_system_prompt,
    user_text,
)
from deepvision.data.reader import (
    ProblemBatch,
    Reject,
    map_batches,
    open_sources,
    parse_batch,
    reject,
)
from deepvision.data.sources import (
    DEFAULT_BATCH_SIZE,
    RowBatch,
    Source,
    SourceRow,
    binary_views,
    compact_lists,
    is_image_list,
)
from deepvision.data.writer import (
    JsonlOutput,
    Output,
    PathOutput,
    RejectWriter,
    TableWriter,
    finish,
)
from deepvision.errors import UsageError
from deepvision.progress import progress_bar
from deepvision.records import (
    ABILITY,
    DATA_SOURCE,
    DOMAIN_ANNO,
    EMPTY_SENTINEL,
    ID,
    IMAGE_PLACEHOLDER,
    IMAGE_TYPE,
    IMAGES,
    MESSAGES_TYPE,
    OPTIONS,
    PROMPT,
    QUESTION,
    REQUIRED_COLUMNS,
    REWARD_MODEL,
    REWARD_MODEL_TYPE,
    Problem,
    RowIssue,
    content_hash_of,
    data_uri,
    decode_column,
    sniff_mime,
)

_STR_LIST = pa.list_(pa.string())
VERL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", MESSAGES_TYPE),
        ("images", pa.list_(pa.struct([("bytes", pa.binary())]))),
        ("ability", pa.string()),
        ("reward_model", REWARD_MODEL_TYPE),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("id", pa.string()),
                    ("question", pa.string()),
                    ("answer", pa.string()),
                    ("equivalent_answers", _STR_LIST),
                    ("options", _STR_LIST),
                    ("topic", _STR_LIST),
                ]
            ),
        ),
    ]
)
TRL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", MESSAGES_TYPE),
        ("images", IMAGE_TYPE),
        ("answer", pa.string()),
        ("equivalent_answers", _STR_LIST),
        ("options", _STR_LIST),
        ("data_source", pa.string()),
    ]
)
# EasyR1 hands the `answer` column (its `data.answer_key`) to the reward as `ground_truth`,
# whole: the equivalents and options travel inside it (`verify.rewards.easyr1_compute_score`).
EASYR1_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("problem", pa.string()),
        (
            "answer",
            pa.struct(
                [
                    ("ground_truth", pa.string()),
                    ("equivalent_answers", _STR_LIST),
                    ("options", _STR_LIST),
                ]
            ),
        ),
        ("images", IMAGE_TYPE),
    ]
)


def _hf_feature(t: pa.DataType, images: bool = False) -> Any:
    """The `datasets` feature spec of an Arrow type; image lists become Image features."""
    if images:
        return [{"_type": "Image"}]
    if pa.types.is_list(t):
        return [_hf_feature(t.value_type)]
    if pa.types.is_struct(t):
        return {f.name: _hf_feature(f.type) for f in t}
    dtype = {"string": "string", "int64": "int64", "binary": "binary"}[str(t)]
    return {"dtype": dtype, "_type": "Value"}


def with_hf_features(schema: pa.Schema) -> pa.Schema:
    """Attach `datasets` metadata so that `load_dataset('parquet')` decodes images to PIL."""
    features = {f.name: _hf_feature(f.type, images=f.name == "images") for f in schema}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    return schema.with_metadata(meta)


@dataclass
class ExportOptions:
    """How rows are written. `system_prompt` is ours by default, or the one the user chose
    (None: no system message); `system_prompt_chosen` says whether the user chose it (then it
    replaces every row's stored prompt). Left None, it is read from the text: chosen unless
    it is ours, for callers that do not say."""

    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    inline_images: bool = False  # jsonl: data URIs instead of an images folder
    system_prompt_chosen: bool | None = None

    def system_for(self, stored: list[dict[str, str]] | None) -> str | None:
        """The system prompt of a row whose stored prompt is `stored` (None: it has none)."""
        chosen = self.system_prompt_chosen
        if chosen is None:
            chosen = self.system_prompt != DEFAULT_SYSTEM_PROMPT
        return training_system_prompt(stored, self.system_prompt, chosen)


class Admission:
    """Whether a row can be written at all, whatever the format: a ground truth to reward
    against, and an id not yet written by this export (a trainer keys rows by id; a second
    copy would be trained on twice and its rewards mixed). Remembers where each id was
    written, to name it in the reject."""

    def __init__(self) -> None:
        self._written: dict[str, str] = {}

    def issues(self, id_: str, answer: str) -> list[RowIssue]:
        """What keeps a row with this id and ground truth out (empty: nothing)."""
        out = []
        if not answer.strip():
            out.append(RowIssue(REWARD_MODEL, "ground_truth is empty: no answer to reward"))
        if id_ in self._written:
            out.append(
                RowIssue(ID, f"duplicate id {id_!r}: already written from {self._written[id_]}")
            )
        return out

    def all_clear(self, ids: list[str], answers: list[str | None]) -> bool:
        """Whether a whole batch passes (`issues` of each row, the batch's own ids included)."""
        fresh = len(set(ids)) == len(ids) and self._written.keys().isdisjoint(ids)
        return fresh and all(a and a.strip() for a in answers)

    def admit(self, id_: str, file: str, row: int) -> None:
        """Record that the row with `id_` at `file` row `row` is written."""
        self._written[id_] = f"{file} row {row}"


@dataclass
class ExportReport:
    rows_in: int = 0
    written: int = 0
    rejected: int = 0
    reject_examples: list[str] = field(default_factory=list)
    images_dir: Path | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.written + self.rejected


def _verl_row(p: Problem, index: int, opts: ExportOptions) -> dict[str, Any]:
    return {
        "data_source": p.data_source or "deepvision",
        "prompt": build_messages(p, opts.system_for(p.messages)),
        "images": [{"bytes": im.bytes} for im in p.images],
        "ability": p.ability or "math",
        "reward_model": {
            "ground_truth": p.answer,
            "equivalent_answers": p.equivalent_answers,
            "style": "rule",
        },
        "extra_info": {
            "index": index,
            "id": p.id,
            "question": p.question,
            "answer": p.answer,
            "equivalent_answers": p.equivalent_answers,
            "options": p.options,
            "topic": p.topic,
        },
    }


def _trl_row(p: Problem, index: int, opts: ExportOptions) -> dict[str, Any]:
    messages = build_messages(p, opts.system_for(p.messages))
    # TRL inserts the images into the user turn itself; a literal placeholder would stay text.
    for m in messages:
        m["content"] = m["content"].replace(IMAGE_PLACEHOLDER, "").strip()
    return {
        "id": p.id,
        "prompt": messages,
        "images": [{"bytes": im.bytes, "path": None} for im in p.images],
        "answer": p.answer,
        "equivalent_answers": p.equivalent_answers,
        "options": p.options,
        "data_source": p.data_source,
    }


def _easyr1_row(p: Problem, index: int, opts: ExportOptions) -> dict[str, Any]:
    # EasyR1 builds a user turn only (its `data.format_prompt` template adds instructions).
    return {
        "id": p.id,
        "problem": user_text(p),
        "answer": {
            "ground_truth": p.answer,
            "equivalent_answers": p.equivalent_answers,
            "options": p.options,
        },
        "images": [{"bytes": im.bytes, "path": None} for im in p.images],
    }


@dataclass
class _Encoded:
    """One batch encoded: the table rows (index counted from 0) and the rejects."""

    batch: pa.RecordBatch | None
    rejects: list[Reject]
    rows_in: int


@dataclass
class Written:
    """What one batch of input rows became: rows written, rows rejected (with reasons)."""

    rows_in: int
    written: int
    rejects: list[Reject]


# The input columns the table formats use (JSONL export carries every annotation).
_TABLE_COLUMNS = [
    QUESTION,
    IMAGES,
    REWARD_MODEL,
    PROMPT,
    DOMAIN_ANNO,
    DATA_SOURCE,
    ABILITY,
    ID,
    OPTIONS,
]


def _arrow_images(batch: ProblemBatch, keep: list[int], target: pa.DataType) -> pa.Array | None:
    """The images of rows `keep` of the batch, taken column-wise from its Arrow rows (the
    bytes never become Python objects), in the `target` list<struct<bytes[, path]>> type.
    None when the input has no such column (then rows carry their images)."""
    if batch.arrow is None or IMAGES not in batch.arrow.schema.names:
        return None
    col = batch.arrow.column(IMAGES)
    if not is_image_list(col.type):
        return None
    col = compact_lists(col)
    if keep != list(range(len(col))):  # else every row is kept: no copy of the bytes
        col = col.take(pa.array(keep, pa.int32()))
    data = dict(zip([f.name for f in col.type.value_type], col.flatten().flatten(), strict=True))
    children = [
        data["bytes"] if f.name == "bytes" else pa.nulls(len(data["bytes"]), f.type)
        for f in target.value_type
    ]
    items = pa.StructArray.from_arrays(children, fields=list(target.value_type))
    # `offsets` has no nulls: a null images list reads as no images, as in the Problem.
    offsets = col.offsets
    offsets = pc.subtract(offsets, offsets[0]) if offsets[0].as_py() else offsets
    return pa.ListArray.from_arrays(offsets, items, type=target)


def _user_prompts(stored: list[list[dict] | None], questions: list[str]) -> list[str]:
    """Each row's user text as `Problem.user_prompt` gives it: the last user message of the
    stored prompt, else the question."""
    out = []
    for question, messages in zip(questions, stored, strict=True):
        user = next((m for m in reversed(messages or []) if m["role"] == "user"), None)
        out.append(question if user is None else user["content"] or "")
    return out


def _verl_columns(rb: RowBatch, opts: ExportOptions, admission: Admission) -> _Encoded | None:
    """The verl table of a batch built column by column from its Arrow rows, the same as
    `_verl_row` of each Problem gives; None when a row needs the Problem path (see
    `columns`), its prompt does not fit its images, or `admission` would keep it out (the
    Problem path rejects it)."""
    if not columns.column_wise(rb):
        return None
    n = rb.arrow.num_rows
    col = {name: rb.arrow.column(name) for name in rb.arrow.schema.names}
    unusual = columns.unusual_rows(col)
    domains = [None] * n
    if DOMAIN_ANNO in col:
        domains = columns.decoded(col[DOMAIN_ANNO], partial(decode_column, DOMAIN_ANNO), unusual)
    if unusual.any():
        return None
    questions = col[QUESTION].to_pylist()
    options = col[OPTIONS].to_pylist() if OPTIONS in col else [None] * n
    n_images = columns.item_rows(col[IMAGES])[0]
    stored = col[PROMPT].to_pylist() if PROMPT in col else [None] * n
    users = []
    try:
        texts = _user_prompts(stored, questions)
        for text, k, opt in zip(texts, n_images.tolist(), options, strict=True):
            users.append(compose_user_text(text, k, opt))
    except ValueError:
        return None
    systems = [opts.system_for(messages) for messages in stored]
    prompts = [
        [*([{"role": "system", "content": s}] if s else []), {"role": "user", "content": u}]
        for s, u in zip(systems, users, strict=True)
    ]

    ids = col[ID].to_pylist() if ID in col else [None] * n
    if not all(ids):
        views = binary_views(columns.field(columns.items(col[IMAGES]), "bytes"))
        ends = n_images.cumsum().tolist()
        for i, end in enumerate(ends):
            if not ids[i]:
                ids[i] = content_hash_of(questions[i], views[end - n_images[i] : end])
    equivalents = [
        [a for a in (eq or []) if a != EMPTY_SENTINEL]
        for eq in columns.field(col[REWARD_MODEL], "equivalent_answers").to_pylist()
    ]
    answers = columns.field(col[REWARD_MODEL], "ground_truth")
    if not admission.all_clear(ids, answers.to_pylist()):
        return None
    str_list = pa.list_(pa.string())
    equivalents_arr = pa.array(equivalents, str_list)

    def filled(name: str, default: str) -> pa.Array:
        if name not in col:
            return pa.array([default] * n, pa.string())
        c = col[name]
        return pc.if_else(pc.or_kleene(pc.is_null(c), pc.equal(c, "")), default, c)

    extra_type = VERL_SCHEMA.field("extra_info").type
    extra = pa.StructArray.from_arrays(
        [
            pa.array(range(n), pa.int64()),
            pa.array(ids, pa.string()),
            col[QUESTION],
            answers,
            equivalents_arr,
            pa.array(options, str_list),
            pa.array([(d or {}).get("topic", []) for d in domains], str_list),
        ],
        fields=list(extra_type),
    )
    reward = pa.StructArray.from_arrays(
        [answers, equivalents_arr, pa.array(["rule"] * n, pa.string())],
        fields=list(VERL_SCHEMA.field("reward_model").type),
    )
    batch = ProblemBatch(source=None, arrow=rb.arrow, positions=list(range(n)))
    images = _arrow_images(batch, list(range(n)), VERL_SCHEMA.field("images").type)
    if images is None:
        return None
    arrays = {
        "data_source": filled(DATA_SOURCE, "deepvision"),
        "prompt": pa.array(prompts, VERL_SCHEMA.field("prompt").type),
        "images": images,
        "ability": filled(ABILITY, "math"),
        "reward_model": reward,
        "extra_info": extra,
    }
    out = pa.RecordBatch.from_arrays([arrays[f.name] for f in VERL_SCHEMA], schema=VERL_SCHEMA)
    for i, id_ in enumerate(ids):
        admission.admit(id_, rb.file, rb.start + i)
    return _Encoded(out, [], n)


def _shift_index(batch: pa.RecordBatch, offset: int) -> pa.RecordBatch:
    """Add `offset` to extra_info.index (rows are numbered in the output, not per batch)."""
    if offset == 0 or "extra_info" not in batch.schema.names:
        return batch
    col = batch.column("extra_info")
    i = col.type.get_field_index("index")
    fields = [col.field(k) for k in range(col.type.num_fields)]
    fields[i] = pc.add(fields[i], pa.scalar(offset, fields[i].type))
    col = pa.StructArray.from_arrays(fields, fields=list(col.type), mask=col.is_null())
    return batch.set_column(batch.schema.get_field_index("extra_info"), "extra_info", col)


class ExportFormat(ABC):
    """One output format of `data export`: its name, the suffix of its file, the input
    columns it reads (None: all of them), and how it writes a batch of input rows.

    An instance is one export under way: it owns its atomic outputs (`outputs`), which
    `export` finishes together with the rejects file."""

    name: ClassVar[str]
    suffix: ClassVar[str]
    columns: ClassVar[tuple[str, ...] | None] = None
    # Image bytes as zero-copy views of the Arrow batch (only while the batch is in use).
    image_views: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, out: Path, opts: ExportOptions) -> None:
        self.out, self.opts = out, opts
        self.admission = Admission()

    @property
    def images_dir(self) -> Path | None:
        """A folder of image files written beside the output, if the format has one."""
        return None

    @classmethod
    def side_paths(cls, out: Path, opts: ExportOptions) -> list[Path]:
        """The paths written beside `out` (checked like `out` before the export starts)."""
        return []

    @abstractmethod
    def outputs(self) -> list[Output]:
        """The files this export writes (they appear together, or not at all)."""

    @abstractmethod
    def write(self, rb: RowBatch, first_index: int) -> Written:
        """Encode and write one batch of input rows; `first_index` numbers its first output
        row. Rows that cannot be encoded are rejected with their reasons."""


class TableFormat(ExportFormat):
    """A trainer's parquet table: one row per problem in `schema`, built by `row`."""

    suffix = ".parquet"
    columns = tuple(_TABLE_COLUMNS)
    image_views = True
    schema: ClassVar[pa.Schema]

    def __init__(self, out: Path, opts: ExportOptions) -> None:
        super().__init__(out, opts)
        self.table = TableWriter(out, self.schema, direct=True)

    def outputs(self) -> list[Output]:
        return [self.table]

    @abstractmethod
    def row(self, p: Problem, index: int) -> dict[str, Any]:
        """The table row of a Problem (ValueError: it cannot be one, e.g. placeholders)."""

    def encode(self, rb: RowBatch) -> _Encoded:
        """A batch of input rows as table rows (index counted from 0), and its rejects."""
        batch = parse_batch(rb)
        bad = list(batch.rejects)
        rows, keep = [], []
        for p, sr, pos in zip(batch.problems, batch.rows, batch.positions, strict=True):
            issues = self.admission.issues(p.id, p.answer)
            if issues:
                bad.append(reject(sr, issues))
                continue
            try:
                rows.append(self.row(p, len(rows)))
                keep.append(pos)
            except ValueError as exc:  # placeholder/image count mismatch
                bad.append(reject(sr, [RowIssue(PROMPT, str(exc))]))
                continue
            self.admission.admit(p.id, sr.file, sr.row)
        rows_in = len(batch.problems) + len(batch.rejects)
        if not rows:
            return _Encoded(None, bad, rows_in)
        schema = self.schema
        i = schema.get_field_index("images")
        images = _arrow_images(batch, keep, schema.field(i).type)
        if images is None:
            return _Encoded(pa.RecordBatch.from_pylist(rows, schema=schema), bad, rows_in)
        for row in rows:
            del row["images"]
        out = pa.RecordBatch.from_pylist(rows, schema=schema.remove(i)).add_column(
            i, schema.field(i), images
        )
        return _Encoded(out.replace_schema_metadata(schema.metadata), bad, rows_in)

    def write(self, rb: RowBatch, first_index: int) -> Written:
        enc = self.encode(rb)
        written = 0
        if enc.batch is not None:
            self.table.write_batch(_shift_index(enc.batch, first_index))
            written = enc.batch.num_rows
        return Written(enc.rows_in, written, enc.rejects)


class VerlFormat(TableFormat):
    name = "verl"
    description = (
        "RLHFDataset layout (prompt with one <image> per image, images, reward_model, "
        "extra_info). Each row keeps its stored system prompt, as the release trains on it; "
        "ours goes to rows without a stored prompt, and --system-prompt, --system-prompt-file "
        "or --no-system-prompt replace it in every row (trl and jsonl alike)"
    )
    schema = VERL_SCHEMA

    def row(self, p: Problem, index: int) -> dict[str, Any]:
        return _verl_row(p, index, self.opts)

    def encode(self, rb: RowBatch) -> _Encoded:
        # column-wise where the batch allows (see `_verl_columns`), else Problem by Problem
        enc = _verl_columns(rb, self.opts, self.admission)
        return enc if enc is not None else super().encode(rb)


class TrlFormat(TableFormat):
    name = "trl"
    description = "conversational prompt (no <image> text), images, answer columns for rewards"
    schema = with_hf_features(TRL_SCHEMA)

    def row(self, p: Problem, index: int) -> dict[str, Any]:
        return _trl_row(p, index, self.opts)


class EasyR1Format(TableFormat):
    name = "easyr1"
    description = (
        "problem with <image>, answer {ground_truth, equivalent_answers, options} for "
        "verify.rewards.easyr1_compute_score, images"
    )
    schema = with_hf_features(EASYR1_SCHEMA)

    def row(self, p: Problem, index: int) -> dict[str, Any]:
        return _easyr1_row(p, index, self.opts)


def _image_suffix(data: bytes | memoryview) -> str:
    mime = sniff_mime(data)
    if not mime.startswith("image/"):
        return "bin"
    return {"jpeg": "jpg"}.get(mime[6:], mime[6:])


class JsonlFormat(ExportFormat):
    """One JSON line per problem; images written once each to a folder beside the file (or
    inline as data URIs). The folder is built under a temporary name and appears with the
    file, or not at all."""

    name = "jsonl"
    suffix = ".jsonl"
    description = "one line per problem, images in a folder"

    def __init__(self, out: Path, opts: ExportOptions) -> None:
        super().__init__(out, opts)
        folders = self.side_paths(out, opts)
        self._images = PathOutput(folders[0], folder=True) if folders else None
        self.file = JsonlOutput(out)

    @classmethod
    def side_paths(cls, out: Path, opts: ExportOptions) -> list[Path]:
        return [] if opts.inline_images else [out.with_name(out.stem + "_images")]

    @property
    def images_dir(self) -> Path | None:
        return None if self._images is None else self.out.with_name(self.out.stem + "_images")

    def outputs(self) -> list[Output]:
        return [self.file] if self._images is None else [self.file, self._images]

    def _image_ref(self, data: bytes | None) -> str:
        data = data or b""
        if self._images is None:
            return data_uri(data)
        name = f"{hashlib.sha1(data).hexdigest()[:20]}.{_image_suffix(data)}"
        target = self._images.tmp / name
        if not target.exists():  # content-addressed: identical images are written once
            target.write_bytes(data)
        return f"{self.images_dir.name}/{name}"

    def line(self, p: Problem) -> dict[str, Any]:
        return {
            "id": p.id,
            "question": p.question,
            "options": p.options,
            "answer": p.answer,
            "equivalent_answers": p.equivalent_answers,
            "images": [self._image_ref(im.bytes) for im in p.images],
            "messages": build_messages(p, self.opts.system_for(p.messages)),
            "data_source": p.data_source,
            "topic": p.topic,
            "knowledge_points": p.knowledge_points,
            "visual_elements": p.visual_elements,
            "pass_rate": str(p.pass_rate) if p.pass_rate else None,
            "image_necessity": p.image_necessity,
        }

    def write(self, rb: RowBatch, first_index: int) -> Written:
        batch = parse_batch(rb)
        bad = list(batch.rejects)
        written = 0
        for p, sr in zip(batch.problems, batch.rows, strict=True):
            issues = self.admission.issues(p.id, p.answer)
            if issues:
                bad.append(reject(sr, issues))
                continue
            try:
                rec = self.line(p)
            except ValueError as exc:  # placeholder/image count mismatch
                bad.append(reject(sr, [RowIssue(PROMPT, str(exc))]))
                continue
            self.file.write_line(rec)
            self.admission.admit(p.id, sr.file, sr.row)
            written += 1
        return Written(len(batch.problems) + len(batch.rejects), written, bad)


FORMATS: dict[str, type[ExportFormat]] = {
    cls.name: cls for cls in (VerlFormat, TrlFormat, EasyR1Format, JsonlFormat)
}


def get_format(name: str) -> type[ExportFormat]:
    """The export format registered under `name`; UsageError naming the known ones else."""
    if name not in FORMATS:
        raise UsageError(
            f"unknown export format {name!r}; use one of {', '.join(FORMATS)}", param="to"
        )
    return FORMATS[name]


# The check of one row's images: one issue per image that fails (`images.header_issues`, or
# `images.image_issues` for the full check).
_RowImagesCheck = Callable[[list[ImageBytes | None]], list[RowIssue]]


@dataclass
class _ImageVerdicts:
    """The images checked in one input batch: its file and last row, and the rows whose
    images fail, with the issues."""

    file: str
    last_row: int
    bad: dict[int, list[RowIssue]]


def _check_images(batch: ProblemBatch, check: _RowImagesCheck) -> _ImageVerdicts:
    """`check` of the images of every row of a batch that parses (the others are the export
    pass's to reject)."""
    bad = {}
    for problem, sr in zip(batch.problems, batch.rows, strict=True):
        issues = check([im.bytes for im in problem.images])
        if issues:
            bad[sr.row] = issues
    places = [(sr.file, sr.row) for sr in batch.rows] + [(j.file, j.row) for j in batch.rejects]
    file, last_row = max(places, key=lambda place: place[1])
    return _ImageVerdicts(file, last_row, bad)


def _arrow_image_rows(rb: RowBatch) -> list[list[memoryview]] | None:
    """Each row's image bytes as zero-copy views of the batch's Arrow images column; None
    unless that column is a list of {bytes, ...} structs with bytes in every item (a row
    with an image given by path only, or a null image, is read the Problem way)."""
    if rb.arrow is None or IMAGES not in rb.arrow.schema.names:
        return None
    col = rb.arrow.column(IMAGES)
    if not is_image_list(col.type):
        return None
    data = columns.field(columns.items(col), "bytes")
    if data.null_count:
        return None
    views = binary_views(data)
    starts = [0, *accumulate(columns.item_rows(col)[0].tolist())]
    return [views[a:b] for a, b in pairwise(starts)]


class _HeaderChecks:
    """Export's default image check: `header_issues` of each batch's images as the export
    reaches it (a few microseconds an image, so no worker processes)."""

    def bad_rows(self, rb: RowBatch) -> dict[int, list[RowIssue]]:
        """The rows of `rb` (by row number) with an image that fails, and the issues."""
        images = _arrow_image_rows(rb)
        if images is None:
            return _check_images(parse_batch(rb, with_id=False), header_issues).bad
        found = ((rb.start + i, header_issues(row)) for i, row in enumerate(images))
        return {row: issues for row, issues in found if issues}

    def close(self) -> None:
        """Nothing runs apart from the export."""


class _FullChecks:
    """The full check (`data validate`'s) computed ahead of the export pass in worker
    processes (it costs far more than encoding a row), taken in input order as the export
    reaches them."""

    def __init__(self, verdicts: Iterator[_ImageVerdicts]) -> None:
        self._verdicts = verdicts
        self._reached: dict[str, int] = {}
        self._bad: dict[tuple[str, int], list[RowIssue]] = {}
        # The workers are forked now, before this process starts any thread (a fork copies
        # no lock that another thread holds).
        self._take()

    def _take(self) -> bool:
        v = next(self._verdicts, None)
        if v is None:
            return False
        self._reached[v.file] = max(self._reached.get(v.file, -1), v.last_row)
        self._bad.update({(v.file, row): issues for row, issues in v.bad.items()})
        return True

    def bad_rows(self, rb: RowBatch) -> dict[int, list[RowIssue]]:
        """The rows of `rb` (by row number) with an image that fails, and the issues."""
        if rb.arrow is not None:
            file, rows = rb.file, range(rb.start, rb.start + len(rb))
        else:
            file, rows = rb.rows[-1].file, [r.row for r in rb.rows]
        while self._reached.get(file, -1) < rows[-1] and self._take():
            pass
        return {row: self._bad.pop((file, row)) for row in rows if (file, row) in self._bad}

    def close(self) -> None:
        self._verdicts.close()


def _image_checks(
    sources: list[Source], full: bool, batch_size: int, workers: int | None
) -> _HeaderChecks | _FullChecks:
    """The image check of an export: the header check, or the full one (`full`) in `workers`
    processes."""
    if not full:
        return _HeaderChecks()
    verdicts = map_batches(
        sources,
        partial(_check_images, check=image_issues),
        batch_size=batch_size,
        workers=workers,
        with_id=False,
        columns=list(REQUIRED_COLUMNS),
    )
    return _FullChecks(verdicts)


def _set_aside(rb: RowBatch, bad: dict[int, list[RowIssue]]) -> tuple[RowBatch, list[Reject]]:
    """The rows of `rb` not in `bad` (row number -> issues), and a Reject of each one in it."""
    if not bad:
        return rb, []
    good: list[SourceRow] = []
    rejects = []
    for sr in rb.rows:
        issues = bad.get(sr.row)
        if issues is None:
            good.append(sr)
        else:
            rejects.append(reject(sr, issues))
    return RowBatch(good), rejects


def _only(rb: RowBatch, names: list[str] | None, image_views: bool) -> RowBatch:
    """`rb` with only the columns `names` (a format gets what it asked for; the image check
    reads the required columns too)."""
    if names is None or rb.arrow is None:
        return rb
    keep = [c for c in rb.arrow.schema.names if c in names]
    if len(keep) == rb.arrow.num_columns:
        return rb
    arrow = rb.arrow.select(keep)
    return RowBatch(arrow=arrow, file=rb.file, start=rb.start, image_views=image_views)


def export(
    inputs: Iterable[str | Path],
    out: Path,
    to: str,
    opts: ExportOptions | None = None,
    rejects: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    full_images: bool = False,
    workers: int | None = None,
    allow_absolute: bool = False,
) -> ExportReport:
    """Export Problems to a format of `FORMATS` (a trainer's table: `verl`, `trl`, `easyr1`;
    or inference `jsonl`), in input order.

    Every image is checked first and a row with an image that fails is rejected: by default
    its header and end (`images.inspect_header`: bytes that are no image, pixel bombs,
    truncated files), with `full_images` as `data validate` checks it (every pixel decodes),
    in `workers` processes (default: all cores). Table formats read only the columns they
    use: a malformed pass rate or visual-element annotation does not stop a row there
    (`data validate` reports it). `allow_absolute`: JSONL image paths may be absolute."""
    fmt_cls = get_format(to)
    opts = opts or ExportOptions()
    sources = open_sources(inputs, allow_absolute=allow_absolute)
    report = ExportReport()
    total = sum(s.num_rows or 0 for s in sources) or None
    wanted = list(fmt_cls.columns) if fmt_cls.columns is not None else None
    read = None if wanted is None else list(dict.fromkeys([*wanted, *REQUIRED_COLUMNS]))

    ok = False
    reject_writer = fmt = checks = None
    try:
        checks = _image_checks(sources, full_images, batch_size, workers)
        reject_writer = RejectWriter(rejects) if rejects else None
        fmt = fmt_cls(out, opts)
        report.images_dir = fmt.images_dir
        # One process encodes: Python builds each batch while threads read the next row group
        # and write the last batch (sending image bytes between processes cost more than it
        # saved); only the full image check runs in worker processes.
        with progress_bar(f"export {to}", total) as bar:
            for src in sources:
                for rb in src.batches(batch_size, columns=read, image_views=fmt.image_views):
                    bad_rows = checks.bad_rows(rb)
                    rows, bad = _set_aside(_only(rb, wanted, fmt.image_views), bad_rows)
                    done = fmt.write(rows, report.written) if len(rows) else Written(0, 0, [])
                    rejected = sorted(bad + done.rejects, key=lambda j: j.row)
                    report.written += done.written
                    report.rejected += len(rejected)
                    report.rows_in += done.rows_in + len(bad)
                    room = 20 - len(report.reject_examples)
                    report.reject_examples += [r.describe() for r in rejected][:room]
                    if reject_writer is not None:
                        reject_writer.write(rejected)
                    bar.advance(done.rows_in + len(bad))
        ok = True
    finally:
        if checks is not None:
            checks.close()
        finish([*(fmt.outputs() if fmt is not None else []), reject_writer], ok)
    return report
