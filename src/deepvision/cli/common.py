"""Shared bits of the commands: consoles, list options, inputs defaulting to the sample."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from deepvision.data.sample import sample_path
from deepvision.progress import is_quiet

console = Console()
err_console = Console(stderr=True)


def split_list(values: list[str] | None) -> list[str]:
    """Flatten repeated and comma-separated option values."""
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def inputs_or_sample(files: list[Path] | None) -> list[Path]:
    if files:
        return list(files)
    path = sample_path()
    note(f"[dim]no input given: using the embedded sample {path}[/]")
    return [path]


def info(msg: str) -> None:
    """A line for the user on stderr (summaries, results: kept under `--quiet`)."""
    err_console.print(msg, highlight=False, soft_wrap=True)


def note(msg: str) -> None:
    """A by-the-way line on stderr (silenced by `--quiet`)."""
    if not is_quiet():
        info(msg)


def start_servers(model: str, backend: str, tp: int, dp: int, gpus: str | None, port: int,
                  log_dir: Path):  # fmt: skip
    """Serve a local model folder for a command given no --endpoint; returns the ServerGroup
    (the caller stops it). Usage errors when the folder is missing or a server fails."""
    from deepvision.errors import UsageError
    from deepvision.llm.serve import ServeConfig, ServeError, ServerGroup

    if not Path(model).exists():
        raise UsageError("give --endpoint URL, or a local model folder as --model to serve it")
    cfg = ServeConfig(model, backend, tp, dp, gpus, "127.0.0.1", port, log_dir)
    try:
        group = ServerGroup(cfg).start()
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    info(f"started {len(group.urls)} {backend} server(s): {', '.join(group.urls)}")
    return group
