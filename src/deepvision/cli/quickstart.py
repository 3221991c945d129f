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
    problems: int = typer.Option(64, "--problems", help="Generated training problems."),
    steps: int = typer.Option(3, "--steps", help="GSPO steps."),
    eval_items: int = typer.Option(24, "--eval-items", help="Items of the synth benchmark."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Synthetic data -> validate, stats -> export -> tiny model -> GSPO steps (TRL, CPU) ->
    serve the checkpoint (transformers serve) -> evaluate on `synth` -> verdicts and reports.

    Runs offline in a few minutes on a laptop CPU (needs the `train` extra).

    Example: deepvision quickstart --out runs/quickstart
    """
    from deepvision.quickstart import STAGES, QuickstartConfig, run_quickstart

    def on_stage(name: str, msg: str) -> None:
        info(f"[bold][{STAGES.index(name) + 1}/{len(STAGES)}] {name}[/]: {msg}")

    cfg = QuickstartConfig(out=out, problems=problems, steps=steps, eval_items=eval_items,
                           seed=seed)  # fmt: skip
    with staged_progress() as advance:
        summary = run_quickstart(cfg, on_stage, advance)
    f, a = summary["figures"], summary["artifacts"]
    share = f["eval_accuracy_share"]
    accuracy = Share(share["hits"], share["decided"], share["total"]).text(digits=1)
    console.print(
        f"\n[bold]done[/] in {sum(summary['seconds'].values()):.0f} s: {f['valid_rows']} valid "
        f"problems; {f['train_steps']} GSPO steps; eval on {f['eval_items']} synth items: "
        f"accuracy {accuracy} ({f['eval_unparsed']} unparsed; a random "
        "tiny model, so expect ~0)."
    )
    width = max(len(k) for k in a)
    for key, path in a.items():
        console.print(f"  {key:<{width}}  {path}", highlight=False)
    console.print(f"  {'summary':<{width}}  {out / 'summary.json'}", highlight=False)
