"""`deepvision curate ...`: the curation stages, the pipeline and ingest (thin wiring; the
logic lives in deepvision.curate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer

from deepvision.cli.common import AllowAbsolutePathsOpt, console, info, split_list
from deepvision.cli.options import (
    ApiKeyEnvOpt,
    AttemptsOpt,
    ConcurrencyOpt,
    EndpointOpt,
    ModelOpt,
    TimeoutOpt,
    build_endpoint,
    check_now,
)
from deepvision.curate import STAGE_NAMES, STAGES, ModelConfig, StageReport, run_stage
from deepvision.curate.stage import DEFAULT_CHUNK_SIZE
from deepvision.errors import UsageError
from deepvision.records import Problem

app = typer.Typer(
    help=(
        "Curation: raw problems -> verified RL dataset. Each stage reads Problems and writes "
        "the kept ones, OUT's .drops.jsonl (every dropped problem and why) and .report.json; "
        "re-running a killed stage resumes it. `run PIPELINE.yaml` runs stages in order and "
        "writes a funnel report."
    ),
    no_args_is_help=True,
)

IN = typer.Argument(
    ..., help="Input Problems: parquet, parquet folder, save_to_disk folder, JSONL."
)
OUT = typer.Argument(..., help="Output parquet of the kept problems.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace outputs and start over.")
CHUNK = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", help="Problems per resumable chunk.")
ENGINE = typer.Option("local", "--engine", help="local (streaming) or ray (Ray Data).")
KEEP_WORK = typer.Option(False, "--keep-work", help="Keep OUT.work/ (model replies) after.")
MAX_TOKENS = typer.Option(1024, "--max-tokens", help="Tokens per reply.")
RETRIES = typer.Option(2, "--retries", help="Re-asks of a reply that cannot be parsed.")
PROMPT = typer.Option(None, "--prompt", help="System prompt template file (overrides default).")
USER_PROMPT = typer.Option(None, "--user-prompt", help="User prompt template file.")


def _model(endpoint, model, key_env, concurrency, max_tokens, timeout, attempts, temperature):
    """The stage's ModelConfig; its Endpoint is built and its servers checked now, before
    any input is read (options left out take the Endpoint's defaults)."""
    ep = build_endpoint(endpoint, model, key_env, concurrency, timeout, attempts)
    check_now(ep)
    return ModelConfig(
        endpoints=list(ep.urls),
        model=ep.model,
        api_key_env=key_env,
        concurrency=ep.concurrency,
        max_tokens=max_tokens,
        timeout=ep.timeout,
        attempts=ep.attempts,
        temperature=temperature,
    )


def print_report(rep: StageReport) -> None:
    dropped = sum(rep.dropped.values())
    console.print(
        f"[bold]{rep.stage}[/]: rows in {rep.rows_in} = kept {rep.kept} + dropped {dropped}"
        + (f" (resumed {rep.resumed_chunks} chunk(s))" if rep.resumed_chunks else "")
    )
    for reason, n in rep.dropped.most_common():
        console.print(f"  dropped {n:>7}  {reason}")
    for note, n in rep.notes.most_common():
        console.print(
            f"  [yellow]{note}[/] {n} (reasons, raw replies: {rep.outputs.get('unparsed')})"
        )
    if rep.extra.get("conflicts"):
        console.print(
            f"  [yellow]conflicts[/] {rep.extra['conflicts']}: same question and image with "
            f"answers that differ, every version kept (listed in {rep.extra['groups_file']})"
        )
    if rep.usage:
        console.print(
            f"  tokens: prompt {rep.usage.get('prompt_tokens', 0)}, "
            f"completion {rep.usage.get('completion_tokens', 0)}"
        )
    for key in ("out", "drops", "report"):
        console.print(f"  {key}: {rep.outputs[key]}")


def _finish(rep: StageReport) -> None:
    print_report(rep)
    if rep.notes or rep.dropped.get("unreadable_row"):
        raise typer.Exit(1)


def _run(stage, inp, out, overwrite, chunk_size, engine, keep_work) -> None:
    rep = run_stage(
        stage,
        [inp],
        out,
        overwrite=overwrite,
        chunk_size=chunk_size,
        engine=engine,
        keep_work=keep_work,
    )
    _finish(rep)


@app.command("validity")
def validity_cmd(
    inp: Path = IN,
    out: Path = OUT,
    keywords: Path = typer.Option(None, "--keywords", help="YAML/JSON: category -> patterns."),
    rules_only: bool = typer.Option(False, "--rules-only", help="Keyword rules only, no VLM."),
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_tokens: int = MAX_TOKENS,
    timeout: TimeoutOpt = None,
    attempts: AttemptsOpt = None,
    retries: int = RETRIES,
    on_unparsed: str = typer.Option("drop", "--on-unparsed", help="keep or drop."),
    prompt: Path = PROMPT,
    user_prompt: Path = USER_PROMPT,
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """Keyword rules, then a VLM: keep single-answer, image-dependent, checkable problems.

    Example: deepvision curate validity raw.parquet valid.parquet
    --endpoint http://127.0.0.1:8000/v1 --model Qwen3-VL-32B-Instruct
    """
    cfg = (
        None
        if rules_only
        else _model(endpoint, model, api_key_env, concurrency, max_tokens, timeout, attempts, 0.0)
    )
    stage = STAGES["validity"](
        cfg,
        keywords=keywords,
        rules_only=rules_only,
        prompt=prompt,
        user_prompt=user_prompt,
        retries=retries,
        on_unparsed=on_unparsed,
    )
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


@app.command("difficulty")
def difficulty_cmd(
    inp: Path = IN,
    out: Path = OUT,
    n: int = typer.Option(8, "--n", help="Rollouts per problem."),
    band: str = typer.Option("1/8..7/8", "--band", help="Pass-rate band to keep (inclusive)."),
    upper_band: str = typer.Option(None, "--upper-band", help="e.g. 5/8..7/8: select within."),
    upper_target: int = typer.Option(None, "--upper-target", help="Problems kept from it."),
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_tokens: int = typer.Option(8192, "--max-tokens", help="Tokens per rollout."),
    temperature: float = typer.Option(1.0, "--temperature", help="Rollout temperature."),
    timeout: TimeoutOpt = None,
    attempts: AttemptsOpt = None,
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """n rollouts per problem, judged by `deepvision verify`; keep a pass-rate band.

    Example: deepvision curate difficulty valid.parquet mid.parquet --n 8 --band 1/8..7/8
    --upper-band 5/8..7/8 --upper-target 20000 --endpoint http://127.0.0.1:8000/v1
    --model MiMo-VL-7B-SFT
    """
    cfg = _model(
        endpoint, model, api_key_env, concurrency, max_tokens, timeout, attempts, temperature
    )
    stage = STAGES["difficulty"](
        cfg, n=n, band=band, upper_band=upper_band, upper_target=upper_target
    )
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


@app.command("correctness")
def correctness_cmd(
    inp: Path = IN,
    out: Path = OUT,
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_tokens: int = MAX_TOKENS,
    timeout: TimeoutOpt = None,
    attempts: AttemptsOpt = None,
    retries: int = RETRIES,
    on_unparsed: str = typer.Option("drop", "--on-unparsed", help="keep or drop."),
    prompt: Path = PROMPT,
    user_prompt: Path = USER_PROMPT,
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """A strong VLM labels image + question + answer; keep CONSISTENT only.

    Example: deepvision curate correctness mid.parquet ok.parquet
    --endpoint https://api.example.com/v1 --model gemini-3-flash --api-key-env JUDGE_KEY
    """
    cfg = _model(endpoint, model, api_key_env, concurrency, max_tokens, timeout, attempts, 0.0)
    stage = STAGES["correctness"](
        cfg, prompt=prompt, user_prompt=user_prompt, retries=retries, on_unparsed=on_unparsed
    )
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


@app.command("annotate")
def annotate_cmd(
    inp: Path = IN,
    out: Path = OUT,
    taxonomy: Path = typer.Option(None, "--taxonomy", help="Taxonomy JSON (default: built in)."),
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    max_tokens: int = MAX_TOKENS,
    timeout: TimeoutOpt = None,
    attempts: AttemptsOpt = None,
    retries: int = RETRIES,
    on_unparsed: str = typer.Option("keep", "--on-unparsed", help="keep or drop."),
    prompt: Path = PROMPT,
    user_prompt: Path = USER_PROMPT,
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """Topic path, knowledge points and visual elements from a VLM, within a taxonomy.

    Example: deepvision curate annotate ok.parquet annotated.parquet
    --endpoint http://127.0.0.1:8000/v1 --model Qwen3-VL-32B-Instruct
    """
    cfg = _model(endpoint, model, api_key_env, concurrency, max_tokens, timeout, attempts, 0.0)
    stage = STAGES["annotate"](
        cfg,
        taxonomy=taxonomy,
        prompt=prompt,
        user_prompt=user_prompt,
        retries=retries,
        on_unparsed=on_unparsed,
    )
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


@app.command("dedup")
def dedup_cmd(
    inp: Path = IN,
    out: Path = OUT,
    text_threshold: float = typer.Option(0.8, "--text-threshold", help="MinHash Jaccard."),
    image_distance: int = typer.Option(4, "--image-distance", help="dHash Hamming distance."),
    workers: int = typer.Option(0, "--workers", help="Hashing processes (0: all cores)."),
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """Exact and near-duplicate problems (question and images); one kept per group.

    Example: deepvision curate dedup all.parquet unique.parquet
    """
    stage = STAGES["dedup"](text_threshold, image_distance, workers or None)
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


def benchmark_references(names: list[str], data_dir: Path | None) -> Iterator[tuple[str, Problem]]:
    """(benchmark, Problem) for every item of the named benchmarks of the eval registry."""
    try:
        from deepvision.eval import BENCHMARK_NAMES, load_problems
    except ImportError:
        raise UsageError("the evaluation registry (deepvision.eval) is not available") from None
    chosen = list(BENCHMARK_NAMES) if names == ["all"] else names
    unknown = [n for n in chosen if n not in BENCHMARK_NAMES]
    if unknown:
        raise UsageError(f"unknown benchmarks {unknown}; known: {', '.join(BENCHMARK_NAMES)}")
    for name in chosen:
        for p in load_problems(name, data_dir):
            yield name, p


@app.command("decontam")
def decontam_cmd(
    inp: Path = IN,
    out: Path = OUT,
    benchmarks: list[str] = typer.Option(
        ["all"], "--benchmarks", help="Benchmarks of the eval registry (comma list or all)."
    ),
    data_dir: Path = typer.Option(None, "--data-dir", help="Where benchmark data lives."),
    ngram: int = typer.Option(8, "--ngram", help="Word n-gram length."),
    text_threshold: float = typer.Option(0.5, "--text-threshold", help="Shared n-gram share."),
    image_distance: int = typer.Option(3, "--image-distance", help="dHash Hamming distance."),
    overwrite: bool = OVERWRITE,
    chunk_size: int = CHUNK,
    engine: str = ENGINE,
    keep_work: bool = KEEP_WORK,
) -> None:
    """Drop problems whose question or image matches a benchmark item; report per benchmark.

    Example: deepvision curate decontam unique.parquet clean.parquet --benchmarks all
    --data-dir data/benchmarks
    """
    refs = benchmark_references(split_list(benchmarks), data_dir)
    stage = STAGES["decontam"](
        refs, ngram=ngram, text_threshold=text_threshold, image_distance=image_distance
    )
    info(f"reference items: {dict(stage.bench_sizes)}")
    _run(stage, inp, out, overwrite, chunk_size, engine, keep_work)


@app.command("run")
def run_cmd(
    pipeline: Path = typer.Argument(..., help="PIPELINE.yaml (see docs/curation.md)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Run every stage again."),
    engine: str = typer.Option(None, "--engine", help="Override the config: local or ray."),
) -> None:
    """Run the stages of a pipeline config in order; write the funnel report.

    Stages: {stages}.

    Example: deepvision curate run pipeline.yaml
    """
    from deepvision.curate.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig.load(pipeline)
    if engine:
        cfg.engine = engine
    funnel = run_pipeline(
        cfg,
        references=lambda names, d: benchmark_references(names, d),
        overwrite=overwrite,
        on_stage=print_report,
    )
    console.print(
        f"[bold]funnel[/]: {funnel['rows_in']} in -> {funnel['rows_out']} out; "
        f"report {funnel['markdown']}"
    )
    if any(s["notes"] or s["dropped"].get("unreadable_row") for s in funnel["stages"]):
        raise typer.Exit(1)


run_cmd.__doc__ = run_cmd.__doc__.format(stages=", ".join(STAGE_NAMES))


@app.command("ingest")
def ingest_cmd(
    src: Path = typer.Argument(..., help="JSONL, image folder with an index, or datasets dir."),
    out: Path = typer.Argument(..., help="Output Problem parquet (images embedded, with ids)."),
    index: Path = typer.Option(None, "--index", help="Index file (CSV/JSONL/JSON) of a folder."),
    field: list[str] = typer.Option(
        None, "--field", help="ours=theirs, e.g. question=problem, answer=gt, images=img."
    ),
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
    overwrite: bool = OVERWRITE,
) -> None:
    """Raw problems -> Problem parquet with ids (the input of the curation stages).

    Image paths are relative to the file (or folder) and may not leave it.

    Example: deepvision curate ingest raw/ raw.parquet --field question=problem
    """
    from deepvision.curate.ingest import ingest

    fields = {}
    for f in split_list(field):
        ours, sep, theirs = f.partition("=")
        if not sep or ours not in ("question", "answer", "images", "id", "options"):
            raise UsageError(f"--field {f!r}: expected question|answer|images|id|options=NAME")
        fields[ours] = theirs
    rep = ingest(
        src,
        out,
        index=index,
        fields=fields,
        overwrite=overwrite,
        allow_absolute=allow_absolute_paths,
    )
    console.print(f"rows in {rep.rows_in} = written {rep.written} + unreadable {rep.dropped}")
    console.print(f"  out: {out}\n  drops: {rep.drops}")
    if rep.dropped:
        raise typer.Exit(1)
