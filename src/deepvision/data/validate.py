"""`data validate`: check every row of every input and account for each one.

Checks: the columns and their types; each row parses (pass rate, JSON annotation columns,
reward model); the answer is not empty; the user prompt holds one `<image>` per image; every
image decodes; ids are unique across all inputs. Rows in = valid + rejected, always.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from deepvision.data.images import ImageInfo, inspect_many
from deepvision.data.prompts import user_text
from deepvision.data.reader import Reject, iter_problem_batches, open_sources
from deepvision.data.sources import DEFAULT_BATCH_SIZE
from deepvision.data.writer import RejectWriter
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


class _InlinePool:
    """Stand-in for a process pool when workers=1: runs the work on submit."""

    def submit(self, fn, *args):
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut

    def shutdown(self) -> None:
        pass


def _pipelined(pool: Executor | _InlinePool, batches: Iterable, depth: int) -> Iterator:
    """Yield (batch, image infos) in order, keeping at most `depth` batches in flight."""
    pending: list = []
    for batch in batches:
        items = [[im.bytes for im in p.images] for p in batch.problems]
        pending.append((batch, pool.submit(inspect_many, items, True)))
        if len(pending) >= depth:
            b, fut = pending.pop(0)
            yield b, fut.result()
    for b, fut in pending:
        yield b, fut.result()


def validate(
    paths: list[str | Path],
    *,
    rejects_path: str | Path | None = None,
    decode_images: bool = True,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_examples: int = 50,
) -> ValidationReport:
    sources = open_sources(paths)
    report = ValidationReport()
    first_seen: dict[str, tuple[str, int]] = {}
    rejects = RejectWriter(rejects_path) if rejects_path else None
    workers = workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(workers) if decode_images and workers > 1 else _InlinePool()
    total = sum(s.num_rows or 0 for s in sources) or None

    def reject(batch_rejects: list[Reject], rej: Reject) -> None:
        batch_rejects.append(rej)
        for issue in rej.issues:
            report.issues_by_column[issue.column or "(row)"] += 1
            if len(report.examples) < max_examples:
                report.examples.append(f"{rej.file}, row {rej.row}, {issue}")

    try:
        with progress_bar("validate", total) as bar:
            batches = iter_problem_batches(sources, batch_size)
            if not decode_images:
                batches = ((b, None) for b in batches)
            else:
                batches = _pipelined(pool, batches, depth=2 * max(1, workers))
            for batch, infos in batches:
                out: list[Reject] = []
                for rej in batch.rejects:
                    reject(out, rej)
                for k, (problem, sr) in enumerate(zip(batch.problems, batch.rows, strict=True)):
                    issues = semantic_issues(problem)
                    row_infos = infos[k] if infos is not None else _structure_only(problem)
                    for i, info in enumerate(row_infos):
                        if not info.ok:
                            issues.append(RowIssue(IMAGES, f"image {i}: {info.error}"))
                    first = first_seen.setdefault(problem.id, (sr.file, sr.row))
                    if first != (sr.file, sr.row):
                        issues.append(
                            RowIssue(
                                ID,
                                f"duplicate id {problem.id!r}, first at {first[0]}, row {first[1]}",
                            )
                        )
                    if issues:
                        reject(out, Reject(sr.file, sr.row, issues, sr.fields))
                    else:
                        report.valid += 1
                report.rejected += len(out)
                report.rows_in += len(batch.rejects) + len(batch.problems)
                if rejects is not None:
                    rejects.write(out)
                bar.advance(len(batch.rejects) + len(batch.problems))
    finally:
        pool.shutdown()
        if rejects is not None:
            rejects.close()
    return report


def _structure_only(problem: Problem) -> list[ImageInfo]:
    return inspect_many([[im.bytes for im in problem.images]], decode=False)[0]


__all__ = ["ValidationReport", "semantic_issues", "validate"]
