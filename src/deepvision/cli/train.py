"""`deepvision train ...`: GSPO recipes on verl and TRL, and tiny offline models for tests."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from deepvision.cli.common import console, info
from deepvision.errors import UsageError

app = typer.Typer(
    help="Training: GSPO recipes on verl (one node or a Ray cluster) and TRL; tiny offline models.",
    no_args_is_help=True,
)

FAMILIES = ("qwen2_5_vl", "qwen3_vl")


@app.command("init")
def init_cmd(
    out: Path = typer.Argument(..., help="Recipe file to write (YAML)."),
    gpus: int = typer.Option(32, "--gpus", help="Hardware preset: 8, 16, 32 or 64 GPUs."),
    model: str = typer.Option(None, "--model", help="Model path or hub name."),
    train_files: list[str] = typer.Option(None, "--train-files", help="Exported parquet file(s)."),
    val_files: list[str] = typer.Option(
        None, "--val-files", help="Validation parquet file(s) (verl needs one: a small split)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write a recipe holding the reference GSPO settings, every key spelled out.

    Example: deepvision train init recipe.yaml --gpus 8 --train-files data/verl/train.parquet
    --val-files data/verl/val.parquet
    """
    from deepvision.cli.common import split_list
    from deepvision.train.recipe import dump_recipe, recipe_from_dict

    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    raw: dict = {"hardware": {"gpus": gpus}, "data": {}}
    if model:
        raw["model"] = {"path": model}
    if train_files:
        raw["data"]["train_files"] = split_list(train_files)
    if val_files:
        raw["data"]["val_files"] = split_list(val_files)
    recipe = recipe_from_dict(raw)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_recipe(recipe), encoding="utf-8")
    info(f"recipe written to {out}; check it with: deepvision train verl {out} --dry-run")
    if not recipe.data.val_files:
        info(
            "verl needs a validation file (data.val_files): split one off with `deepvision data "
            "split ... --test-size 512`, export it with --to verl, and pass --val-files"
        )


@app.command("verl")
def verl_cmd(
    recipe_path: Path = typer.Argument(..., help="Recipe (YAML)."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Check that verl can start here, and print the exact command(s) instead of running.",
    ),
    address: str = typer.Option(
        None, "--address", help="Head node address of a running Ray cluster: submit the job there."
    ),
    dashboard_port: int = typer.Option(8265, "--dashboard-port"),
) -> None:
    """GSPO on verl 0.9.1 (its V1 trainer) with our exported parquet and our compute_score.

    Every start-up step that needs no GPU runs here first: verl's entry module and trainer
    import, verl's config composes and validates, the reward loads, the data files exist.
    One node (preset of 8 GPUs): runs `python3 -m verl.trainer.main_ppo ...`. Several nodes:
    prints the `ray start` commands for head and workers and, with --address, submits the run
    with `ray job submit`.

    Example: deepvision train verl recipe.yaml --dry-run
    """
    from deepvision.cli.common import note
    from deepvision.train.recipe import load_recipe
    from deepvision.train.verl import cluster_commands, run_verl, submit_verl, verl_command
    from deepvision.train.verl_check import check_verl_start

    recipe = load_recipe(recipe_path)
    nodes = recipe.preset.nnodes
    if dry_run:
        note("checking that verl can start on this machine ...")
        start = check_verl_start(recipe)
        if nodes == 1 and not address:
            typer.echo(shlex.join(verl_command(recipe)))
        else:
            cmds = cluster_commands(recipe, address or "$HEAD_IP", dashboard_port=dashboard_port)
            typer.echo(cmds.as_text(), nl=False)
        info(start.text())
        return
    if nodes == 1 and not address:
        code = run_verl(recipe)
    elif not address:
        raise UsageError(
            f"this recipe needs {nodes} nodes: start Ray on them (the commands: "
            f"deepvision train verl {recipe_path} --dry-run), then pass --address HEAD_IP"
        )
    else:
        code = submit_verl(recipe, address, dashboard_port=dashboard_port)
    if code:
        raise typer.Exit(code)


@app.command("trl")
def trl_cmd(
    recipe_path: Path = typer.Argument(..., help="Recipe (YAML); data.train_files: TRL parquet."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: checkpoint.dir)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the GRPOConfig settings and the multi-GPU launch."
    ),
) -> None:
    """GSPO with TRL's GRPOTrainer (sequence-level ratios) on a vision-language model.

    Multi-GPU full fine-tuning: write a sharded config with `deepvision train accelerate-config`,
    then accelerate launch --config_file FILE -m deepvision.cli.main train trl recipe.yaml

    Example: deepvision train trl recipe.yaml --out runs/gspo-trl
    """
    from deepvision.train.recipe import load_recipe
    from deepvision.train.trl import grpo_config_kwargs, run_trl, sample_budget

    recipe = load_recipe(recipe_path)
    if dry_run:
        for k, v in grpo_config_kwargs(recipe, out).items():
            typer.echo(f"{k}: {v!r}")
        processes = recipe.preset.gpus_per_node
        typer.echo(f"# samples: {sample_budget(recipe, processes).text()}")
        for line in _multi_gpu_lines(recipe_path, processes, lora=recipe.lora.rank > 0):
            typer.echo(f"# {line}")
        return
    try:
        path = run_trl(recipe, out).output_dir
    except ImportError as exc:
        raise UsageError(f"{exc}; install the extra: pip install 'deepvision[train]'") from None
    info(f"model saved in {path}")


def _multi_gpu_lines(recipe_path: Path, processes: int, lora: bool) -> list[str]:
    """How to launch the recipe on `processes` GPUs: LoRA trains data parallel; full fine-tuning
    of a 7-8B model needs the weights sharded (FSDP, or ZeRO-3 with deepspeed)."""
    from deepvision.train.trl import accelerate_command

    if lora:
        launch = shlex.join(accelerate_command(recipe_path, processes))
        return [f"multi-GPU (LoRA, data parallel): {launch}"]
    config = "accelerate-fsdp.yaml"
    return [
        "multi-GPU, full fine-tuning (weights sharded; --kind zero3 for DeepSpeed ZeRO-3):",
        f"  deepvision train accelerate-config {config} --kind fsdp --processes {processes}",
        "  " + shlex.join(accelerate_command(recipe_path, processes, config_file=config)),
    ]


@app.command("accelerate-config")
def accelerate_config_cmd(
    out: Path = typer.Argument(..., help="Config file to write (YAML)."),
    kind: str = typer.Option("fsdp", "--kind", help="fsdp (torch FSDP2) | zero3 (DeepSpeed)."),
    processes: int = typer.Option(8, "--processes", help="GPUs on the node (one process each)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Write an `accelerate launch --config_file` config that shards a full fine-tuning run.

    Example: deepvision train accelerate-config accelerate-fsdp.yaml --kind fsdp --processes 8
    """
    import importlib.util

    from deepvision.train.trl import SHARDING_KINDS, write_accelerate_config

    if kind not in SHARDING_KINDS:
        raise UsageError(f"must be one of {' | '.join(SHARDING_KINDS)}", param="kind")
    if processes < 1:
        raise UsageError("must be >= 1", param="processes")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it")
    write_accelerate_config(out, kind, processes)
    launch = f"accelerate launch --config_file {out} -m deepvision.cli.main train trl RECIPE"
    info(f"accelerate config written to {out}; launch with: {launch}")
    if kind == "zero3" and importlib.util.find_spec("deepspeed") is None:
        info("ZeRO-3 needs deepspeed on the training machines: pip install 'deepvision[zero3]'")


@app.command("tiny-model")
def tiny_model_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for the model, tokenizer and processor."),
    family: str = typer.Option("qwen2_5_vl", "--family", help=f"{' | '.join(FAMILIES)}"),
    seed: int = typer.Option(0, "--seed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
) -> None:
    """Build a tiny random vision-language model fully offline (needs the `tiny` extra).

    Example: deepvision train tiny-model --family qwen3_vl --out runs/tiny-vlm
    """
    if family not in FAMILIES:
        raise UsageError(f"--family must be one of {', '.join(FAMILIES)}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out} exists and is not empty; pass --overwrite to replace it")
    from deepvision.train.tiny import build_tiny_vlm

    try:
        path = build_tiny_vlm(out, seed=seed, family=family)
    except ImportError as exc:
        raise UsageError(f"{exc}; install the extra: pip install 'deepvision[tiny]'") from None
    console.print(
        f"tiny {family} model in {path}; serve it with: deepvision serve --model {path} "
        "--backend transformers"
    )
