"""`deepvision eval list | run | compare`: thin commands over deepvision.eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deepvision.cli.common import (
    NoSystemPromptOpt,
    SystemPromptFileOpt,
    SystemPromptOpt,
    console,
    info,
    split_list,
    start_servers,
    system_prompt_from,
)
from deepvision.cli.options import (
    ApiKeyEnvOpt,
    AttemptsOpt,
    ConcurrencyOpt,
    EndpointOpt,
    JudgeApiKeyEnvOpt,
    JudgeConcurrencyOpt,
    JudgeEndpointOpt,
    JudgeModelOpt,
    ModelOpt,
    TimeoutOpt,
    build_endpoint,
)
from deepvision.errors import DeepVisionError, UsageError
from deepvision.eval import (
    BENCHMARKS,
    EvalConfig,
    JudgeConfig,
    LoadReport,
    parse_benchmarks,
    run_eval,
)
from deepvision.eval.report import (
    compare_html,
    compare_markdown,
    load_results,
    share_text,
    summary_rows,
    undecided_text,
)
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.progress import staged_progress

app = typer.Typer(
    help="Benchmark evaluation: the seven reference benchmarks (+ embedded `synth`), "
    "metrics, reports, run comparison.",
    no_args_is_help=True,
)


AllowAbsolutePathsOpt = Annotated[
    bool,
    typer.Option(
        "--allow-absolute-paths",
        help="Also read absolute image paths named in benchmark records (relative ones "
        "always stay inside --data-dir; a record naming another is rejected).",
    ),
]


@app.command("list")
def list_cmd(
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder holding benchmark data."),
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
) -> None:
    """List the benchmarks, where their data was found and how many items it holds.

    Example: deepvision eval list --data-dir data/bench
    """
    from rich.table import Table

    table = Table("benchmark", "title", "reference size", "data", "items")
    for name, b in BENCHMARKS.items():
        found = b.locate(data_dir) if data_dir else None
        if name == "synth":
            found = ("embedded", Path("-"))
        if not found:
            table.add_row(name, b.title, str(b.size), "[dim]not found[/]", "-")
            continue
        report = LoadReport()
        try:
            count = sum(1 for _ in b.load(data_dir, report, allow_absolute=allow_absolute_paths))
            where = f"{found[0]}: {found[1]}"
            if report.skipped:
                where += f" ({report.skipped} unusable)"
        except DeepVisionError as exc:
            count, where = 0, f"[red]{exc}[/]"
        table.add_row(name, b.title, str(b.size), where, str(count))
    console.print(table)


@app.command("run")
def run_cmd(
    benchmarks: list[str] = typer.Option(
        ["synth"], "--benchmarks", "-b", help="Comma-separated names; `all` = the seven."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder (re-run the same command to resume)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Folder holding benchmark data."),
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    n: int = typer.Option(1, "--n", help="Samples per item."),
    preset: str = typer.Option("greedy", "--preset", help=f"{', '.join(PRESETS)}."),
    temperature: float = typer.Option(None, "--temperature"),
    top_p: float = typer.Option(None, "--top-p"),
    top_k: int = typer.Option(None, "--top-k"),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    system_prompt: SystemPromptOpt = None,
    system_prompt_file: SystemPromptFileOpt = None,
    no_system_prompt: NoSystemPromptOpt = False,
    limit: int = typer.Option(None, "--limit", help="Only the first N items of each benchmark."),
    concurrency: ConcurrencyOpt = None,
    timeout: TimeoutOpt = None,
    attempts: AttemptsOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    judge_endpoint: JudgeEndpointOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_api_key_env: JudgeApiKeyEnvOpt = None,
    judge_concurrency: JudgeConcurrencyOpt = None,
    backend: str = typer.Option(
        "vllm", "--backend", help="Without --endpoint: vllm | transformers."
    ),
    tp: int = typer.Option(1, "--tp"),
    dp: int = typer.Option(1, "--dp"),
    gpus: str = typer.Option(None, "--gpus"),
    port: int = typer.Option(8000, "--port"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start over in a folder made with other settings."
    ),
) -> None:
    """Evaluate a model: inference, verdicts (rules + optional LLM judge), metrics, reports.

    Example: deepvision eval run --benchmarks wemath,mathvision --data-dir data/bench
    --endpoint http://127.0.0.1:8000/v1 --model Qwen3-VL-8B-Instruct --n 8
    --preset qwen-instruct --max-tokens 32768 --out runs/qwen3vl
    """
    if n < 1:
        raise UsageError("--n must be at least 1")
    benches = parse_benchmarks(split_list(benchmarks))
    try:
        sampling = sampling_params(preset, temperature=temperature, top_p=top_p, top_k=top_k)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    judge = None
    if judge_endpoint or judge_model:  # the judge shares --timeout and --attempts
        judge = JudgeConfig(
            build_endpoint(
                judge_endpoint,
                judge_model,
                judge_api_key_env,
                judge_concurrency,
                timeout,
                attempts,
                prefix="judge_",
            )
        )
    prompt, _ = system_prompt_from(system_prompt, system_prompt_file, no_system_prompt)
    settings = dict(
        benchmarks=[b.name for b in benches],
        out=out,
        data_dir=data_dir,
        n=n,
        sampling=sampling,
        max_tokens=max_tokens,
        system_prompt=prompt,
        limit=limit,
        judge=judge,
        allow_absolute_paths=allow_absolute_paths,
    )
    model_options = (api_key_env, concurrency, timeout, attempts)
    group = None
    if endpoint:  # check the options before any work
        cfg = EvalConfig(endpoint=build_endpoint(endpoint, model, *model_options), **settings)
    elif not model:
        raise UsageError("give --endpoint URL, or a local model folder as --model to serve it")
    else:
        group = start_servers(model, backend, tp, dp, gpus, port, out / "serve-logs")
    try:
        if group is not None:
            served = build_endpoint(group.urls, model, *model_options)
            cfg = EvalConfig(endpoint=served, **settings)
        with staged_progress() as advance:
            results = run_eval(cfg, overwrite=overwrite, progress=advance)
    finally:
        if group is not None:
            group.stop()
    _print_summary(results)
    console.print(f"results: {out / 'results.json'}; reports: {out / 'report.md'}, "
                  f"{out / 'report.html'}")  # fmt: skip
    partial = {name: b for name, b in results["benchmarks"].items() if b["accuracy"]["partial"]}
    for name, b in partial.items():
        info(
            f"[yellow]partial[/] {name}: accuracy {share_text(b['accuracy'])}; {undecided_text(b)}"
        )
    if partial:
        info(f"[yellow]partial[/]: {_how_to_finish(partial)}")
        raise typer.Exit(1)


def _how_to_finish(partial: dict[str, dict]) -> str:
    """What turns the partial figures into results: a re-run resumes (asks only for what has
    no answer or no verdict); records the loader rejected need the data fixed first."""
    hint = "re-run the same command to finish (it asks only for what is undecided)"
    unusable = sum(b.get("skipped_records", 0) for b in partial.values())
    if unusable:
        hint += (
            f"; {unusable} benchmark record(s) were unusable (named in report.md): fix or "
            "remove them in --data-dir first"
        )
    return hint


def _print_summary(results: dict) -> None:
    from rich.table import Table

    head, rows = summary_rows(results)
    table = Table(*head)
    for r in rows:
        table.add_row(*[c.strip("*") for c in r])
    console.print(table)


@app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders; the first is the baseline."),
    out: Path = typer.Option(None, "--out", help="Write compare.md and compare.html here."),
) -> None:
    """The reference-style table (acc / tokens per benchmark, average, deltas vs the first run).

    Example: deepvision eval compare runs/base runs/deepvision --out runs/compare
    """
    loaded = [load_results(r) for r in runs]
    text = compare_markdown(loaded)
    console.print(text, markup=False, highlight=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text, encoding="utf-8")
        (out / "compare.html").write_text(compare_html(loaded), encoding="utf-8")
        console.print(f"wrote {out / 'compare.md'} and {out / 'compare.html'}")
