"""Ingest raw problems from the layouts people start from into Problem parquet with ids:

- a JSONL file: one problem per line, `question`, `answer`, `images` (paths relative to the
  file, or data URIs); other names by `fields` (e.g. {"question": "problem", "answer": "gt"});
- a folder of images with an index (`index.csv` / `index.jsonl` / `index.json`, or any file
  given as `index`): one row per problem, image paths relative to the folder, several images
  separated by `;` in CSV;
- a Hugging Face `datasets` save_to_disk folder (or parquet), read by the data layer.

Image paths must stay inside the folder of the file (or the image folder): `../x.png` or an
absolute path is a named drop, never read, unless `allow_absolute` admits absolute paths.
Images are embedded; a problem without an id gets `content_hash` (question + image bytes).
Rows that cannot be used go to `<stem>.drops.jsonl` with their place and reason."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepvision.curate.stage import side_paths
from deepvision.data.reader import iter_problem_batches, open_sources, parse_row
from deepvision.data.sources import SourceRow, jsonl_to_row
from deepvision.data.writer import ProblemWriter, prepare_output
from deepvision.errors import DataError, UsageError

INDEX_NAMES = ("index.jsonl", "index.csv", "index.json")


@dataclass
class IngestReport:
    rows_in: int = 0
    written: int = 0
    dropped: int = 0
    drops: str = ""


def _rename(obj: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    out = dict(obj)
    for ours, theirs in fields.items():
        if theirs in out and theirs != ours:
            out[ours] = out.pop(theirs)
    if isinstance(out.get("images"), str) and ";" in out["images"]:
        out["images"] = [x.strip() for x in out["images"].split(";") if x.strip()]
    for key in ("images", "image"):
        if out.get(key) == "":
            out.pop(key)
    return out


def _index_rows(
    index: Path, base: Path, fields: dict[str, str], allow_absolute: bool
) -> Iterator[SourceRow]:
    file = str(index)
    if index.suffix.lower() == ".csv":
        with index.open(newline="", encoding="utf-8") as fh:
            records: Iterator[tuple[int, Any]] = (
                (k, r) for k, r in enumerate(csv.DictReader(fh), start=2)
            )
            yield from _to_rows(records, base, fields, file, allow_absolute)
        return
    with index.open(encoding="utf-8") as fh:
        if index.suffix.lower() == ".json":
            data = json.load(fh)
            if not isinstance(data, list):
                raise UsageError(f"{index}: expected a JSON list of problems")
            yield from _to_rows(enumerate(data, start=1), base, fields, file, allow_absolute)
            return

        def lines():
            for k, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield k, json.loads(line)
                    except ValueError:
                        yield k, None

        yield from _to_rows(lines(), base, fields, file, allow_absolute)


def _to_rows(
    records, base: Path, fields: dict[str, str], file: str, allow_absolute: bool
) -> Iterator[SourceRow]:
    for k, rec in records:
        if not isinstance(rec, dict):
            yield SourceRow(file, k, None, "not a JSON object")
            continue
        try:
            row = jsonl_to_row(_rename(rec, fields), base, allow_absolute=allow_absolute)
        except (ValueError, DataError) as exc:
            yield SourceRow(file, k, None, str(exc))
            continue
        yield SourceRow(file, k, row)


def ingest(
    src: str | Path,
    out: str | Path,
    *,
    index: str | Path | None = None,
    fields: dict[str, str] | None = None,
    overwrite: bool = False,
    allow_absolute: bool = False,
) -> IngestReport:
    """Raw problems in `src` -> Problem parquet `out` (see the module docstring). Image paths
    must lie inside the file's (or folder's) folder; absolute ones only with
    `allow_absolute`. Rows that cannot be used are dropped with their place and reason."""
    src, out = Path(src), Path(out)
    fields = fields or {}
    prepare_output(out, overwrite)
    drops_path = side_paths(out)["drops"]
    rep = IngestReport(drops=str(drops_path))
    if index is None and src.is_dir():
        index = next((src / n for n in INDEX_NAMES if (src / n).exists()), None)
    with ProblemWriter(out) as w, drops_path.open("w", encoding="utf-8") as dfh:

        def drop(file: str, row: int, reason: str) -> None:
            rep.dropped += 1
            dfh.write(
                json.dumps(
                    {
                        "id": None,
                        "stage": "ingest",
                        "reason": "unreadable_row",
                        "detail": reason,
                        "file": file,
                        "row": row,
                    }
                )
                + "\n"
            )

        if index is not None or (src.suffix.lower() == ".jsonl" and (fields or allow_absolute)):
            idx = Path(index) if index is not None else src
            base = src if src.is_dir() else src.parent
            batch = []
            for sr in _index_rows(idx, base, fields, allow_absolute):
                rep.rows_in += 1
                p, issues = parse_row(sr)
                if p is None or issues:
                    drop(sr.file, sr.row, "; ".join(str(i) for i in issues))
                    continue
                batch.append(p)
                if len(batch) >= 256:
                    w.write(batch)
                    rep.written += len(batch)
                    batch = []
            w.write(batch)
            rep.written += len(batch)
        else:
            for b in iter_problem_batches(open_sources([src])):
                rep.rows_in += len(b.problems) + len(b.rejects)
                for r in b.rejects:
                    drop(r.file, r.row, "; ".join(str(i) for i in r.issues))
                w.write(b.problems)
                rep.written += len(b.problems)
    return rep
