"""`deepvision quickstart`: the whole loop on one CPU machine in minutes, with nothing
downloaded: generated problems -> validate and describe -> export for TRL (and verl) -> a tiny
vision-language model built offline -> a few GSPO steps with TRL -> serve the trained checkpoint
with `transformers serve` -> evaluate it on the embedded `synth` benchmark -> verdicts, metrics
and reports.

The tiny model is random: its answers are nonsense and its accuracy near zero. The point is
that every stage runs on real engines and leaves its artifact where the summary says. It sits
above `eval` and `train` (it composes them with `data` and `llm`); only the CLI calls it.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepvision.data.export import ExportOptions, export
from deepvision.data.stats import collect_stats, write_stats
from deepvision.data.synth import generate
from deepvision.data.validate import validate
from deepvision.data.writer import ProblemWriter
from deepvision.errors import QuickstartError, ServeError, UsageError
from deepvision.eval import EvalConfig, run_eval
from deepvision.llm import Endpoint, ServeConfig, ServerGroup

STAGES = ("synth", "validate", "stats", "export", "tiny-model", "train", "serve", "eval")


@dataclass
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    problems: int = 64  # generated training problems
    steps: int = 3  # GSPO steps
    eval_items: int = 24  # items of the synth benchmark evaluated
    max_tokens: int = 24  # per evaluation answer
    seed: int = 0
    port: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_recipe(model: Path, train_file: Path, steps: int, seed: int):
    from deepvision.train.recipe import recipe_from_dict

    return recipe_from_dict(
        {
            "name": "quickstart-gspo",
            "model": {"path": str(model), "gradient_checkpointing": False},
            "data": {"train_files": [str(train_file)], "max_prompt_length": 1024,
                     "max_response_length": 16},
            "algorithm": {"lr": 1e-4, "total_steps": steps, "kl_loss_coef": 0.0},
            "rollout": {"engine": "hf", "n": 4},
            "logger": ["console"],
            "checkpoint": {"dir": str(train_file.parent / "checkpoint"), "save_freq": -1},
            "trl": {"per_device_train_batch_size": 8, "steps_per_generation": 1,
                    "use_cpu": True, "bf16": False, "seed": seed},
        }
    )  # fmt: skip


def run_quickstart(
    cfg: QuickstartConfig,
    on_stage: Callable[[str, str], None] = lambda stage, msg: None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Run every stage; returns the summary (artifacts, figures, seconds per stage)."""
    out = cfg.out
    if out.exists() and any(out.iterdir()):
        # Replace only a folder an earlier quickstart made; anything else is the user's.
        if not (out / "data" / "synth.parquet").exists() and not (out / "summary.json").exists():
            raise UsageError(f"{out} exists and is not a quickstart folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    data, summary = out / "data", {"artifacts": {}, "figures": {}}
    data.mkdir()
    art = summary["artifacts"]

    def stage(name: str, msg: str) -> None:
        on_stage(name, msg)
        cfg.timings[name] = time.monotonic()

    def done(name: str) -> None:
        cfg.timings[name] = round(time.monotonic() - cfg.timings[name], 1)

    stage("synth", f"generating {cfg.problems} verifiable visual problems")
    problems_file = data / "synth.parquet"
    with ProblemWriter(problems_file) as w:
        w.write(list(generate(cfg.problems, seed=cfg.seed)))
    art["problems"] = problems_file
    done("synth")

    stage("validate", "checking schema, images, placeholders, answers, ids")
    report = validate([problems_file], decode_images=True, workers=1)
    if report.rejected:
        raise QuickstartError(f"validate: {report.rejected} generated problem(s) rejected")
    summary["figures"]["valid_rows"] = report.valid
    done("validate")

    stage("stats", "counting topics, visual elements, answer kinds; plotting")
    stats = collect_stats([problems_file], workers=1)
    write_stats(stats, out / "stats", [str(problems_file)])
    art["stats"] = out / "stats" / "summary.md"
    done("stats")

    stage("export", "exporting for TRL and verl")
    trl_file, verl_file = data / "train_trl.parquet", data / "train_verl.parquet"
    export([problems_file], trl_file, "trl", opts=ExportOptions())
    export([problems_file], verl_file, "verl", opts=ExportOptions())
    art["train_trl"], art["train_verl"] = trl_file, verl_file
    done("export")

    stage("tiny-model", "building a tiny Qwen2.5-VL offline (random weights)")
    try:
        from deepvision.train.tiny import build_tiny_vlm
        from deepvision.train.trl import run_trl
    except ImportError as exc:
        raise UsageError(f"{exc}; the quickstart trains: pip install -e '.[train]'") from None
    model = build_tiny_vlm(out / "tiny-vlm", seed=cfg.seed)
    art["tiny_model"] = model
    done("tiny-model")

    stage("train", f"{cfg.steps} GSPO steps with TRL on CPU (sequence-level ratios)")
    recipe = _tiny_recipe(model, trl_file, cfg.steps, cfg.seed)
    run = run_trl(recipe, out / "checkpoint")
    checkpoint = run.output_dir
    history = [h for h in run.trainer.state.log_history if "reward" in h]
    summary["figures"]["train_steps"] = len(history)
    summary["figures"]["train_reward"] = [h.get("reward") for h in history]
    art["checkpoint"] = checkpoint
    done("train")

    stage("serve", "serving the trained checkpoint with transformers serve")
    serve_cfg = ServeConfig(str(checkpoint), "transformers", 1, 1, None, "127.0.0.1",
                            cfg.port or _free_port(), out / "serve-logs")  # fmt: skip
    try:
        group = ServerGroup(serve_cfg, health_timeout=300).start()
    except ServeError as exc:
        raise QuickstartError(f"serve: {exc}") from None
    done("serve")
    try:
        stage("eval", f"evaluating on the synth benchmark ({cfg.eval_items} items), judging")
        results = run_eval(
            EvalConfig(
                benchmarks=["synth"],
                out=out / "eval",
                endpoint=Endpoint(tuple(group.urls), str(checkpoint), concurrency=2, timeout=300),
                max_tokens=cfg.max_tokens,
                limit=cfg.eval_items,
            ),
            progress=progress,
        )
    finally:
        group.stop()
    b = results["benchmarks"]["synth"]
    summary["figures"].update(
        eval_items=b["items"], eval_accuracy=b["accuracy"]["value"],
        eval_accuracy_share=b["accuracy"], eval_unparsed=b["unparsed"],
        eval_mean_tokens=b["mean_tokens"], eval_missing=b["missing"],
    )  # fmt: skip
    art["eval_results"] = out / "eval" / "results.json"
    art["eval_report"] = out / "eval" / "report.html"
    done("eval")
    summary["seconds"] = dict(cfg.timings)
    summary["artifacts"] = {k: str(v) for k, v in art.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary
