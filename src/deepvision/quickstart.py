"""`deepvision quickstart`: the main job on one CPU machine in minutes, with nothing
downloaded, showing the thing the toolkit exists for: RL on verifiable visual problems raising
held-out accuracy.

1. the general synthetic data: generate, validate, describe, export for TRL and verl (cheap,
   so every artifact of the data tools is there to look at);
2. the colour task (`data.synth.colour`): training problems and disjoint held-out problems;
3. a tiny Qwen2.5-VL built offline (random weights), its generation restricted to the four
   answers `\\boxed{A}`..`\\boxed{D}` (constrained decoding, saved in its generation config);
4. held-out accuracy BEFORE training: the model served with `transformers serve`, scored by
   `deepvision eval` (benchmark `synth` reading the held-out parquet);
5. GSPO with TRL on CPU;
6. held-out accuracy AFTER training, the trained checkpoint served and scored the same way;
7. `summary.json` and `report.html`: both accuracies side by side, the reward curve.

It sits above `eval` and `train` (it composes them with `data` and `llm`); only the CLI calls it.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepvision.data.export import ExportOptions, export
from deepvision.data.stats import collect_stats, write_stats
from deepvision.data.synth import generate
from deepvision.data.synth.colour import ANSWER_FORMS, colour_split
from deepvision.data.validate import validate
from deepvision.data.writer import ProblemWriter
from deepvision.errors import QuickstartError, ServeError, UsageError
from deepvision.eval import EvalConfig, run_eval
from deepvision.llm import Endpoint, ServeConfig, ServerGroup
from deepvision.llm.presets import sampling_params
from deepvision.records import Problem, Share

STAGES = (
    "synth",
    "validate",
    "stats",
    "export",
    "task",
    "tiny-model",
    "eval-before",
    "train",
    "eval-after",
    "report",
)

ROLLOUTS, PROMPTS_PER_STEP, LR_SCHEDULE = 16, 4, "cosine"
Progress = Callable[[str, int], None] | None
CONSTRAINT = (
    "the model may generate only the four answer tokens \\boxed{A} .. \\boxed{D} "
    "(bad_words_ids in its generation_config.json, which transformers serve applies; the same "
    "restriction during the GSPO rollouts), one token per answer (max_tokens 1, so the eval "
    "reports count every answer as truncated), greedy; an untrained model is thus near chance "
    "(0.25) and no answer is unparsed"
)


@dataclass
class QuickstartConfig:
    out: Path = Path("runs/quickstart")
    problems: int = 64  # general synthetic problems (validate, stats, export)
    train_problems: int = 2000  # colour-task problems GSPO trains on
    heldout: int = 200  # held-out colour problems, evaluated before and after
    steps: int = 250  # GSPO steps
    lr: float = 3e-3
    seed: int = 0
    port: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """torch on one thread, here and in the servers started meanwhile (OMP_NUM_THREADS).
    The tiny model's matrices are too small for threads to help, and on a shared CPU
    threads that wait for each other made each GSPO step 8x slower (0.8 s -> 6.7 s)."""
    import torch

    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


def _write_problems(path: Path, problems: list[Problem]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProblemWriter(path) as w:
        w.write(problems)
    return path


def _gspo_recipe(cfg: QuickstartConfig, model: Path, train_file: Path):
    """The learning benchmark's settings: 4 prompts x 16 rollouts of one token per step,
    on-policy, no KL, lr 3e-3 (a random tiny model needs a large step)."""
    from deepvision.train.recipe import recipe_from_dict

    return recipe_from_dict(
        {
            "name": "quickstart-gspo",
            "model": {"path": str(model), "gradient_checkpointing": False},
            "data": {"train_files": [str(train_file)], "max_response_length": 1},
            "algorithm": {"lr": cfg.lr, "total_steps": cfg.steps, "kl_loss_coef": 0.0},
            "rollout": {"engine": "hf", "n": ROLLOUTS, "temperature": 1.0},
            "logger": ["console"],
            "checkpoint": {"dir": str(cfg.out / "checkpoint"), "save_freq": -1},
            "trl": {
                "per_device_train_batch_size": ROLLOUTS * PROMPTS_PER_STEP,
                "steps_per_generation": 1,
                "use_cpu": True,
                "bf16": False,
                "seed": cfg.seed,
                "logging_steps": max(1, min(5, cfg.steps // 4)),
            },
        }
    )


def evaluate_served(
    model: Path, data_dir: Path, out: Path, port: int | None, progress: Progress = None
) -> dict[str, Any]:
    """Serve `model` with `transformers serve`, evaluate the `synth` benchmark of `data_dir`
    (greedy, one-token answers, no system prompt: as the model is trained), stop the server;
    the benchmark's metrics."""
    serve_cfg = ServeConfig(
        str(model),
        "transformers",
        host="127.0.0.1",
        port=port or _free_port(),
        log_dir=out / "serve-logs",
    )
    try:
        group = ServerGroup(serve_cfg, health_timeout=300).start()
    except ServeError as exc:
        raise QuickstartError(f"serve: {exc}") from None
    try:
        results = run_eval(
            EvalConfig(
                benchmarks=["synth"],
                out=out,
                endpoint=Endpoint(tuple(group.urls), str(model), concurrency=2, timeout=300),
                data_dir=data_dir,
                sampling=sampling_params("greedy"),
                max_tokens=1,
                system_prompt="",
            ),
            progress=progress,
        )
    finally:
        group.stop()
    return results["benchmarks"]["synth"]


def _eval_figures(b: dict[str, Any], out: Path) -> dict[str, Any]:
    """What the summary keeps of one evaluation."""
    return {
        "accuracy": b["accuracy"]["value"],
        "accuracy_share": b["accuracy"],
        "ci95": b["ci95"],
        "items": b["items"],
        "missing": b["missing"],
        "unparsed": b["unparsed"],
        "report": str(out / "report.html"),
        "results": str(out / "results.json"),
    }


class _Stages:
    """Announces each stage and times it (`cfg.timings`: seconds per stage)."""

    def __init__(self, cfg: QuickstartConfig, on_stage: Callable[[str, str], None]) -> None:
        self.cfg, self.on_stage = cfg, on_stage

    @contextlib.contextmanager
    def __call__(self, name: str, msg: str) -> Iterator[None]:
        self.on_stage(name, msg)
        t0 = time.monotonic()
        yield
        self.cfg.timings[name] = round(time.monotonic() - t0, 1)


def _fresh_out(out: Path) -> None:
    """An empty `out`; only a folder an earlier quickstart made is replaced."""
    if out.exists() and any(out.iterdir()):
        if not (out / "data" / "synth.parquet").exists() and not (out / "summary.json").exists():
            raise UsageError(f"{out} exists and is not a quickstart folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _data_tools(cfg: QuickstartConfig, stage: _Stages, summary: dict[str, Any]) -> None:
    """The data tools on general synthetic problems: generate, validate, describe, export."""
    data, art = cfg.out / "data", summary["artifacts"]
    with stage("synth", f"generating {cfg.problems} verifiable visual problems"):
        problems = list(generate(cfg.problems, seed=cfg.seed))
        art["problems"] = _write_problems(data / "synth.parquet", problems)
    with stage("validate", "checking schema, images, placeholders, answers, ids"):
        report = validate([art["problems"]], decode_images=True, workers=1)
        if report.rejected:
            raise QuickstartError(f"validate: {report.rejected} generated problem(s) rejected")
        summary["figures"]["valid_rows"] = report.valid
    with stage("stats", "counting topics, visual elements, answer kinds; plotting"):
        stats = collect_stats([art["problems"]], workers=1)
        write_stats(stats, cfg.out / "stats", [str(art["problems"])])
        art["stats"] = cfg.out / "stats" / "summary.md"
    with stage("export", "exporting for TRL and verl"):
        art["train_trl"], art["train_verl"] = (
            data / "train_trl.parquet",
            data / "train_verl.parquet",
        )
        export([art["problems"]], art["train_trl"], "trl", opts=ExportOptions())
        export([art["problems"]], art["train_verl"], "verl", opts=ExportOptions())


def _colour_task(cfg: QuickstartConfig, stage: _Stages, art: dict[str, Any]) -> None:
    """Training problems (exported for TRL) and held-out ones (`data/heldout/synth.parquet`,
    where the `synth` benchmark reads them)."""
    data = cfg.out / "data"
    msg = f"colour task: {cfg.train_problems} training, {cfg.heldout} held-out problems"
    with stage("task", msg):
        train, heldout = colour_split(cfg.train_problems, cfg.heldout, cfg.seed)
        art["colour_train"] = _write_problems(data / "colour-train.parquet", train)
        art["colour_train_trl"] = data / "colour-train_trl.parquet"
        # No system prompt: a one-token answer needs none, and eval sends none either.
        opts = ExportOptions(system_prompt=None)
        export([art["colour_train"]], art["colour_train_trl"], "trl", opts=opts)
        art["heldout"] = _write_problems(data / "heldout" / "synth.parquet", heldout)


def _learn(
    cfg: QuickstartConfig, stage: _Stages, summary: dict[str, Any], progress: Progress
) -> None:
    """Tiny model -> held-out accuracy before -> GSPO -> held-out accuracy after."""
    try:
        from deepvision.train.tiny import build_tiny_vlm, restrict_generation
        from deepvision.train.trl import run_trl
    except ImportError as exc:
        raise UsageError(f"{exc}; the quickstart trains: pip install -e '.[train]'") from None
    out, art, fig = cfg.out, summary["artifacts"], summary["figures"]
    heldout = art["heldout"].parent
    with _one_thread():
        with stage("tiny-model", "building a tiny Qwen2.5-VL offline (random weights)"):
            model = build_tiny_vlm(out / "tiny-vlm", seed=cfg.seed, extra_tokens=ANSWER_FORMS)
            bad_words = restrict_generation(model, ANSWER_FORMS)
            art["tiny_model"] = model
        with stage("eval-before", f"serving the untrained model; {cfg.heldout} held-out items"):
            before = evaluate_served(model, heldout, out / "eval-before", cfg.port, progress)
        with stage("train", f"{cfg.steps} GSPO steps with TRL on CPU (sequence-level ratios)"):
            run = run_trl(
                _gspo_recipe(cfg, model, art["colour_train_trl"]),
                out / "checkpoint",
                config_overrides={
                    "generation_kwargs": {"bad_words_ids": bad_words},
                    # Decayed to 0: a constant rate unlearnt the task once every rollout was
                    # right (seed 0: held-out accuracy 1.0 at step 175, 0.51 at step 300).
                    "lr_scheduler_type": LR_SCHEDULE,
                },
            )
            art["checkpoint"] = run.output_dir
        with stage("eval-after", f"serving the trained checkpoint; {cfg.heldout} held-out items"):
            after = evaluate_served(run.output_dir, heldout, out / "eval-after", cfg.port, progress)
    history = run.trainer.state.log_history
    fig["train_steps"] = run.trainer.state.global_step
    fig["train_settings"] = {
        "lr": cfg.lr,
        "lr_schedule": LR_SCHEDULE,
        "prompts_per_step": PROMPTS_PER_STEP,
        "rollouts_per_prompt": ROLLOUTS,
        "train_problems": cfg.train_problems,
    }
    fig["reward_curve"] = [
        {"step": h["step"], "reward": h["reward"]} for h in history if "reward" in h
    ]
    fig["heldout"] = {
        "before": _eval_figures(before, out / "eval-before"),
        "after": _eval_figures(after, out / "eval-after"),
    }
    fig["heldout_accuracy_before"] = before["accuracy"]["value"]
    fig["heldout_accuracy_after"] = after["accuracy"]["value"]


def run_quickstart(
    cfg: QuickstartConfig,
    on_stage: Callable[[str, str], None] = lambda stage, msg: None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Run every stage; returns the summary (artifacts, figures, seconds per stage)."""
    _fresh_out(cfg.out)
    stage = _Stages(cfg, on_stage)
    summary: dict[str, Any] = {"artifacts": {}, "figures": {}, "constrained_decoding": CONSTRAINT}
    _data_tools(cfg, stage, summary)
    _colour_task(cfg, stage, summary["artifacts"])
    _learn(cfg, stage, summary, progress)
    with stage("report", "reward curve, report.html, summary.json"):
        report = write_report(cfg.out, summary["figures"], CONSTRAINT)
        summary["artifacts"]["report"], summary["artifacts"]["reward_curve"] = report
    summary["seconds"] = dict(cfg.timings)
    summary["artifacts"] = {k: str(v) for k, v in summary["artifacts"].items()}
    text = json.dumps(summary, indent=1) + "\n"
    (cfg.out / "summary.json").write_text(text, encoding="utf-8")
    return summary


def _accuracy_text(share: dict[str, Any]) -> str:
    return Share(share["hits"], share["decided"], share["total"]).text(digits=1)


def plot_reward_curve(
    curve: list[dict[str, float]], before: float | None, after: float | None, png: Path
) -> Path:
    """The mean training reward per logged step, with the held-out accuracies before and
    after as reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(
        [p["step"] for p in curve],
        [p["reward"] for p in curve],
        marker="o",
        ms=3,
        label="mean reward of the rollouts (sampled)",
    )
    references = (
        (before, "--", "gray", "held-out accuracy before"),
        (after, ":", "green", "held-out accuracy after"),
    )
    for value, style, colour, label in references:
        if value is not None:
            ax.axhline(value, ls=style, c=colour, label=f"{label} ({value:.1%})")
    ax.set(
        xlabel="GSPO step",
        ylabel="reward / accuracy",
        ylim=(0, 1.05),
        title="GSPO (TRL, CPU) on the colour task, tiny Qwen2.5-VL",
    )
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=3))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


_CSS = (
    "body{font-family:sans-serif;max-width:52em;margin:2em auto}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left}"
)


def write_report(out: Path, fig: dict[str, Any], note: str) -> tuple[Path, Path]:
    """`report.html` (beside the eval folders it links to) and the reward-curve PNG."""
    before, after = fig["heldout"]["before"], fig["heldout"]["after"]
    t = fig["train_settings"]
    png = plot_reward_curve(
        fig["reward_curve"], before["accuracy"], after["accuracy"], out / "reward_curve.png"
    )

    def ci(e: dict[str, Any]) -> str:
        return "-" if not e["ci95"] else f"{e['ci95'][0]:.2f}-{e['ci95'][1]:.2f}"

    def link(e: dict[str, Any]) -> str:
        rel = Path(e["report"]).relative_to(out).as_posix()
        return f"<a href='{html.escape(rel)}'>{html.escape(rel)}</a>"

    rows = [
        (
            "held-out accuracy",
            _accuracy_text(before["accuracy_share"]),
            _accuracy_text(after["accuracy_share"]),
        ),
        ("95% interval", ci(before), ci(after)),
        (
            "items answered / missing",
            f"{before['items']} / {before['missing']}",
            f"{after['items']} / {after['missing']}",
        ),
        ("unparsed answers", str(before["unparsed"]), str(after["unparsed"])),
    ]
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
        for k, a, b in rows
    )
    body += f"<tr><th>evaluation report</th><td>{link(before)}</td><td>{link(after)}</td></tr>"
    page = f"""<!doctype html><html><head><meta charset='utf-8'>
<title>DeepVision quickstart</title><style>{_CSS}</style></head><body>
<h1>DeepVision quickstart: GSPO on the colour task</h1>
<p>A tiny Qwen2.5-VL with random weights, trained with GSPO (TRL, CPU) for {fig["train_steps"]}
steps ({t["prompts_per_step"]} prompts x {t["rollouts_per_prompt"]} rollouts per step,
lr {t["lr"]:g}, {t["lr_schedule"]} schedule, no KL) on the colour task: which of four colours
is the square? Held-out problems (images never seen in training) served with <code>transformers
serve</code> and scored by <code>deepvision eval</code>, before and after training.</p>
<table><tr><th></th><th>before training</th><th>after GSPO</th></tr>{body}</table>
<p><img src='{png.name}' alt='reward curve' width='640'></p>
<p><b>Constrained decoding</b>: {html.escape(note)}.</p>
<p>Data tools on the general synthetic problems: <a href='stats/summary.md'>stats/summary.md</a>;
all artifacts and timings: <a href='summary.json'>summary.json</a>.</p></body></html>
"""
    report = out / "report.html"
    report.write_text(page, encoding="utf-8")
    return report, png
