"""Shared bits of the commands: consoles, list options, inputs defaulting to the sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from deepvision.data.prompts import DEFAULT_SYSTEM_PROMPT
from deepvision.errors import UsageError
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
    from deepvision.data.sample import sample_path  # the sample's module loads pyarrow

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


# ---------------------------------------------------------------- image paths in records

AllowAbsolutePathsOpt = Annotated[
    bool,
    typer.Option(
        "--allow-absolute-paths",
        help="Also read images named by absolute paths (relative paths always stay inside the "
        "data folder: a JSONL's own folder, or --data-dir for benchmarks).",
    ),
]

# ---------------------------------------------------------------- the system prompt

SystemPromptOpt = Annotated[
    str | None, typer.Option("--system-prompt", help="System prompt text (default: ours).")
]
SystemPromptFileOpt = Annotated[
    Path | None, typer.Option("--system-prompt-file", help="Read the system prompt from a file.")
]
NoSystemPromptOpt = Annotated[
    bool, typer.Option("--no-system-prompt", help="Send no system message.")
]


def system_prompt_from(
    text: str | None, file: Path | None, none: bool = False
) -> tuple[str | None, bool]:
    """(the system prompt, whether the user chose it) from the three options: at most one of
    them; a file that cannot be read is a usage error naming it. Unchosen, ours."""
    chosen = [x for x in (text is not None, file is not None, none) if x]
    if len(chosen) > 1:
        raise UsageError(
            "give at most one of --system-prompt, --system-prompt-file, --no-system-prompt",
            param="system_prompt",
        )
    if text is not None:
        return text, True
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip(), True
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"cannot read {file}: {why}", param="system_prompt_file") from None
    if none:
        return None, True
    return DEFAULT_SYSTEM_PROMPT, False
