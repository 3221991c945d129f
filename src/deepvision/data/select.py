"""`data filter / sample / split / dedup`: choose rows, streaming, in the inputs' own schema.

Sampling and splitting are deterministic and independent of row order: each problem gets a
rank from a seeded hash of its id, and each stratum keeps its lowest ranks. Two passes over
the input; memory holds one small number per row, never the rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from deepvision.data.answer_kind import ANSWER_KINDS, answer_kind
from deepvision.data.reader import Reject, common_schema, iter_problem_batches, open_sources
from deepvision.data.sources import DEFAULT_BATCH_SIZE, Source, SourceRow
from deepvision.data.writer import JsonlOutput, Output, ProblemWriter, RejectWriter, finish
from deepvision.errors import UsageError
from deepvision.progress import progress_bar
from deepvision.records import Problem, content_hash


@dataclass
class SelectionReport:
    rows_in: int = 0
    written: Counter = field(default_factory=Counter)  # output name -> rows
    dropped: int = 0  # rows not selected (filtered out, not sampled, duplicates)
    rejected: int = 0  # rows that could not be read
    reject_examples: list[str] = field(default_factory=list)
    # filter: criterion (a `Filter` field name) -> readable rows meeting it, whatever the others
    matched: dict[str, int] = field(default_factory=dict)
    without_pass_rate: int = 0  # filter by pass rate: readable rows that have none
    asked: int | None = None  # sample: the rows asked for

    @property
    def readable(self) -> int:
        return self.rows_in - self.rejected

    @property
    def balanced(self) -> bool:
        return self.rows_in == sum(self.written.values()) + self.dropped + self.rejected


# ------------------------------------------------------------------ predicates


def parse_fraction(text: str) -> Fraction:
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{text!r} is not a number or fraction (e.g. 0.25 or 1/8)") from None


def parse_range(text: str) -> tuple[Fraction | None, Fraction | None]:
    """'1/8..7/8', '..3/8', '0.5..' -> inclusive bounds; a single value '3/8' -> exactly it."""
    if ".." not in text:
        value = parse_fraction(text)
        return value, value
    lo, hi = text.split("..", 1)
    low = parse_fraction(lo) if lo.strip() else None
    high = parse_fraction(hi) if hi.strip() else None
    if low is not None and high is not None and low > high:
        raise UsageError(f"range {text!r} is empty: {lo} > {hi}")
    return low, high


@dataclass
class Filter:
    """Every given criterion must hold; within one criterion any listed value may match."""

    pass_rate: str | None = None
    topics: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    visual_elements: list[str] = field(default_factory=list)
    answer_kinds: list[str] = field(default_factory=list)

    def compile(self) -> Callable[[Problem], bool]:
        """One predicate: every given criterion holds."""
        checks = [check for _, check in self.criteria()]
        return lambda p: all(c(p) for c in checks)

    def criteria(self) -> list[tuple[str, Callable[[Problem], bool]]]:
        """The given criteria, each as (its field name, its test); bad values are usage
        errors naming the field."""
        checks: list[tuple[str, Callable[[Problem], bool]]] = []
        if self.pass_rate:
            try:
                low, high = parse_range(self.pass_rate)
            except UsageError as exc:
                raise UsageError(exc.reason, param="pass_rate") from None

            def in_band(p: Problem) -> bool:
                if p.pass_rate is None:
                    return False
                v = p.pass_rate.value
                return (low is None or v >= low) and (high is None or v <= high)

            checks.append(("pass_rate", in_band))
        if self.topics:
            prefixes = [[t.strip().lower() for t in x.split("/") if t.strip()] for x in self.topics]

            def topic_ok(p: Problem) -> bool:
                path = [t.lower() for t in p.topic]
                return any(path[: len(pre)] == pre for pre in prefixes)

            checks.append(("topics", topic_ok))
        if self.sources:
            wanted = set(self.sources)
            checks.append(("sources", lambda p: p.data_source in wanted))
        if self.visual_elements:
            names = {v.lower().replace(" ", "_") for v in self.visual_elements}

            def has_element(p: Problem) -> bool:
                for cat, types in p.visual_elements.items():
                    if types and cat.lower() in names:
                        return True
                    if any(t.lower().replace(" ", "_") in names for t in types):
                        return True
                return False

            checks.append(("visual_elements", has_element))
        if self.answer_kinds:
            unknown = [k for k in self.answer_kinds if k not in ANSWER_KINDS]
            if unknown:
                raise UsageError(
                    f"unknown answer kinds {unknown}; known: {', '.join(ANSWER_KINDS)}",
                    param="answer_kinds",
                )
            kinds = set(self.answer_kinds)
            checks.append(("answer_kinds", lambda p: answer_kind(p.answer, p.options) in kinds))
        return checks


# ------------------------------------------------------------------ strata and ranks


STRATA = ("topic1", "topic2", "topic3", "topic4", "source", "answer_kind", "none")


def stratum_key(by: str) -> Callable[[Problem], str]:
    if by not in STRATA:
        raise UsageError(
            f"unknown stratification {by!r}; use one of {', '.join(STRATA)}", param="by"
        )
    if by.startswith("topic"):
        depth = int(by[-1])
        return lambda p: "/".join(p.topic[:depth]) or "(no topic)"
    if by == "source":
        return lambda p: p.data_source or "(none)"
    if by == "answer_kind":
        return lambda p: answer_kind(p.answer, p.options)
    return lambda p: "all"


def rank(problem_id: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{problem_id}".encode(), digest_size=8).digest())


def allocate(counts: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` across strata in proportion to their sizes (largest remainder)."""
    n = sum(counts.values())
    if n == 0:
        return dict.fromkeys(counts, 0)
    exact = {k: Fraction(total * c, n) for k, c in counts.items()}
    quota = {k: min(counts[k], int(v)) for k, v in exact.items()}
    left = total - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - int(exact[k])), k)):
        if left <= 0:
            break
        if quota[k] < counts[k]:
            quota[k] += 1
            left -= 1
    return quota


def _thresholds(sources, key, seed, quota_of, batch_size) -> dict[str, int]:
    """Pass 1: per stratum, the highest rank that is still selected (-1: none)."""
    ranks: dict[str, list[int]] = defaultdict(list)
    for batch in iter_problem_batches(sources, batch_size):
        for p in batch.problems:
            ranks[key(p)].append(rank(p.id, seed))
    quotas = quota_of({k: len(v) for k, v in ranks.items()})
    out = {}
    for k, rs in ranks.items():
        q = quotas.get(k, 0)
        out[k] = sorted(rs)[q - 1] if q > 0 else -1
    return out


# ------------------------------------------------------------------ the runner


@dataclass
class _Epilogue:
    """A JSON lines output written once every row is routed (dedup's groups), from what the
    routing gathered; it appears with the job's other outputs."""

    path: Path
    lines: Callable[[], Iterable[dict]]


def _run(
    sources: list[Source],
    route: Callable[[Problem, SourceRow], str | None],
    outputs: dict[str, Path],
    rejects_path: Path | None,
    batch_size: int,
    label: str,
    epilogue: _Epilogue | None = None,
) -> SelectionReport:
    """Stream all rows; `route` names the output of a problem (given its source row), or None
    to drop it."""
    schema = common_schema(sources)
    writers: dict[str, ProblemWriter] = {}
    rejects = None
    extra: list[Output] = []
    report = SelectionReport()
    total = sum(s.num_rows or 0 for s in sources) or None
    ok = False
    try:
        for name, path in outputs.items():
            writers[name] = ProblemWriter(path, schema)
        rejects = RejectWriter(rejects_path) if rejects_path else None
        with progress_bar(label, total) as bar:
            for batch in iter_problem_batches(sources, batch_size):
                routed: dict[str, list[Problem]] = defaultdict(list)
                for p, sr in zip(batch.problems, batch.rows, strict=True):
                    name = route(p, sr)
                    if name is None:
                        report.dropped += 1
                    else:
                        routed[name].append(p)
                for name, ps in routed.items():
                    writers[name].write(ps)
                    report.written[name] += len(ps)
                _note_rejects(report, batch.rejects, rejects)
                report.rows_in += len(batch.problems) + len(batch.rejects)
                bar.advance(len(batch.problems) + len(batch.rejects))
        if epilogue is not None:
            lines = JsonlOutput(epilogue.path)
            extra.append(lines)
            for rec in epilogue.lines():
                lines.write_line(rec)
        ok = True
    finally:
        finish([*writers.values(), rejects, *extra], ok)
    for name in outputs:
        report.written.setdefault(name, 0)
    return report


def _note_rejects(report: SelectionReport, rejs: list[Reject], writer: RejectWriter | None):
    report.rejected += len(rejs)
    for r in rejs:
        if len(report.reject_examples) < 20:
            report.reject_examples.append(r.describe())
    if writer is not None:
        writer.write(rejs)


def filter_problems(
    inputs: Iterable[str | Path],
    out: Path,
    flt: Filter,
    rejects: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    allow_absolute: bool = False,
) -> SelectionReport:
    """Keep the problems `flt` accepts. The report counts, per criterion, the rows meeting
    it, and the rows without a pass rate when the filter asks for one, so that a filter that
    keeps nothing can say why. (Every selection command: `allow_absolute` lets JSONL image
    paths be absolute.)"""
    criteria = flt.criteria()
    matched = Counter(dict.fromkeys((name for name, _ in criteria), 0))
    without_pass_rate = 0

    def route(p: Problem, _: SourceRow) -> str | None:
        nonlocal without_pass_rate
        met = [name for name, check in criteria if check(p)]
        matched.update(met)
        if flt.pass_rate and p.pass_rate is None:
            without_pass_rate += 1
        return "out" if len(met) == len(criteria) else None

    sources = open_sources(inputs, allow_absolute=allow_absolute)
    report = _run(sources, route, {"out": out}, rejects, batch_size, "filter")
    report.matched, report.without_pass_rate = dict(matched), without_pass_rate
    return report


def sample_problems(
    inputs: Iterable[str | Path],
    out: Path,
    n: int,
    by: str = "topic1",
    seed: int = 0,
    rejects: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    allow_absolute: bool = False,
) -> SelectionReport:
    if n < 0:
        raise UsageError(f"must be >= 0, got {n}", param="n")
    key = stratum_key(by)
    sources = open_sources(inputs, allow_absolute=allow_absolute)
    cut = _thresholds(sources, key, seed, lambda counts: allocate(counts, n), batch_size)
    report = _run(
        sources,
        lambda p, _: "out" if rank(p.id, seed) <= cut.get(key(p), -1) else None,
        {"out": out},
        rejects,
        batch_size,
        "sample",
    )
    report.asked = n
    return report


def split_problems(
    inputs: Iterable[str | Path],
    train_out: Path,
    test_out: Path,
    test_size: float,
    by: str = "topic1",
    seed: int = 0,
    rejects: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    allow_absolute: bool = False,
) -> SelectionReport:
    """Train/test split; test_size < 1 is a share of each stratum, >= 1 a total row count."""
    if test_size <= 0:
        raise UsageError(f"must be > 0, got {test_size}", param="test_size")
    key = stratum_key(by)
    sources = open_sources(inputs, allow_absolute=allow_absolute)

    def quotas(counts: dict[str, int]) -> dict[str, int]:
        total = sum(counts.values())
        want = round(test_size * total) if test_size < 1 else int(test_size)
        if want > total:
            raise UsageError(
                f"{int(test_size)} exceeds the {total} readable rows", param="test_size"
            )
        return allocate(counts, want)

    cut = _thresholds(sources, key, seed, quotas, batch_size)
    return _run(
        sources,
        lambda p, _: "test" if rank(p.id, seed) <= cut.get(key(p), -1) else "train",
        {"train": train_out, "test": test_out},
        rejects,
        batch_size,
        "split",
    )


def dedup_problems(
    inputs: Iterable[str | Path],
    out: Path,
    groups_out: Path,
    rejects: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    allow_absolute: bool = False,
) -> tuple[SelectionReport, int]:
    """Keep the first problem of each group with the same normalized question and images.

    Writes the groups (the kept and the dropped rows: id, file, row) as JSON lines; returns the
    report and the number of groups that had duplicates.
    """
    sources = open_sources(inputs, allow_absolute=allow_absolute)
    first: dict[str, dict] = {}
    dupes: dict[str, list[dict]] = defaultdict(list)

    def route(p: Problem, sr: SourceRow) -> str | None:
        key = content_hash(p.question, p.images)
        member = {"id": p.id, "file": sr.file, "row": sr.row}
        if key in first:
            dupes[key].append(member)
            return None
        first[key] = member
        return "out"

    def groups() -> Iterable[dict]:
        for key, dropped in dupes.items():
            yield {"key": key, "kept": first[key], "dropped": dropped, "size": 1 + len(dropped)}

    groups_out.parent.mkdir(parents=True, exist_ok=True)
    epilogue = _Epilogue(groups_out, groups)
    report = _run(sources, route, {"out": out}, rejects, batch_size, "dedup", epilogue)
    return report, len(dupes)


__all__ = [
    "Filter",
    "SelectionReport",
    "allocate",
    "dedup_problems",
    "filter_problems",
    "parse_range",
    "sample_problems",
    "split_problems",
]
