"""The `deepvision` command: groups of thin commands over the library."""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from deepvision import __version__
from deepvision.cli.common import err_console
from deepvision.errors import DeepVisionError
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


_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deepvision {__version__}")
        raise typer.Exit()


def root(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or info logs."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    set_quiet(quiet)
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):  # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> None:
    """Entry point; `argv` defaults to the process arguments."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = build_app(args)(args=args, standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except DeepVisionError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
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


if __name__ == "__main__":
    main()
