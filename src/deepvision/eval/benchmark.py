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

import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from deepvision.data.sources import HFDiskSource, ParquetShardsSource, ParquetSource
from deepvision.errors import DataError, UnusableRecordError
from deepvision.eval.benchmarks._choice import resolve_markers, with_options
from deepvision.eval.golds import normalize_gold
from deepvision.eval.options import parse_options
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


@dataclass
class LoadReport:
    """What a loader found: the layout, the fields it used, and every record it could not use
    as shipped. Two kinds of records are not loaded:

    - `skipped`: the data folder cannot supply them (a missing image, a path outside it);
      they stay in the evaluation set, undecided, until the folder is fixed;
    - `excluded`: no folder could make them usable (no question, no gold, a repeated id);
      they are out of the set, each named here, and never keep a run from completing.

    Golds changed by `golds.normalize_gold`, options that could not be split (sent as
    shipped, scored apart) or that were lettered again are listed by item id; `outside`
    counts records of the files that belong to another evaluation set (other versions)."""

    layout: str = ""
    path: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    golds_normalized: list[dict[str, str]] = field(default_factory=list)
    options_unparsed: list[str] = field(default_factory=list)
    options_relettered: list[str] = field(default_factory=list)
    outside: int = 0

    def skip(self, where: str, why: str) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 10:
            self.skipped_examples.append(f"{where}: {why}")

    def exclude(self, where: str, why: str) -> None:
        self.excluded.append(f"{where}: {why}")


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

    signature: ClassVar[tuple[str, frozenset[str]] | None] = None
    """(file inside a folder, fields its first record has) that mark the benchmark's official
    repository under any folder name (MathVision: `data/test.jsonl` with `level`, ...)."""

    def folder_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def locate(self, data_dir: Path) -> tuple[str, Path] | None:
        """('release', <name>.jsonl) or ('official', folder or file), or None if absent.
        Official folders are found by name (the benchmark's name and aliases exactly, then
        any folder whose name matches one of them ignoring case, punctuation and a `-main` /
        `-master` download suffix: `MATH-V`, `mathvision-main`), then by content (a folder
        holding the benchmark's `signature` file). Two folders that could both be the
        benchmark's are an error naming them, never a guess."""
        release = data_dir / f"{self.name}.jsonl"
        if release.is_file():
            return "release", release
        for folder in self.folder_names():
            p = data_dir / folder
            if p.is_dir() or p.is_file():
                return "official", p
        children = sorted(d for d in data_dir.iterdir() if d.is_dir()) if data_dir.is_dir() else []
        keys = {_folder_key(n) for n in self.folder_names()}
        for found in (
            [d for d in children if _folder_key(d.name) in keys],
            [d for d in children if self._has_signature(d)],
        ):
            if len(found) > 1:
                raise DataError(
                    f"several folders could hold {self.name}: "
                    f"{', '.join(d.name for d in found)}; keep one of them in the data folder",
                    file=str(data_dir),
                )
            if found:
                return "official", found[0]
        return None

    def _has_signature(self, folder: Path) -> bool:
        """Whether `folder` holds the benchmark's signature file with its fields."""
        if self.signature is None:
            return False
        name, fields = self.signature
        path = folder / name
        if not path.is_file():
            return False
        try:
            with path.open(encoding="utf-8") as fh:
                if path.suffix == ".jsonl":
                    first = json.loads(fh.readline())
                else:
                    data = json.load(fh)
                    first = next(iter(data.values() if isinstance(data, dict) else data), None)
        except (OSError, ValueError):
            return False
        return isinstance(first, dict) and fields <= set(first)

    def load(
        self,
        data_dir: Path | None,
        report: LoadReport | None = None,
        *,
        allow_absolute: bool = False,
    ) -> Iterator[Problem]:
        """The benchmark's items, in file order. Image paths are read inside `data_dir` only
        (absolute ones too with `allow_absolute`); a record naming any other is skipped with
        the reason in `report`, its file never read. Golds are normalized once, here
        (`golds.normalize_gold`), and every record not loaded is named in `report`."""
        report = report if report is not None else LoadReport()
        if data_dir is None:
            raise DataError(f"benchmark {self.name} needs --data-dir")
        found = self.locate(Path(data_dir))
        if found is None:
            names = ", ".join([f"{self.name}.jsonl", *[f"{a}/" for a in self.folder_names()]])
            raise DataError(
                f"no data for benchmark {self.name}: looked for {names} (and folders of "
                "similar names)",
                file=str(data_dir),
            )
        layout, path = found
        report.layout, report.path = layout, str(path)
        resolve = self._resolver(path, Path(data_dir), allow_absolute)
        if layout == "release":
            rows = ((f"{path}:{no}", {**obj, "_line": no}) for no, obj in iter_jsonl(path))
            make = self.from_release
        else:
            rows, make = self._official_rows(path, report), self.from_official
        seen: dict[str, str] = {}
        for where, raw in rows:
            try:
                item = make(raw, resolve, report)
                if item is None:  # not part of this benchmark's evaluation set
                    report.outside += 1
                    continue
                self._accept(item, where, seen, report)
            except (UnusableRecordError, KeyError) as exc:
                why = exc.reason if isinstance(exc, UnusableRecordError) else f"no field {exc}"
                report.exclude(_named(where, raw), why)
                continue
            except (ValueError, TypeError) as exc:
                report.skip(_named(where, raw), f"{type(exc).__name__}: {exc}")
                continue
            report.rows += 1
            yield item

    @staticmethod
    def _accept(item: Problem, where: str, seen: dict[str, str], report: LoadReport) -> None:
        """The checks every loaded item passes, whatever its layout: a gold (normalized
        here, the change listed), a question, an id not seen before in this load."""
        stored = item.answer
        item.answer = normalize_gold(stored)
        if not item.answer:
            raise UnusableRecordError("no gold answer")
        item.equivalent_answers = [normalize_gold(a) for a in item.equivalent_answers]
        if item.answer != stored.strip():
            report.golds_normalized.append({"id": item.id, "stored": stored, "used": item.answer})
        if not item.question.replace(IMAGE_PLACEHOLDER, "").strip() and not item.images:
            raise UnusableRecordError("no question and no image")
        if item.id in seen:
            raise UnusableRecordError(f"id {item.id!r} repeats the record at {seen[item.id]}")
        seen[item.id] = where
        if item.id in report.options_unparsed:  # scored apart, in a breakdown of its own
            item.extra["categories"]["options"] = "unparsed"

    def _resolver(self, path: Path, data_dir: Path, allow_absolute: bool) -> ImageResolver:
        base = path.parent if path.is_file() else path
        roots = [base, base / self.name, base / "images", base.parent / self.name]
        # official repos keep JSON and images together in a sub-folder (LogicVista: data/)
        roots += [d for j in base.glob("*/*.json") for d in (j.parent, j.parent / "images")]
        zips = [base / f"{self.name}.zip", base.parent / f"{self.name}.zip"]
        return ImageResolver(data_dir, roots, zips, allow_absolute)

    def from_release(
        self, obj: dict[str, Any], resolve: ImageResolver, report: LoadReport
    ) -> Problem:
        """A release-layout record: generic field detection, then the benchmark's own fields
        (options, categories) when the record carries them. Options the prompt does not
        show are added under it: no multiple-choice item goes out without its options."""
        used = {
            "prompt": _first(obj, PROMPT_FIELDS),
            "images": _first(obj, IMAGE_FIELDS),
            "answer": _first(obj, ANSWER_FIELDS),
        }
        for role, name in used.items():
            if name is None and role != "images":
                want = {"prompt": PROMPT_FIELDS, "answer": ANSWER_FIELDS}[role]
                raise UnusableRecordError(f"no {role} field (looked for {', '.join(want)})")
            if name and role not in report.fields:
                report.fields[role] = name
        text = _user_text(obj[used["prompt"]])
        refs = obj.get(used["images"]) if used["images"] else []
        refs = [r for r in (refs if isinstance(refs, list) else [refs]) if r]
        if IMAGE_PLACEHOLDER not in text and IMAGE_MARKER.search(text):  # MMMU's `<image k>`
            text, images = resolve_markers(text, dict(enumerate(refs, start=1)), resolve)
        else:
            images = [resolve(r) for r in refs]
        id_field = _first(obj, ID_FIELDS)
        pid = str(obj[id_field]) if id_field else f"{self.name}-{obj.get('_line')}"
        raw_options = obj.get(_first(obj, OPTION_FIELDS) or "")
        options = parse_options(raw_options)
        options = options if options and len(options) > 1 else None
        text = self.show_options(text, options, raw_options, pid, report)
        return problem(self, pid, text, images, obj[used["answer"]], options, obj)

    @staticmethod
    def show_options(
        text: str, options: list[str] | None, raw: Any, pid: str, report: LoadReport
    ) -> str:
        """`text` with the options lettered under it unless it shows each of them on its own
        lettered line already. Options that could not be split go out as shipped (unless the
        text holds them), and the item is named (`report.options_unparsed`) and scored apart
        (category `options`: `unparsed`)."""
        if options:
            return text if shows_options(text, options) else with_options(text, options)
        if isinstance(raw, str) and raw.strip():
            report.options_unparsed.append(pid)
            return text if raw.strip() in text else f"{text}\n{raw.strip()}"
        return text

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
        # the JSON beside the folder's top or in data/ (MathVision, We-Math, LogicVista ship
        # it there)
        files = sorted(
            f
            for pattern in ("*.json", "*.jsonl", "data/*.json", "data/*.jsonl")
            for f in path.glob(pattern)
        )
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
        """The records of one official JSON file: a list or an object of records, or JSON
        lines. A line of JSON lines that is not a record is excluded and named (the others
        load); a JSON document that does not parse (truncated) is a DataError naming where
        it breaks."""
        report.fields["format"] = f"official JSON ({path.name})"
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if not _json_lines(text):
                raise DataError(
                    f"neither JSON nor JSON lines: {exc.msg} at line {exc.lineno} column "
                    f"{exc.colno} (a truncated or damaged file?)",
                    file=str(path),
                ) from None
            data = None
        if data is None:
            for no, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    yield f"{path}:{no}", record
                else:
                    report.exclude(f"{path}:{no}", "line is not a JSON object")
            return
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, dict):
                    yield f"{path}[{key}]", {"_key": key, **value}
                else:
                    report.exclude(f"{path}[{key}]", "record is not a JSON object")
            return
        if isinstance(data, list):
            for i, value in enumerate(data):
                if isinstance(value, dict):
                    yield f"{path}[{i}]", value
                else:  # counted and named, never dropped silently
                    report.exclude(f"{path}[{i}]", "record is not a JSON object")
            return
        raise DataError("JSON holds neither a list nor an object of records", file=str(path))

    # ---------------------------------------------------------------- per benchmark

    def from_official(
        self, raw: dict[str, Any], resolve: ImageResolver, report: LoadReport
    ) -> Problem | None:
        """A record of the official dataset as a Problem (None: not in the evaluation set).
        Raises UnusableRecordError (or KeyError) for a record no data folder can make
        usable, ValueError for one the data folder cannot supply (an image)."""
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


def shows_options(text: str, options: list[str]) -> bool:
    """Whether each option is on a line of `text` of its own after its letter (`B. 4`,
    `(B) 4`, `B: 4`)."""
    return all(
        re.search(rf"(?m)^\s*\(?{chr(65 + i)}[.):：]\s*{re.escape(o.strip())}\s*$", text)
        for i, o in enumerate(options)
    )


def _folder_key(name: str) -> str:
    """A folder name compared loosely: lower case, no punctuation, no `-main` / `-master`
    suffix of a repository download (`MATH-V-main` -> `mathv`)."""
    name = re.sub(r"[-_. ](main|master)$", "", name.strip().lower())
    return re.sub(r"[^a-z0-9]", "", name)


def _named(where: str, raw: Any) -> str:
    """Where a record is, with its id when it has one the place does not show."""
    if isinstance(raw, dict):
        pid = raw.get(_first(raw, ID_FIELDS) or "") or raw.get("_key")
        if pid is not None and not where.endswith(f"[{pid}]"):
            return f"{where} (id {pid})"
    return where


def _json_lines(text: str) -> bool:
    """Whether `text` reads as JSON lines: several lines, one of them a whole JSON object
    (no line of a pretty-printed or truncated document is)."""
    lines = [x for x in text.splitlines() if x.strip()]
    for line in lines if len(lines) > 1 else ():
        try:
            if isinstance(json.loads(line), dict):
                return True
        except ValueError:
            continue
    return False


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
    if answer is None or not str(answer).strip():
        raise UnusableRecordError("no gold answer")
    text = place_images(text, len(images))  # ValueError: the item is skipped, with why
    return Problem(
        id=str(pid),
        question=text,
        images=images,
        answer=str(answer),  # as stored: the loader normalizes it once (`golds`)
        options=options or None,
        data_source=bench.name,
        extra={"categories": bench.categories(raw), "bench": bench.bench_fields(raw)},
    )
