"""The `deepvision` command: groups of thin commands over the library."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
from rich.text import Text

from deepvision import __version__
from deepvision.cli.common import err_console
from deepvision.errors import DeepVisionError, UsageError
from deepvision.progress import set_quiet

# name -> (module, attribute, group or command), in the order `--help` lists them. Only the
# module of the command being run is imported (the others cost start-up time: curate, eval,
# inference clients), unless help or an unknown name needs them all.
_COMMANDS = {
    "data": ("deepvision.cli.data", "app", "group"),
    "verify": ("deepvision.cli.verify", "app", "group"),
    "judge": ("deepvision.cli.verify", "judge_cmd", "command"),
    "infer": ("deepvision.cli.infer", "infer_cmd", "command"),
    "serve": ("deepvision.cli.infer", "serve_cmd", "command"),
    "train": ("deepvision.cli.train", "app", "group"),
    "curate": ("deepvision.cli.curate", "app", "group"),
    "eval": ("deepvision.cli.eval", "app", "group"),
    "quickstart": ("deepvision.cli.quickstart", "quickstart_cmd", "command"),
}

HELP = (
    "RLVR toolkit for multimodal math: read, check, describe and export DeepVision-103K "
    "style data; generate verifiable visual problems; verify answers; run inference on "
    "vLLM or transformers servers; evaluate on the seven reference benchmarks; curate "
    "verified RL data; train with GSPO on verl or TRL.\n\n"
    "Start with:  deepvision quickstart   (the whole loop on this machine, offline)"
)


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root command, with the command `argv` names (or all of them) attached."""
    app = typer.Typer(
        name="deepvision",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    first = next((a for a in argv or [] if not a.startswith("-")), None)
    names = [first] if first in _COMMANDS else list(_COMMANDS)
    for name in names:
        module, attr, kind = _COMMANDS[name]
        target = getattr(importlib.import_module(module), attr)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


_state = {"debug": False, "quiet": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deepvision {__version__}")
        raise typer.Exit()


def root(
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bars or info logs (accepted anywhere)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (accepted anywhere)."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    configure_output(quiet=quiet or _state["quiet"], debug=debug or _state["debug"])


# Loggers of the engines we drive, and the environment their subprocesses read: `--quiet`
# silences them too (their INFO lines and progress bars are most of a run's output).
_ENGINE_LOGGERS = ("httpx", "httpcore", "transformers", "datasets", "ray", "verl", "trl", "urllib3")
_QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "RAY_DEDUP_LOGS": "1",
}


def configure_output(*, quiet: bool, debug: bool) -> None:
    """Apply `--quiet` / `--debug` to our progress bars, logging and the engines' logging."""
    _state["quiet"], _state["debug"] = quiet, debug
    set_quiet(quiet)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in _ENGINE_LOGGERS:  # httpx logs one line per request otherwise
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.WARNING)
    if quiet:
        for key, value in _QUIET_ENV.items():
            os.environ.setdefault(key, value)


_GLOBAL_FLAGS = {"--quiet": "quiet", "-q": "quiet", "--debug": "debug"}


def split_global_flags(args: list[str]) -> tuple[list[str], dict[str, bool]]:
    """`--quiet`, `-q` and `--debug` taken from anywhere before `--` (so they work after the
    subcommand too); the other arguments in order."""
    rest: list[str] = []
    found = {"quiet": False, "debug": False}
    for k, arg in enumerate(args):
        if arg == "--":
            rest += args[k:]
            break
        if arg in _GLOBAL_FLAGS:
            found[_GLOBAL_FLAGS[arg]] = True
        else:
            rest.append(arg)
    return rest, found


def main(argv: list[str] | None = None) -> None:
    """Entry point; `argv` defaults to the process arguments."""
    args = sys.argv[1:] if argv is None else argv
    args, flags = split_global_flags(list(args))
    configure_output(**flags)
    try:
        result = build_app(args)(args=args, standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except DeepVisionError as exc:
        if _state["debug"]:
            raise
        msg = exc.for_cli() if isinstance(exc, UsageError) else str(exc)
        _print_error(msg)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # A file the command could not write (or read): a read-only file system, a
        # permission, a path under a file, a directory in the way. The user fixes the path;
        # a traceback would not help (--debug shows it). Data commands have removed their
        # partial outputs by then.
        if _state["debug"] or exc.filename is None:
            raise
        _print_error(_file_error(exc))
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors of click (typer may vendor its own copy) know how to show themselves.
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def _file_error(exc: OSError) -> str:
    """An OSError about a file as one line: what went wrong and the path(s) it names."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    return f"{exc.strerror or exc}: {paths}"


def _print_error(msg: str) -> None:
    err_console.print(Text.assemble(("error:", "bold red"), " ", msg), soft_wrap=True)


if __name__ == "__main__":
    main()
