"""`deepvision train ...`: tiny offline models now; the verl / TRL GSPO recipes are issue #6."""

from __future__ import annotations

from pathlib import Path

import typer

from deepvision.cli.common import console
from deepvision.errors import UsageError

app = typer.Typer(
    help="Training: tiny offline models (GSPO recipes on verl and TRL: planned, issue #6).",
    no_args_is_help=True,
)

FAMILIES = ("qwen2_5_vl",)


@app.command("tiny-model")
def tiny_model_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for the model, tokenizer and processor."),
    family: str = typer.Option("qwen2_5_vl", "--family", help=f"{' | '.join(FAMILIES)}"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
) -> None:
    """Build a tiny random vision-language model fully offline (needs the `tiny` extra).

    Example: deepvision train tiny-model --out runs/tiny-vlm
    """
    if family not in FAMILIES:
        raise UsageError(f"--family must be one of {', '.join(FAMILIES)} (qwen3_vl: issue #6)")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out} exists and is not empty; pass --overwrite to replace it")
    from deepvision.train.tiny import build_tiny_vlm

    try:
        path = build_tiny_vlm(out, seed=seed)
    except ImportError as exc:
        raise UsageError(f"{exc}; install the extra: pip install 'deepvision[tiny]'") from None
    console.print(
        f"tiny {family} model in {path}; serve it with: deepvision serve --model {path} "
        "--backend transformers"
    )
