"""`deepvision eval list | run | compare`: thin commands over deepvision.eval."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape

from deepvision.cli.common import (
    AllowAbsolutePathsOpt,
    NoSystemPromptOpt,
    SystemPromptFileOpt,
    SystemPromptOpt,
    console,
    info,
    note,
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
from deepvision.eval.download import (
    benchmarks_with_data,
    download,
    files_text,
    hub_and_by_hand,
    parse_revisions,
)
from deepvision.eval.report import (
    compare_html,
    compare_markdown,
    load_results,
    setting_differences,
    share_text,
    summary_markdown,
    summary_rows,
    undecided_text,
)
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.progress import enabled as bars_enabled
from deepvision.progress import is_quiet, staged_progress

app = typer.Typer(
    help="Benchmark evaluation: the seven reference benchmarks (+ embedded `synth`), "
    "metrics, reports, run comparison.",
    no_args_is_help=True,
)


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
        found = b.locate(data_dir) if data_dir or name == "synth" else None
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


@app.command("download")
def download_cmd(
    benchmarks: list[str] = typer.Argument(
        ..., help="Benchmark names (space- or comma-separated; `all` = the seven)."
    ),
    to: Path = typer.Option(..., "--to", help="Data folder: one sub-folder per benchmark."),
    revision: list[str] = typer.Option(
        None, "--revision", help="NAME=REV: the Hub revision (branch, tag, commit) of NAME."
    ),
) -> None:
    """Fetch benchmarks' official files by name from the Hugging Face Hub (only what the
    loaders read), into the layout `eval run --data-dir` reads. A re-run skips what is there
    and resumes a cut download; the commit of each is recorded in
    DIR/deepvision-downloads.json.

    Example: deepvision eval download mathvision mmmu m3cot --to data/bench
    """
    names = [b.name for b in parse_benchmarks(split_list(benchmarks))]
    revisions = parse_revisions(split_list(revision))
    on_hub, by_hand = hub_and_by_hand(names, to)
    for fetched in download(on_hub, to, revisions):
        what = "already there" if fetched.already_there else "fetched"
        size = sum(fetched.files.values()) / 1e6
        info(
            f"{fetched.name}: {what}, {files_text(len(fetched.files))}, {size:.1f} MB, "
            f"{fetched.repo}@{fetched.commit[:12]} -> {fetched.folder}"
        )
    for name, hint in by_hand.items():
        info(f"[yellow]not on the Hub[/] {name}: {hint}")
    if by_hand:
        raise typer.Exit(1)
    info(f"evaluate them with: deepvision eval run --data-dir {to} --benchmarks {','.join(names)}")


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
    download_missing: bool = typer.Option(
        False,
        "--download",
        help="Fetch the benchmarks --data-dir lacks from the Hugging Face Hub into it first.",
    ),
    revision: list[str] = typer.Option(
        None, "--revision", help="With --download: NAME=REV, the Hub revision of a benchmark."
    ),
    skip_missing: bool = typer.Option(
        False,
        "--skip-missing",
        help="Run the benchmarks whose data is there; list the others as skipped.",
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
    revisions = parse_revisions(split_list(revision))
    try:
        sampling = sampling_params(preset, temperature=temperature, top_p=top_p, top_k=top_k)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if n > 1 and sampling.get("temperature") == 0:
        info(
            f"[yellow]warning[/]: --n {n} with greedy decoding (temperature 0) asks for {n} "
            "identical samples; pass@k, maj@n and the CI then mean nothing. Use a sampling "
            "preset (--preset qwen-instruct) or --temperature."
        )
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
    model_options = (api_key_env, concurrency, timeout, attempts)
    served = None
    if endpoint:  # check the options before any work
        served = build_endpoint(endpoint, model, *model_options)
    elif not model:
        raise UsageError("give --endpoint URL, or a local model folder as --model to serve it")
    # Before any request (and before servers start): data for every benchmark, or one error.
    benches, skipped = benchmarks_with_data(
        benches, data_dir, download_missing, revisions, skip_missing
    )
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
        skipped=skipped,
    )
    group = None
    if served is None:
        group = start_servers(model, backend, tp, dp, gpus, port, out / "serve-logs")
    try:
        if group is not None:
            served = build_endpoint(group.urls, model, *model_options)
        cfg = EvalConfig(endpoint=served, **settings)
        totals = {f"{b.name}: infer": min(limit or b.size, b.size) for b in benches}
        with run_progress(totals) as advance:
            results = run_eval(cfg, overwrite=overwrite, progress=advance)
    finally:
        if group is not None:
            group.stop()
    _print_summary(results)
    for name, why in skipped.items():
        info(f"[yellow]skipped[/] {name}: {escape(why)}")
    console.print(
        f"results: {out / 'results.json'}; reports: {out / 'report.md'}, {out / 'report.html'}",
        soft_wrap=True,
        highlight=False,
    )
    partial = {name: b for name, b in results["benchmarks"].items() if b["accuracy"]["partial"]}
    for name, b in partial.items():
        info(
            f"[yellow]partial[/] {name}: accuracy {share_text(b['accuracy'])}; {undecided_text(b)}"
        )
    if partial:
        info(f"[yellow]partial[/]: {_how_to_finish(partial)}")
    for name, why in (results.get("failed") or {}).items():
        info(f"[red]failed[/] {name}: {why}")
    if partial or results.get("failed"):
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


class PipedProgress:
    """Progress for logs (stderr not a terminal): per stage, a plain `done/total, rate, ETA`
    line at most once every `every_s` seconds (and none for a stage that ends sooner)."""

    def __init__(
        self,
        totals: dict[str, int],
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] = note,
    ) -> None:
        self.totals, self.every_s, self.clock, self.write = totals, every_s, clock, write
        self.done: dict[str, int] = {}
        self.started: dict[str, float] = {}
        self.last = clock()

    def __call__(self, stage: str, n: int) -> None:
        now = self.clock()
        self.started.setdefault(stage, now)
        self.done[stage] = self.done.get(stage, 0) + n
        if now - self.last >= self.every_s:
            self.last = now
            self.write(self.line(stage, now))

    def line(self, stage: str, now: float) -> str:
        done, total = self.done[stage], self.totals.get(stage)
        rate = done / max(now - self.started[stage], 1e-9)
        text = f"{stage}: {done}" + (f"/{total}" if total else "") + f", {rate:.1f}/s"
        if total and done < total and rate > 0:
            text += f", ETA {_duration((total - done) / rate)}"
        return text


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


@contextmanager
def run_progress(totals: dict[str, int]) -> Iterator[Callable[[str, int], None]]:
    """Live bars on a terminal; plain lines at most once a minute when stderr is piped (the
    progress convention); nothing under --quiet."""
    if bars_enabled() or is_quiet():
        with staged_progress() as advance:
            yield advance
        return
    yield PipedProgress(totals)


def _print_summary(results: dict) -> None:
    """The results table: drawn on a terminal wide enough for it; otherwise (a log, a pipe,
    a narrow window) a plain Markdown table with every number in full."""
    from rich.table import Table

    head, rows = summary_rows(results)
    width = (
        sum(max(len(c.strip("*")) for c in col) + 3 for col in zip(head, *rows, strict=True)) + 1
    )
    if not console.is_terminal or width > console.width:
        sys.stdout.write(summary_markdown(results) + "\n")
        sys.stdout.flush()
        return
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
    for difference in setting_differences(loaded):
        info(
            f"[yellow]warning[/]: the runs differ in {difference}: their figures are not "
            "comparable as they stand"
        )
    text = compare_markdown(loaded)
    console.print(text, markup=False, highlight=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(text, encoding="utf-8")
        (out / "compare.html").write_text(compare_html(loaded), encoding="utf-8")
        console.print(f"wrote {out / 'compare.md'} and {out / 'compare.html'}")
