"""The Problem record and its exact mapping to and from the DeepVision-103K row layout.

A row of the DeepVision-103K parquet files holds the question, embedded images, the reward
model struct and several annotation columns that store JSON in strings. `Problem` parses those
into typed fields. Reading and writing back is lossless: each derived column keeps the value it
was read from, and that value is written back unchanged unless the fields it feeds were edited.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pyarrow as pa
import xxhash

from deepvision.records.images import IMAGE_PLACEHOLDER

# Column names of the DeepVision-103K layout.
QUESTION = "question"
IMAGES = "images"
DATA_SOURCE = "data_source"
ABILITY = "ability"
DOMAIN_ANNO = "domain-anno"
PROMPT = "prompt"
REWARD_MODEL = "reward_model"
PASS_RATE = "mimo-pass_rate"
VISION_ANNO = "gpt5-mini-vision-anno"
NECESSITY_ANNO = "q32-vision-anno"
# Columns we add; verl and `datasets` ignore columns they do not use.
ID = "id"
OPTIONS = "options"

EMPTY_SENTINEL = "__EMPTY__"
VISUAL_ELEMENT_CATEGORIES = (
    "planar_geometry",
    "solid_geometry",
    "analytic_plots",
    "data_charts",
    "schematic_diagrams",
    "real_world_items",
)

IMAGE_TYPE = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
MESSAGES_TYPE = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
REWARD_MODEL_TYPE = pa.struct(
    [
        ("ground_truth", pa.string()),
        ("equivalent_answers", pa.list_(pa.string())),
        ("style", pa.string()),
    ]
)

# Full schema of a Problem parquet written by us: the DeepVision layout plus `id` and `options`.
PROBLEM_SCHEMA = pa.schema(
    [
        (ID, pa.string()),
        (QUESTION, pa.string()),
        (IMAGES, IMAGE_TYPE),
        (DATA_SOURCE, pa.string()),
        (ABILITY, pa.string()),
        (DOMAIN_ANNO, pa.string()),
        (PROMPT, MESSAGES_TYPE),
        (REWARD_MODEL, REWARD_MODEL_TYPE),
        (PASS_RATE, pa.string()),
        (VISION_ANNO, pa.string()),
        (NECESSITY_ANNO, pa.string()),
        (OPTIONS, pa.list_(pa.string())),
    ]
)
REQUIRED_COLUMNS = (QUESTION, IMAGES, REWARD_MODEL)


@dataclass(frozen=True, order=True)
class PassRate:
    """Correct rollouts out of `total`, as stored in `mimo-pass_rate` ("2/8")."""

    correct: int
    total: int

    def __post_init__(self) -> None:
        if self.total <= 0 or not 0 <= self.correct <= self.total:
            raise ValueError(f"pass rate {self.correct}/{self.total} is not k/n with 0 <= k <= n")

    @classmethod
    def parse(cls, text: str) -> PassRate:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"pass rate {text!r} is not of the form k/n (for example '2/8')")
        return cls(int(m.group(1)), int(m.group(2)))

    @property
    def value(self) -> Fraction:
        return Fraction(self.correct, self.total)

    def __str__(self) -> str:
        return f"{self.correct}/{self.total}"


@dataclass
class ProblemImage:
    """One image of a problem: embedded bytes, and/or the path it came from."""

    bytes: bytes | None = None
    path: str | None = None

    def sha1(self) -> str:
        return hashlib.sha1(self.bytes or b"").hexdigest()


@dataclass
class Problem:
    """One verifiable problem: question, images, reference answer and metadata."""

    id: str
    question: str
    images: list[ProblemImage] = field(default_factory=list)
    answer: str = ""
    equivalent_answers: list[str] = field(default_factory=list)
    options: list[str] | None = None
    data_source: str = ""
    ability: str = "math"
    pass_rate: PassRate | None = None
    topic: list[str] = field(default_factory=list)
    knowledge_points: list[str] = field(default_factory=list)
    visual_elements: dict[str, list[str]] = field(default_factory=dict)
    image_necessity: str | None = None
    # Chat messages as stored in the `prompt` column (system + user, `<image>` placeholders).
    messages: list[dict[str, str]] | None = None
    # Columns we do not interpret, kept as-is.
    extra: dict[str, Any] = field(default_factory=dict)
    # column -> (snapshot of the fields it was decoded into, raw value); see module docstring.
    _origin: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def user_prompt(self) -> str:
        """The user text sent to a model: the stored user message, else the question."""
        if self.messages:
            for m in reversed(self.messages):
                if m.get("role") == "user":
                    return m.get("content") or ""
        return self.question

    @property
    def all_answers(self) -> list[str]:
        """The reference answer followed by its distinct equivalents."""
        out = [self.answer]
        out += [a for a in self.equivalent_answers if a not in out]
        return out


def normalize_question(text: str) -> str:
    """Question text normalized for identity and dedup: NFKC, lower case, single spaces."""
    text = unicodedata.normalize("NFKC", text).replace(IMAGE_PLACEHOLDER, " ")
    return " ".join(text.lower().split())


def content_hash(question: str, images: Iterable[ProblemImage]) -> str:
    """Stable identity of a problem's content: normalized question plus image bytes (or path,
    for an image given by path only)."""
    return content_hash_of(
        question,
        (img.bytes if img.bytes is not None else (img.path or "").encode() for img in images),
    )


def content_hash_of(question: str, image_data: Iterable[bytes | memoryview]) -> str:
    """`content_hash` from the question and each image's bytes.

    Image bytes go in through their XXH3-128 digest (about 15x faster than blake2b over
    46 KB figures; ids are hashed for every row of every command that reads problems)."""
    h = hashlib.blake2b(digest_size=10)
    h.update(normalize_question(question).encode())
    for data in image_data:
        h.update(b"\x00img\x00")
        h.update(xxhash.xxh3_128_digest(data))
    return h.hexdigest()


# ---------------------------------------------------------------- row -> Problem


@dataclass(frozen=True)
class RowIssue:
    """One thing wrong with one row: the column (None for the whole row) and why."""

    column: str | None
    reason: str

    def __str__(self) -> str:
        return f"column '{self.column}': {self.reason}" if self.column else self.reason


def _loads_json_object(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise ValueError(f"expected a JSON string, got {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{what} must be a list of strings, got {type(value).__name__}")
    out = []
    for v in value:
        if not isinstance(v, str):
            raise ValueError(f"{what} must hold strings, found {type(v).__name__}")
        out.append(v)
    return out


def _decode_images(raw: Any) -> list[ProblemImage]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of images, got {type(raw).__name__}")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping):
            data, path = item.get("bytes"), item.get("path")
        elif isinstance(item, bytes | bytearray):
            data, path = bytes(item), None
        elif isinstance(item, str):
            data, path = None, item
        else:
            raise ValueError(f"image {i} is a {type(item).__name__}, not {{bytes, path}}")
        if data is None and not path:
            raise ValueError(f"image {i} has neither bytes nor a path")
        out.append(ProblemImage(bytes=data, path=path))
    return out


def _decode_reward_model(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError("missing (null); expected {ground_truth, equivalent_answers, style}")
    answer = raw.get("ground_truth")
    if not isinstance(answer, str):
        raise ValueError("ground_truth is missing or not a string")
    eq = [a for a in _str_list(raw.get("equivalent_answers"), "equivalent_answers")]
    eq = [a for a in eq if a != EMPTY_SENTINEL]
    return {"answer": answer, "equivalent_answers": eq}


def _decode_domain(raw: Any) -> dict[str, Any]:
    obj = _loads_json_object(raw)
    topic = []
    for level in range(1, 5):
        name = obj.get(f"Level_{level}")
        if name in (None, ""):
            break
        if not isinstance(name, str):
            raise ValueError(f"Level_{level} must be a string")
        topic.append(name)
    return {"topic": topic, "knowledge_points": _str_list(obj.get("Knowledge"), "Knowledge")}


def _decode_vision(raw: Any) -> dict[str, Any]:
    obj = _loads_json_object(raw)
    elements = obj.get("visual_elements") or {}
    if not isinstance(elements, Mapping):
        raise ValueError("visual_elements must be an object of category -> list")
    return {
        "visual_elements": {
            str(cat): _str_list(types, f"visual_elements.{cat}") for cat, types in elements.items()
        }
    }


def _decode_necessity(raw: Any) -> dict[str, Any]:
    obj = _loads_json_object(raw)
    value = obj.get("image_necessity")
    if value is not None and not isinstance(value, str):
        raise ValueError("image_necessity must be a string")
    return {"image_necessity": value}


def _decode_messages(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of chat messages, got {type(raw).__name__}")
    msgs = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise ValueError(f"message {i} is not {{role, content}}")
        msgs.append({"role": m["role"], "content": m.get("content") or ""})
    return {"messages": msgs}


def _decode_pass_rate(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string 'k/n', got {type(raw).__name__}")
    return {"pass_rate": PassRate.parse(raw)}


# Encoders: Problem -> column value. The snapshot of a column is the tuple of its fields.
def _enc_reward_model(p: Problem) -> dict[str, Any]:
    return {
        "ground_truth": p.answer,
        "equivalent_answers": list(p.equivalent_answers) or [EMPTY_SENTINEL],
        "style": "rule",
    }


def _enc_domain(p: Problem) -> str | None:
    if not p.topic and not p.knowledge_points:
        return None
    obj: dict[str, Any] = {"Knowledge": list(p.knowledge_points)}
    for i, name in enumerate(p.topic[:4], start=1):
        obj[f"Level_{i}"] = name
    return json.dumps(obj, ensure_ascii=False)


def _enc_vision(p: Problem) -> str | None:
    if not p.visual_elements:
        return None
    return json.dumps({"visual_elements": p.visual_elements}, ensure_ascii=False)


def _enc_necessity(p: Problem) -> str | None:
    if p.image_necessity is None:
        return None
    return json.dumps({"image_necessity": p.image_necessity}, ensure_ascii=False)


@dataclass(frozen=True)
class _DerivedColumn:
    fields: tuple[str, ...]
    decode: Callable[[Any], dict[str, Any]]
    encode: Callable[[Problem], Any]


_DERIVED: dict[str, _DerivedColumn] = {
    REWARD_MODEL: _DerivedColumn(
        ("answer", "equivalent_answers"), _decode_reward_model, _enc_reward_model
    ),
    DOMAIN_ANNO: _DerivedColumn(("topic", "knowledge_points"), _decode_domain, _enc_domain),
    VISION_ANNO: _DerivedColumn(("visual_elements",), _decode_vision, _enc_vision),
    NECESSITY_ANNO: _DerivedColumn(("image_necessity",), _decode_necessity, _enc_necessity),
    PROMPT: _DerivedColumn(("messages",), _decode_messages, lambda p: p.messages),
    PASS_RATE: _DerivedColumn(
        ("pass_rate",),
        _decode_pass_rate,
        lambda p: str(p.pass_rate) if p.pass_rate else None,
    ),
}
_PLAIN = {QUESTION, IMAGES, DATA_SOURCE, ABILITY, ID, OPTIONS}


def decode_column(column: str, raw: Any) -> dict[str, Any]:
    """The Problem fields a parsed column gives (`problem_from_row`'s own decoder); raises
    ValueError as it does. For column-wise readers that skip building Problems."""
    return _DERIVED[column].decode(raw)


def _snapshot(p: Problem, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(p, n) for n in names)


def problem_from_row(
    row: Mapping[str, Any], with_id: bool = True
) -> tuple[Problem | None, list[RowIssue]]:
    """Parse one DeepVision-layout row; return the Problem (None if unusable) and every issue.

    Issues in optional annotation columns are reported but do not make the row unusable for
    reading commands; `data validate` treats every issue as a reason to reject the row.
    A row without an id gets its content hash, or "" with `with_id=False` (saves hashing the
    image bytes where ids are not used).
    """
    issues: list[RowIssue] = []
    for col in REQUIRED_COLUMNS:
        if col not in row:
            issues.append(RowIssue(col, "column is missing"))
    question = row.get(QUESTION)
    if QUESTION in row and not isinstance(question, str):
        issues.append(RowIssue(QUESTION, "question is null or not a string"))
    images: list[ProblemImage] = []
    try:
        images = _decode_images(row.get(IMAGES))
    except ValueError as exc:
        issues.append(RowIssue(IMAGES, str(exc)))

    values: dict[str, Any] = {}
    origin: dict[str, tuple[Any, Any]] = {}
    for col, spec in _DERIVED.items():
        if col not in row or (row[col] is None and col != REWARD_MODEL):
            continue
        try:
            decoded = spec.decode(row[col])
        except ValueError as exc:
            issues.append(RowIssue(col, str(exc)))
            continue
        values.update(decoded)
        origin[col] = (tuple(decoded[n] for n in spec.fields), row[col])

    options = row.get(OPTIONS)
    if options is not None:
        try:
            options = _str_list(options, "options")
        except ValueError as exc:
            issues.append(RowIssue(OPTIONS, str(exc)))
            options = None
    for col in (DATA_SOURCE, ABILITY, ID):
        if row.get(col) is not None and not isinstance(row[col], str):
            issues.append(RowIssue(col, f"expected a string, got {type(row[col]).__name__}"))

    if any(i.column in REQUIRED_COLUMNS for i in issues):
        return None, issues
    pid = row.get(ID) or (content_hash(question, images) if with_id else "")
    problem = Problem(
        id=pid,
        question=question,
        images=images,
        options=options,
        data_source=row.get(DATA_SOURCE) or "",
        ability=row.get(ABILITY) or "math",
        extra={k: v for k, v in row.items() if k not in _DERIVED and k not in _PLAIN},
        **values,
    )
    problem._origin = origin
    return problem, issues


def problem_to_row(problem: Problem, columns: Iterable[str]) -> dict[str, Any]:
    """Encode a Problem into the given columns of the DeepVision layout (others from extra)."""
    row: dict[str, Any] = {}
    for col in columns:
        spec = _DERIVED.get(col)
        if spec is not None:
            origin = problem._origin.get(col)
            if origin is not None and origin[0] == _snapshot(problem, spec.fields):
                row[col] = origin[1]
            else:
                row[col] = spec.encode(problem)
        elif col == QUESTION:
            row[col] = problem.question
        elif col == IMAGES:
            row[col] = [{"bytes": im.bytes, "path": im.path} for im in problem.images]
        elif col == DATA_SOURCE:
            row[col] = problem.data_source
        elif col == ABILITY:
            row[col] = problem.ability
        elif col == ID:
            row[col] = problem.id
        elif col == OPTIONS:
            row[col] = problem.options
        else:
            row[col] = problem.extra.get(col)
    return row


def problems_to_batch(problems: list[Problem], schema: pa.Schema) -> pa.RecordBatch:
    """Arrow record batch of Problems in `schema` (ours, or the schema they were read with)."""
    rows = [problem_to_row(p, schema.names) for p in problems]
    return pa.RecordBatch.from_pylist(rows, schema=schema)
