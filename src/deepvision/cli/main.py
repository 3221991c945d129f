"""The `deepvision` command: groups of thin commands over the library."""

from __future__ import annotations

import logging
import sys

import typer

from deepvision import __version__
from deepvision.cli.common import err_console
from deepvision.cli.curate import app as curate_app
from deepvision.cli.data import app as data_app
from deepvision.cli.eval import app as eval_app
from deepvision.cli.infer import infer_cmd, serve_cmd
from deepvision.cli.quickstart import quickstart_cmd
from deepvision.cli.train import app as train_app
from deepvision.cli.verify import app as verify_app
from deepvision.cli.verify import judge_cmd
from deepvision.errors import DeepVisionError
from deepvision.progress import set_quiet

app = typer.Typer(
    name="deepvision",
    help=(
        "RLVR toolkit for multimodal math: read, check, describe and export DeepVision-103K "
        "style data; generate verifiable visual problems; verify answers; run inference on "
        "vLLM or transformers servers; evaluate on the seven reference benchmarks; curate "
        "verified RL data; train with GSPO on verl or TRL.\n\n"
        "Start with:  deepvision quickstart   (the whole loop on this machine, offline)"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")
app.add_typer(verify_app, name="verify")
app.command("judge")(judge_cmd)
app.command("infer")(infer_cmd)
app.command("serve")(serve_cmd)
app.add_typer(train_app, name="train")
app.add_typer(curate_app, name="curate")
app.add_typer(eval_app, name="eval")
app.command("quickstart")(quickstart_cmd)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deepvision {__version__}")
        raise typer.Exit()


@app.callback()
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
    try:
        result = app(args=argv, standalone_mode=False)
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
