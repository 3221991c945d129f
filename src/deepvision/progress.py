"""Progress bars for long work: shown on a terminal, silent when piped or when quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def enabled() -> bool:
    return not _quiet and sys.stderr.isatty()


class _Bar:
    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self._progress, self._task = progress, task_id

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[_Bar]:
    """`with progress_bar("validate", total=rows) as bar: bar.advance(k)`."""
    if not enabled():
        yield _Bar(None, None)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))


@contextmanager
def staged_progress() -> Iterator[Callable[[str, int], None]]:
    """`with staged_progress() as advance: advance("wemath: infer", k)`: one bar per stage,
    added when the stage first reports."""
    if not enabled():
        yield lambda stage, n: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as progress:
        tasks: dict[str, int] = {}

        def advance(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=None)
            progress.advance(tasks[stage], n)

        yield advance
