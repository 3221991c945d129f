"""`deepvision infer`, `deepvision serve`: thin commands over deepvision.llm (the data readers
feed the llm client here; the logic lives in the library)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
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
    inputs_or_sample,
    start_servers,
    system_prompt_from,
)
from deepvision.cli.options import (
    ApiKeyEnvOpt,
    AttemptsOpt,
    ConcurrencyOpt,
    EndpointOpt,
    ModelOpt,
    TimeoutOpt,
    build_endpoint,
)
from deepvision.data.prompts import build_messages
from deepvision.errors import ServeError, UsageError
from deepvision.llm.client import InferConfig, InferSummary, Request, infer, summary_dict
from deepvision.llm.presets import PRESETS, sampling_params
from deepvision.llm.requests import is_inference_jsonl, jsonl_requests, problem_request
from deepvision.llm.serve import BACKENDS, ServeConfig, ServerGroup
from deepvision.progress import progress_bar
from deepvision.records import InferFiles


def _problem_requests(
    paths: list[Path], system_prompt: str | None, allow_absolute: bool
) -> Iterator[Request]:
    """Problems from any data-layer input. An unreadable row, or a problem whose prompt
    cannot be built (more `<image>` placeholders than images, say), fails alone: it is
    counted as failed and recorded in the errors file, and the others are done."""
    # Here, not at the top: the data layer loads pyarrow, which JSONL input never needs.
    from deepvision.data.reader import iter_problem_batches, open_sources

    for batch in iter_problem_batches(open_sources(paths, allow_absolute=allow_absolute)):
        for rej in batch.rejects:
            yield Request(f"{Path(rej.file).name}:row {rej.row}", {}, [], error=rej.describe())
        for p in batch.problems:
            try:
                messages = build_messages(p, system_prompt)
            except Exception as exc:  # this problem's own content: it fails alone
                yield Request(p.id, {}, [], error=f"cannot build the prompt: {exc}")
            else:
                yield problem_request(p, messages)


def infer_cmd(
    files: list[Path] = typer.Argument(
        None, help="Problems (parquet, folder, JSONL) or inference JSONL."
    ),
    out: Path = typer.Option(..., "--out", help="Output JSONL (appended; re-run to resume)."),
    endpoint: EndpointOpt = None,
    model: ModelOpt = None,
    preset: str = typer.Option(
        "greedy", "--preset", help=f"Sampling preset: {', '.join(PRESETS)}."
    ),
    temperature: float = typer.Option(None, "--temperature"),
    top_p: float = typer.Option(None, "--top-p"),
    top_k: int = typer.Option(None, "--top-k"),
    presence_penalty: float = typer.Option(None, "--presence-penalty"),
    max_tokens: int = typer.Option(None, "--max-tokens"),
    n: int = typer.Option(1, "--n", help="Samples per problem."),
    concurrency: ConcurrencyOpt = None,
    attempts: AttemptsOpt = None,
    timeout: TimeoutOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    system_prompt: SystemPromptOpt = None,
    system_prompt_file: SystemPromptFileOpt = None,
    no_system_prompt: NoSystemPromptOpt = False,
    allow_absolute_paths: AllowAbsolutePathsOpt = False,
    backend: str = typer.Option(
        "vllm",
        "--backend",
        help="Without --endpoint: start vllm or transformers servers for --model.",
    ),
    tp: int = typer.Option(1, "--tp", help="Without --endpoint: tensor-parallel GPUs per server."),
    dp: int = typer.Option(1, "--dp", help="Without --endpoint: number of servers."),
    gpus: str = typer.Option(None, "--gpus", help="Without --endpoint: GPUs to use, e.g. 0-7."),
    port: int = typer.Option(8000, "--port", help="Without --endpoint: first server port."),
) -> None:
    """Generate model responses for problems, resumably (exactly one line per problem).

    Example: deepvision infer math-77k.parquet --endpoint http://127.0.0.1:8000/v1
    --model Qwen3-VL-8B-Instruct --preset qwen-instruct --max-tokens 16384 --out runs/out.jsonl
    """
    if n < 1:
        raise UsageError("must be at least 1", param="n")
    try:
        params = sampling_params(
            preset,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            presence_penalty=presence_penalty,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    prompt, chosen = system_prompt_from(system_prompt, system_prompt_file, no_system_prompt)
    paths = inputs_or_sample(files)
    if len(paths) == 1 and paths[0].suffix == ".jsonl" and is_inference_jsonl(paths[0]):
        given = prompt if chosen else None  # JSONL lines keep their own unless one is chosen
        requests = jsonl_requests(paths[0], given, allow_absolute=allow_absolute_paths)
    else:
        requests = _problem_requests(paths, prompt, allow_absolute_paths)
    group = None
    if endpoint:  # check the options before any work
        ep = build_endpoint(endpoint, model, api_key_env, concurrency, timeout, attempts)
    else:
        if not model:
            raise UsageError("give --endpoint URL, or a local model folder as --model to serve it")
        group = start_servers(model, backend, tp, dp, gpus, port, out.parent / "serve-logs")
    try:
        if group is not None:
            ep = build_endpoint(group.urls, model, api_key_env, concurrency, timeout, attempts)
        cfg = InferConfig(ep, n=n, sampling=params, max_tokens=max_tokens)
        with progress_bar("infer", None) as bar:
            # servers started here answered /v1/models already, serving --model itself
            s = asyncio.run(infer(requests, out, cfg, progress=bar.advance, check=group is None))
    finally:
        if group is not None:
            group.stop()
    console.print(summary_line(s, InferFiles(out).errors), soft_wrap=True)
    if s.duplicates:
        info(f"  [yellow]duplicate ids sent once[/]: {', '.join(s.duplicate_examples)}")
    if s.failed:
        raise typer.Exit(1)


def summary_line(s: InferSummary, errors: Path) -> str:
    """The result line of a run: every input row accounted for (rows = done + failed +
    already done + duplicates), the retries and their waits, the speed."""
    d = summary_dict(s)
    line = f"rows {s.inputs}: done {s.done}, failed {s.failed}"
    if s.failed:
        line += f" [yellow](reasons in {escape(str(errors))})[/]"
    line += f", skipped (already done) {s.skipped}, duplicate ids {s.duplicates}"
    if s.retries:
        line += f"; retries {s.retries}, waiting {s.waited_s:.1f} s in all"
        if s.retry_after_waits:
            line += f" ({s.retry_after_waits} as long as the server asked)"
    line += f"; {d['requests_per_s']} requests/s, {d['tokens_per_s']} tokens/s, {s.wall_s:.1f} s"
    if s.first_request_s:
        line += f"; first request after {s.first_request_s:.2f} s"
    return line


def serve_cmd(
    model: str = typer.Option(
        ..., "--model", help="Model folder or hub id org/name (served as its name)."
    ),
    backend: str = typer.Option("vllm", "--backend", help=f"{' | '.join(BACKENDS)}"),
    tp: int = typer.Option(1, "--tp", help="Tensor-parallel GPUs per instance."),
    dp: int = typer.Option(1, "--dp", help="Data-parallel instances (one port each)."),
    gpus: str = typer.Option(
        None,
        "--gpus",
        help="GPUs to spread over, e.g. 0-7, counted within CUDA_VISIBLE_DEVICES when set "
        "(vllm default: the first tp x dp GPUs).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (0.0.0.0 to expose)."),
    port: int = typer.Option(8000, "--port", help="First port; instance k listens on port + k."),
    log_dir: Path = typer.Option(
        Path("runs/serve"), "--log-dir", help="One log file per instance."
    ),
    health_timeout: float = typer.Option(
        900.0, "--health-timeout", help="Seconds to wait for /v1/models."
    ),
    extra: list[str] = typer.Argument(None, help="Extra server arguments, after --."),
) -> None:
    """Start model servers and keep them up until Ctrl-C; all are stopped on exit.

    The model, the ports and the GPUs are checked before anything starts; while the servers
    load, a line says which is up and where each one's log is. vLLM gets --max-model-len
    40960 (at most the model's context) and, for a vision-language model, at most 10 images
    and no video per prompt, unless the extra arguments set them.

    Example: deepvision serve --model Qwen/Qwen3-VL-8B-Instruct --tp 2 --dp 4
    -- --gpu-memory-utilization 0.85
    """
    cfg = ServeConfig(model, backend, tp, dp, gpus, host, port, log_dir, list(extra or []))

    def on_term(signum, frame):  # `kill` stops the servers like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        group = ServerGroup(cfg, health_timeout=health_timeout).start()
    except ServeError as exc:
        raise UsageError(str(exc)) from None
    try:
        console.print("ready: " + " ".join(f"--endpoint {u}" for u in group.urls))
        group.watch()
    except KeyboardInterrupt:
        info("stopping servers")
    finally:
        group.stop()
