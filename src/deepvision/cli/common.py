"""Shared bits of the commands: consoles, list options, inputs defaulting to the sample."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from deepvision.data.sample import sample_path

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
    err_console.print(f"[dim]no input given: using the embedded sample {path}[/]", soft_wrap=True)
    return [path]


def info(msg: str) -> None:
    err_console.print(msg, highlight=False, soft_wrap=True)
