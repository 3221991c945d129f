"""What a benchmark is: how its items are found on disk and read, how a prompt is built, how an
answer is taken from a response, and which categories it reports.

Every benchmark reads two layouts from a data folder:

- the DeepVision release's: `<name>.jsonl` (+ images beside it, in `<name>/`, or in
  `<name>.zip`), whose fields vary; we detect which ones hold the prompt, the images and the
  answer, and say which were used (`LoadReport`);
- the official dataset saved locally in `<name>/` (or one of the benchmark's folder aliases):
  a `datasets.save_to_disk` folder (a `DatasetDict` too: the benchmark picks its split), a
  folder of parquet shards, or the official JSON / JSONL.

Items become `Problem` records: `question` is the user text with one `<image>` per image in
order, `options` the lettered choices, `answer` the gold, and `extra["categories"]` the
breakdown keys (subject, level, ...); benchmark-specific fields go under `extra["bench"]`.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from deepvision.data.sources import HFDiskSource, ParquetShardsSource, ParquetSource
from deepvision.errors import DataError
from deepvision.records import (
    IMAGE_MARKER,
    IMAGE_PLACEHOLDER,
    Problem,
    ProblemImage,
    decode_data_uri,
    iter_jsonl,
    place_images,
    resolve_inside,
)
from deepvision.verify import extract_answer, extract_choice

log = logging.getLogger(__name__)

PROMPT_FIELDS = ("messages", "prompt", "question", "text", "problem", "query", "input")
IMAGE_FIELDS = ("images", "image", "img_path", "image_path")
ANSWER_FIELDS = ("gdt", "ground_truth", "answer")
ID_FIELDS = ("id", "ID", "pid", "sample_index", "index", "question_id")
OPTION_FIELDS = ("options", "choices", "option")
_LETTERED = re.compile(r"(?:^|\n|\s)\(?([A-J])[.):：]\s*")


@dataclass
class LoadReport:
    """What a loader found: the layout, the fields it used, and rows it could not use."""

    layout: str = ""
    path: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def skip(self, where: str, why: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 10:
            self.skipped_examples.append(f"{where}: {why}")


class ImageResolver:
    """Finds image bytes for a reference: a datasets Image struct, a data URI, a path relative
    to the data folder (or the benchmark's folders inside it), or a member of `<name>.zip`.

    Paths stay inside the data folder (`records.resolve_inside`): a path that leaves it from
    every folder it could be relative to (`../../x.png`, a symlink out), or an absolute one
    without `allow_absolute`, is a ValueError naming it, so its record is a named rejection and
    the file is never read. Folders and zips outside the data folder are never looked in."""

    def __init__(
        self, data_dir: Path, roots: list[Path], zips: list[Path], allow_absolute: bool = False
    ) -> None:
        self.data_dir, self.allow_absolute = data_dir, allow_absolute
        self.roots = [r for r in roots if r.is_relative_to(data_dir) and r.is_dir()]
        inside = [z for z in zips if z.is_relative_to(data_dir) and z.is_file()]
        self._zips = [zipfile.ZipFile(z) for z in inside if self._inside(z) is not None]
        self._members: dict[str, tuple[zipfile.ZipFile, str]] = {}
        for z in self._zips:
            for name in z.namelist():
                if not name.endswith("/"):
                    self._members.setdefault(name, (z, name))
                    self._members.setdefault(Path(name).name, (z, name))

    def _inside(self, path: Path) -> Path | None:
        """`path` (under the data folder by name) resolved, or None if it leads out of it."""
        try:
            rel = str(path.relative_to(self.data_dir))
            return resolve_inside(rel, self.data_dir, allow_absolute=self.allow_absolute)
        except DataError:
            return None

    def _candidates(self, ref: str) -> tuple[list[Path], bool]:
        """Where `ref` may be, each inside the data folder, and whether it led out of it from
        some folder; a ValueError when it leads out from every folder it could be relative
        to (or is absolute, unless allowed)."""
        if Path(ref).is_absolute():
            try:
                path = resolve_inside(ref, self.data_dir, allow_absolute=self.allow_absolute)
            except DataError as exc:
                raise ValueError(exc.reason) from None
            return [path], False
        found = [self._inside(base / ref) for base in (*self.roots, self.data_dir)]
        inside = [p for p in found if p is not None]
        if not inside:
            raise ValueError(f"image path {ref!r} leaves the data folder {self.data_dir}")
        return inside, len(inside) < len(found)

    def __call__(self, ref: Any) -> ProblemImage:
        if isinstance(ref, dict):
            if ref.get("bytes"):
                return ProblemImage(bytes(ref["bytes"]), ref.get("path"))
            ref = ref.get("path")
        if not isinstance(ref, str) or not ref:
            raise ValueError(f"image reference {str(ref)[:60]!r} is neither bytes nor a path")
        if ref.startswith("data:"):
            try:
                return ProblemImage(decode_data_uri(ref)[0], None)
            except DataError as exc:  # this item is unusable (skipped and named), not the set
                raise ValueError(exc.reason) from None
        candidates, led_out = self._candidates(ref)
        for p in candidates:
            if p.is_file():
                return ProblemImage(p.read_bytes(), ref)
        hit = self._members.get(ref.lstrip("./")) or self._members.get(Path(ref).name)
        if hit:
            return ProblemImage(hit[0].read(hit[1]), ref)
        where = ", ".join(str(r) for r in self.roots) or str(self.data_dir)
        out = f" (it leads out of the data folder {self.data_dir} from some of them)"
        raise ValueError(
            f"image {ref!r} not found under {where} nor in a zip beside them"
            + (out if led_out else "")
        )


def parse_options(raw: Any) -> list[str] | None:
    """Options as a list of texts from a list, a stringified list, or one lettered string
    ("A. 3; B. 4" / "A:3\\nB:4"); None when there are none."""
    if raw is None:
        return None
    if isinstance(raw, str):
        s = raw.strip()
        if not s:
            return None
        if s.startswith("["):
            try:
                val = ast.literal_eval(s)
            except (ValueError, SyntaxError):
                val = None
            if isinstance(val, list):
                return [str(v) for v in val] or None
        pieces = [x.strip() for x in re.split(r"[;；]\s*(?=\(?[A-J][.):：])", s)]
        heads = [re.match(r"\(?([A-J])[.):：]\s*", x) for x in pieces]
        if len(pieces) > 1 and all(heads):
            letters = [m.group(1) for m in heads if m]
            if letters == [chr(65 + i) for i in range(len(letters))]:
                return [x[m.end() :].strip() for x, m in zip(pieces, heads, strict=True) if m]
        marks = list(_LETTERED.finditer(s))
        letters = [m.group(1) for m in marks]
        if len(letters) > 1 and letters == [chr(65 + i) for i in range(len(letters))]:
            parts = []
            for i, m in enumerate(marks):
                end = marks[i + 1].start() if i + 1 < len(marks) else len(s)
                parts.append(s[m.end() : end].strip().rstrip(";；,").strip())
            return parts
        return None  # not lettered options: the caller keeps the text as it is
    if isinstance(raw, list | tuple):
        return [str(v) for v in raw] or None
    return None


def _first(obj: dict[str, Any], names: Iterable[str]) -> str | None:
    return next((n for n in names if obj.get(n) not in (None, "", [])), None)


def _user_text(value: Any) -> str:
    """The user text of a prompt that may be a string or chat messages (content as a string
    or as parts; image parts become `<image>` placeholders)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for m in reversed(value):
            if isinstance(m, dict) and m.get("role", "user") == "user":
                content = m.get("content")
                if isinstance(content, list):
                    out = []
                    for part in content:
                        if not isinstance(part, dict):
                            continue
                        if part.get("type") in ("image", "image_url"):
                            out.append(IMAGE_PLACEHOLDER)
                        elif part.get("type") == "text":
                            out.append(str(part.get("text", "")))
                    return "".join(out)
                return str(content or "")
    return str(value or "")


class Benchmark:
    """One benchmark. Subclasses set the class attributes and override `from_official`
    (and, where the benchmark has its own rules, `extract` and `extra_metrics`)."""

    name: ClassVar[str]
    title: ClassVar[str]
    size: ClassVar[int]  # items in the reference evaluation
    aliases: ClassVar[tuple[str, ...]] = ()  # other folder names of the official data
    splits: ClassVar[tuple[str, ...]] = ("testmini", "test", "validation", "train")
    category_keys: ClassVar[tuple[str, ...]] = ()  # breakdowns, in report order
    multiple_choice_only: ClassVar[bool] = False
    reference: ClassVar[str] = ""  # where the official data comes from

    # ------------------------------------------------------------------ loading

    def locate(self, data_dir: Path) -> tuple[str, Path] | None:
        """('release', <name>.jsonl) or ('official', folder or file), or None if absent."""
        release = data_dir / f"{self.name}.jsonl"
        if release.is_file():
            return "release", release
        for folder in (self.name, *self.aliases):
            p = data_dir / folder
            if p.is_dir() or p.is_file():
                return "official", p
        return None

    def load(
        self,
        data_dir: Path | None,
        report: LoadReport | None = None,
        *,
        allow_absolute: bool = False,
    ) -> Iterator[Problem]:
        """The benchmark's items, in file order. Image paths are read inside `data_dir` only
        (absolute ones too with `allow_absolute`); a record naming any other is skipped with
        the reason in `report`, its file never read."""
        report = report if report is not None else LoadReport()
        if data_dir is None:
            raise DataError(f"benchmark {self.name} needs --data-dir")
        found = self.locate(Path(data_dir))
        if found is None:
            names = ", ".join(
                [f"{self.name}.jsonl", *[f"{a}/" for a in (self.name, *self.aliases)]]
            )
            raise DataError(f"no data for benchmark {self.name}: looked for {names}",
                            file=str(data_dir))  # fmt: skip
        layout, path = found
        report.layout, report.path = layout, str(path)
        resolve = self._resolver(path, Path(data_dir), allow_absolute)
        if layout == "release":
            yield from self._load_release(path, report, resolve)
        else:
            yield from self._load_official(path, report, resolve)

    def _resolver(self, path: Path, data_dir: Path, allow_absolute: bool) -> ImageResolver:
        base = path.parent if path.is_file() else path
        roots = [base, base / self.name, base / "images", base.parent / self.name]
        # official repos keep JSON and images together in a sub-folder (LogicVista: data/)
        roots += [d for j in base.glob("*/*.json") for d in (j.parent, j.parent / "images")]
        zips = [base / f"{self.name}.zip", base.parent / f"{self.name}.zip"]
        return ImageResolver(data_dir, roots, zips, allow_absolute)

    def _load_release(
        self, path: Path, report: LoadReport, resolve: ImageResolver
    ) -> Iterator[Problem]:
        for no, obj in iter_jsonl(path):  # a line that is not a JSON object: DataError, file:line
            try:
                problem = self.from_release(obj, resolve, report, no)
            except ValueError as exc:
                report.skip(f"{path}:{no}", str(exc))
                continue
            report.rows += 1
            yield problem

    def from_release(
        self, obj: dict[str, Any], resolve: ImageResolver, report: LoadReport, line: int
    ) -> Problem:
        """A release-layout record: generic field detection, then the benchmark's own fields
        (options, categories) when the record carries them."""
        used = {
            "prompt": _first(obj, PROMPT_FIELDS),
            "images": _first(obj, IMAGE_FIELDS),
            "answer": _first(obj, ANSWER_FIELDS),
        }
        for role, name in used.items():
            if name is None and role != "images":
                want = {"prompt": PROMPT_FIELDS, "answer": ANSWER_FIELDS}[role]
                raise ValueError(f"no {role} field (looked for {', '.join(want)})")
            if name and role not in report.fields:
                report.fields[role] = name
        text = _user_text(obj[used["prompt"]])
        refs = obj.get(used["images"]) if used["images"] else []
        refs = [r for r in (refs if isinstance(refs, list) else [refs]) if r]
        if IMAGE_PLACEHOLDER not in text and IMAGE_MARKER.search(text):  # MMMU's `<image k>`
            from deepvision.eval.benchmarks._choice import resolve_markers

            text, images = resolve_markers(text, dict(enumerate(refs, start=1)), resolve)
        else:
            images = [resolve(r) for r in refs]
        id_field = _first(obj, ID_FIELDS)
        pid = str(obj[id_field]) if id_field else f"{self.name}-{line}"
        options = parse_options(obj.get(_first(obj, OPTION_FIELDS) or ""))
        options = options if options and len(options) > 1 else None
        return problem(self, pid, text, images, obj[used["answer"]], options, obj)

    def _load_official(
        self, path: Path, report: LoadReport, resolve: ImageResolver
    ) -> Iterator[Problem]:
        for where, raw in self._official_rows(path, report):
            try:
                problem = self.from_official(raw, resolve)
            except (ValueError, KeyError, TypeError) as exc:
                report.skip(where, f"{type(exc).__name__}: {exc}")
                continue
            if problem is None:  # not part of this benchmark's evaluation set
                continue
            report.rows += 1
            yield problem

    def _official_rows(self, path: Path, report: LoadReport) -> Iterator[tuple[str, dict]]:
        if path.is_file():
            yield from self._json_rows(path, report)
            return
        if (path / "dataset_dict.json").exists():
            try:
                names = json.loads((path / "dataset_dict.json").read_text())["splits"]
            except (OSError, ValueError, KeyError):
                names = [d.name for d in path.iterdir() if d.is_dir()]
            split = self._pick_split(list(names), path)
            path = path / split
        if (path / "state.json").exists():
            report.fields["format"] = "datasets save_to_disk"
            yield from self._table_rows(HFDiskSource(path))
            return
        parquet = sorted(path.rglob("*.parquet"))
        if parquet:
            split = self._pick_split(sorted({_split_of(p) for p in parquet} - {""}), path)
            chosen = [p for p in parquet if _split_of(p) in (split, "")] or parquet
            report.fields["format"] = f"parquet shards ({split or 'all'})"
            for p in chosen:
                yield from self._table_rows(ParquetSource(p))
            return
        files = sorted([*path.glob("*.json"), *path.glob("*.jsonl"), *path.glob("data/*.json")])
        if not files:
            raise DataError(
                f"no save_to_disk folder, parquet shards or JSON for {self.name}", file=str(path)
            )
        split = self._pick_split([f.stem for f in files], path) if len(files) > 1 else None
        for f in files:
            if split is None or f.stem == split:
                yield from self._json_rows(f, report)

    def _pick_split(self, names: list[str], where: Path) -> str:
        names = sorted(names)
        for s in self.splits:  # exact names first, in the benchmark's order of preference
            if s in names:
                return s
        for s in self.splits:  # then shard-style names (`test-00000-of-00001`)
            for n in names:
                if n.startswith(f"{s}-") or n.startswith(f"{s}_0"):
                    return n
        if len(names) == 1:
            return names[0]
        raise DataError(
            f"cannot choose a split among {names}; expected one of {', '.join(self.splits)}",
            file=str(where),
        )

    @staticmethod
    def _table_rows(source: ParquetSource | ParquetShardsSource | HFDiskSource):
        for batch in source.batches(64):
            for row in batch.rows:
                yield f"{row.file}:{row.row}", row.fields or {}

    @staticmethod
    def _json_rows(path: Path, report: LoadReport) -> Iterator[tuple[str, dict]]:
        report.fields["format"] = f"official JSON ({path.name})"
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is None:  # JSON lines
            for no, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        yield f"{path}:{no}", json.loads(line)
                    except ValueError:
                        raise DataError("line is not JSON", file=str(path), row=no) from None
            return
        if isinstance(data, dict):
            for i, (key, value) in enumerate(data.items()):
                if isinstance(value, dict):
                    yield f"{path}:{i}", {"_key": key, **value}
                else:
                    report.skip(f"{path}:{key}", "record is not a JSON object")
            return
        if isinstance(data, list):
            for i, value in enumerate(data):
                if isinstance(value, dict):
                    yield f"{path}:{i}", value
                else:  # counted and named, never dropped silently
                    report.skip(f"{path}:{i}", "record is not a JSON object")
            return
        raise DataError("JSON holds neither a list nor an object of records", file=str(path))

    # ---------------------------------------------------------------- per benchmark

    def from_official(self, raw: dict[str, Any], resolve: ImageResolver) -> Problem | None:
        """A record of the official dataset as a Problem (None: not in the evaluation set)."""
        raise NotImplementedError

    def categories(self, raw: dict[str, Any]) -> dict[str, str]:
        """Breakdown values of a record (either layout), for `category_keys`."""
        out = {}
        for key in self.category_keys:
            value = raw.get(key)
            if value not in (None, ""):
                out[key] = str(value)
        return out

    def bench_fields(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Fields the benchmark's own metrics need (WeMath's ID and key, ...)."""
        return {}

    choice_letters: ClassVar[str] = ""  # letters to look for when options are in the image

    def is_choice(self, item: dict[str, Any]) -> bool:
        return bool(item.get("options")) or bool(self.choice_letters)

    def extract(self, response: str, item: dict[str, Any]) -> str | None:
        """The final answer of a response: the last box, else "the answer is" / "Answer:";
        for multiple choice, else an option named in the text (never a guess)."""
        found = extract_answer(response)
        if found is None and self.is_choice(item):
            options = item.get("options") or list(self.choice_letters)
            found = extract_choice(response, options)
        return found

    def extra_metrics(
        self,
        items: list[dict[str, Any]],
        correct: Callable[[dict[str, Any], int], bool | None],
        n: int,
    ) -> dict[str, Any]:
        """Benchmark-specific metrics beyond accuracy (WeMath's four dimensions). `correct(item,
        k)` is None while sample k of the item is undecided: no figure over a partial set."""
        return {}


def _split_of(p: Path) -> str:
    """The split a parquet shard belongs to, from `<split>-00000-of-00001.parquet` or a
    `<split>/` folder."""
    stem = p.stem.split("-")[0]
    return stem if stem and not stem.isdigit() else p.parent.name


def problem(
    bench: Benchmark,
    pid: Any,
    text: str,
    images: list[ProblemImage],
    answer: Any,
    options: list[str] | None,
    raw: dict[str, Any],
) -> Problem:
    """A benchmark item with `<image>` placeholders checked against its images."""
    text = place_images(text, len(images))  # ValueError: the item is skipped, with why
    if answer in (None, ""):
        raise ValueError("no answer")
    return Problem(
        id=str(pid),
        question=text,
        images=images,
        answer=str(answer).strip(),
        options=options or None,
        data_source=bench.name,
        extra={"categories": bench.categories(raw), "bench": bench.bench_fields(raw)},
    )
