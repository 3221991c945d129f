"""`deepvision quickstart`: the whole loop on this machine (thin command over
deepvision.quickstart)."""

from __future__ import annotations

from pathlib import Path

import typer

from deepvision.cli.common import console, info
from deepvision.progress import staged_progress
from deepvision.records import Share


def quickstart_cmd(
    out: Path = typer.Option(
        Path("runs/quickstart"), "--out", help="Output (a previous quickstart's is replaced)."
    ),
    problems: int = typer.Option(64, "--problems", help="General synthetic problems (data tools)."),
    train_problems: int = typer.Option(2000, "--train-problems", help="Colour-task problems."),
    heldout: int = typer.Option(200, "--heldout", help="Held-out colour problems evaluated."),
    steps: int = typer.Option(250, "--steps", help="GSPO steps."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Synthetic data -> validate, stats -> export; then the colour task: tiny model ->
    held-out accuracy before -> GSPO (TRL, CPU) -> held-out accuracy after, each served with
    transformers serve and scored by deepvision eval -> summary.json, report.html.

    Runs offline in a few minutes on a laptop CPU (needs the `train` extra). Decoding is
    constrained to the four answer tokens (the report says so).

    Example: deepvision quickstart --out runs/quickstart
    """
    from deepvision.quickstart import STAGES, QuickstartConfig, run_quickstart

    def on_stage(name: str, msg: str) -> None:
        info(f"[bold][{STAGES.index(name) + 1}/{len(STAGES)}] {name}[/]: {msg}")

    cfg = QuickstartConfig(
        out=out,
        problems=problems,
        train_problems=train_problems,
        heldout=heldout,
        steps=steps,
        seed=seed,
    )
    with staged_progress() as advance:
        summary = run_quickstart(cfg, on_stage, advance)
    f, a = summary["figures"], summary["artifacts"]
    before, after = f["heldout"]["before"], f["heldout"]["after"]
    console.print(
        f"\n[bold]done[/] in {sum(summary['seconds'].values()):.0f} s: {f['valid_rows']} valid "
        f"general problems; colour task, {f['train_steps']} GSPO steps."
    )
    console.print(f"  held-out accuracy   before training  {_accuracy(before)}", highlight=False)
    console.print(f"                      after GSPO       {_accuracy(after)}", highlight=False)
    console.print(
        "  (decoding constrained to the four answer tokens: see report.html)\n", highlight=False
    )
    width = max(len(k) for k in a)
    for key, path in a.items():
        console.print(f"  {key:<{width}}  {path}", highlight=False)
    console.print(f"  {'summary':<{width}}  {out / 'summary.json'}", highlight=False)
    _exit_if_partial(f["heldout"], out)


def _exit_if_partial(heldout: dict, out: Path) -> None:
    """Exit 1 when an evaluation left items without an answer (its figure is then bounds)."""
    partial = [w for w in ("before", "after") if heldout[w]["accuracy_share"]["partial"]]
    for when in partial:
        info(
            f"[yellow]partial[/] eval-{when}: {heldout[when]['missing']} held-out item(s) "
            f"without an answer: {out / f'eval-{when}' / 'report.html'}"
        )
    if partial:
        raise typer.Exit(1)


def _accuracy(figures: dict) -> str:
    """`82.5% (165 of 200)`, with the unparsed count when there are any."""
    s = figures["accuracy_share"]
    text = Share(s["hits"], s["decided"], s["total"]).text(digits=1)
    return text + (f", {figures['unparsed']} unparsed" if figures["unparsed"] else "")
