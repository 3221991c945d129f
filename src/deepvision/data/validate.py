"""`data validate`: check every row of every input and account for each one.

Checks: the columns and their types; each row parses (pass rate, JSON annotation columns,
reward model); the answer is not empty; the user prompt holds one `<image>` per image; every
image decodes; ids are unique across all inputs. Rows in = valid + rejected, always.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from deepvision.data.images import image_issues
from deepvision.data.prompts import user_text
from deepvision.data.reader import ProblemBatch, Reject, map_batches, open_sources, reject
from deepvision.data.sources import DEFAULT_BATCH_SIZE, open_source
from deepvision.data.writer import RejectWriter, finish
from deepvision.progress import progress_bar
from deepvision.records import ID, IMAGES, PROMPT, REWARD_MODEL, Problem, RowIssue


@dataclass
class ValidationReport:
    rows_in: int = 0
    valid: int = 0
    rejected: int = 0
    issues_by_column: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # first issues, for the terminal

    @property
    def ok(self) -> bool:
        return self.rejected == 0


def semantic_issues(problem: Problem) -> list[RowIssue]:
    """Row checks beyond parsing that do not need the image pixels."""
    issues = []
    if not problem.answer.strip():
        issues.append(RowIssue(REWARD_MODEL, "ground_truth answer is empty"))
    try:
        user_text(problem)
    except ValueError as exc:
        issues.append(RowIssue(PROMPT if problem.messages else IMAGES, str(exc)))
    return issues


@dataclass
class _Checked:
    """One batch checked in a worker: its rejects (raw fields kept) and every parsed row's
    id and place, with whether it already failed a check (ids are compared in the caller)."""

    rows_in: int
    rejects: list[Reject]
    parsed: list[tuple[str, str, int, bool]]  # (id, file, row, rejected)


def _check_batch(batch: ProblemBatch, decode: bool) -> _Checked:
    rejects = list(batch.rejects)
    parsed = []
    for problem, sr in zip(batch.problems, batch.rows, strict=True):
        issues = semantic_issues(problem)
        issues += image_issues([im.bytes for im in problem.images], decode)
        if issues:
            rejects.append(reject(sr, issues))
        parsed.append((problem.id, sr.file, sr.row, bool(issues)))
    return _Checked(len(batch.problems) + len(batch.rejects), rejects, parsed)


def _raw_rows(file: str, rows: set[int], allow_absolute: bool) -> dict[int, dict | None]:
    """Re-read the raw fields of a few rows (duplicates found after their batch was done)."""
    found: dict[int, dict | None] = {}
    for rb in open_source(Path(file), allow_absolute=allow_absolute).batches():
        for sr in rb.rows:
            if sr.row in rows:
                found[sr.row] = sr.fields
        if len(found) == len(rows):
            break
    return found


def validate(
    paths: list[str | Path],
    *,
    rejects_path: str | Path | None = None,
    decode_images: bool = True,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_examples: int = 50,
    allow_absolute: bool = False,
) -> ValidationReport:
    """Check every row of `paths`. Rows are parsed and checked (images decoded) in `workers`
    processes for parquet inputs; ids are compared across all inputs here. `allow_absolute`:
    JSONL image paths may be absolute."""
    sources = open_sources(paths, allow_absolute=allow_absolute)
    report = ValidationReport()
    first_seen: dict[str, tuple[str, int]] = {}
    late_dups: list[Reject] = []  # rows valid in their batch, duplicates by id
    rejects = RejectWriter(rejects_path) if rejects_path else None
    total = sum(s.num_rows or 0 for s in sources) or None

    def count(rej: Reject) -> None:
        for issue in rej.issues:
            report.issues_by_column[issue.column or "(row)"] += 1
            if len(report.examples) < max_examples:
                report.examples.append(f"{rej.file}, row {rej.row}, {issue}")

    ok = False
    try:
        with progress_bar("validate", total) as bar:
            fn = partial(_check_batch, decode=decode_images)
            for checked in map_batches(sources, fn, batch_size=batch_size, workers=workers):
                by_place = {(r.file, r.row): r for r in checked.rejects}
                for pid, file, row, rejected in checked.parsed:
                    first = first_seen.setdefault(pid, (file, row))
                    if first == (file, row):
                        continue
                    issue = RowIssue(
                        ID, f"duplicate id {pid!r}, first at {first[0]}, row {first[1]}"
                    )
                    if rejected:
                        by_place[(file, row)].issues.append(issue)
                    else:
                        late_dups.append(Reject(file, row, [issue], None))
                for rej in checked.rejects:
                    count(rej)
                report.rejected += len(checked.rejects)
                report.rows_in += checked.rows_in
                if rejects is not None:
                    rejects.write(checked.rejects)
                bar.advance(checked.rows_in)
        for rej in late_dups:
            count(rej)
        report.rejected += len(late_dups)
        if rejects is not None and late_dups:
            by_file: dict[str, set[int]] = {}
            for rej in late_dups:
                by_file.setdefault(rej.file, set()).add(rej.row)
            raw = {f: _raw_rows(f, rows, allow_absolute) for f, rows in by_file.items()}
            for rej in late_dups:
                rej.fields = raw[rej.file].get(rej.row)
            rejects.write(late_dups)
        report.valid = report.rows_in - report.rejected
        ok = True
    finally:
        finish([rejects], ok)
    return report


__all__ = ["ValidationReport", "semantic_issues", "validate"]
